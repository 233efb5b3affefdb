// Store requests, counted by a proxy in front of MinIO (scripts/request-counter.ts) rather than assumed:
// a warm, locked fetch (expected: none); resolving 50 partial specs over 10 assets (expected: one read per asset);
// republishing the mixed dataset with one small file changed (bytes sent: about that file, not the dataset).
// Runs after the throughput cases: it changes a file of the mixed dataset.
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import path from "node:path";
import { startRequestCounter, type RequestCounter } from "../scripts/request-counter.ts";
import { changeOneFile, type Dataset } from "./datasets.ts";
import { runOrThrow } from "./measure.ts";
import { assetkitCommand, type Place } from "./tools.ts";

const ASSETS = 10;
const VERSION = "1.2.0";

export interface Count {
  requests: number;
  objectReads: number;
  /** Method and path of each request, for whoever makes the number smaller. */
  seen: string[];
}

export interface RequestCounts {
  warmLockedFetch: Count & { expected: 0 };
  resolve: Count & { specs: number; assets: number; expected: number };
  republish: Count & { datasetBytes: number; changedBytes: number; bytesSent: number };
}

export interface RequestContext {
  cli: string;
  /** The place whose target is MinIO itself; the counted commands go through the proxy instead. */
  place: Place;
  scratch: string;
  mixed: Dataset;
  timeoutMs: number;
  log(line: string): void;
}

export async function countRequests(ctx: RequestContext): Promise<RequestCounts> {
  const counter = await startRequestCounter(ctx.place.target.endpoint);
  try {
    const counted: Place = { ...ctx.place, target: { ...ctx.place.target, endpoint: counter.url } };
    const warmLockedFetch = { ...(await warmLockedFetchCount(ctx, counted, counter)), expected: 0 as const };
    ctx.log(`requests: warm locked fetch made ${warmLockedFetch.requests}`);
    const resolve = await resolveCount(ctx, counted, counter);
    ctx.log(`requests: resolving ${resolve.specs} specs over ${resolve.assets} assets made ${resolve.requests}`);
    const republish = await republishCount(ctx, counted, counter);
    ctx.log(`requests: republishing with one file changed sent ${republish.bytesSent} bytes`);
    return { warmLockedFetch, resolve, republish };
  } finally {
    await counter.stop();
  }
}

/** Runs an assetkit command (in the place's cwd, on `prefix`) and returns its parsed --json output. */
async function assetkit(ctx: RequestContext, place: Place, prefix: string, args: string[]): Promise<unknown> {
  const outcome = await runOrThrow(`assetkit ${args[0]}`, assetkitCommand(ctx.cli, place, prefix, args), ctx.timeoutMs);
  return JSON.parse(outcome.stdout);
}

function snapshot(counter: RequestCounter): Count {
  const seen = counter.requests();
  return { requests: seen.length, objectReads: counter.objectReads(), seen: seen.map((r) => `${r.method} ${r.url}`) };
}

/** A small folder asset source with one file, `file.bin`. */
async function smallSource(root: string, name: string): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, "file.bin"), `${name}\n`);
  return dir;
}

async function warmLockedFetchCount(ctx: RequestContext, counted: Place, counter: RequestCounter): Promise<Count> {
  const cwd = await mkdtemp(path.join(ctx.scratch, "locked-"));
  const place = { ...counted, cwd };
  const lockfile = path.join(cwd, "assets.lock");
  const assetsDir = path.join(cwd, "assets");
  await assetkit(ctx, { ...ctx.place, cwd }, "requests-locked", ["publish", await smallSource(cwd, "source"), "locked"]);
  await assetkit(ctx, place, "requests-locked", ["lock", "locked", "--lockfile", lockfile]);
  await assetkit(ctx, place, "requests-locked", ["fetch", "locked", "--lockfile", lockfile, "--assets-dir", assetsDir]);
  counter.reset();
  await assetkit(ctx, place, "requests-locked", ["fetch", "locked", "--lockfile", lockfile, "--assets-dir", assetsDir]);
  return snapshot(counter);
}

async function resolveCount(ctx: RequestContext, counted: Place, counter: RequestCounter): Promise<RequestCounts["resolve"]> {
  const cwd = await mkdtemp(path.join(ctx.scratch, "resolve-"));
  const names = Array.from({ length: ASSETS }, (_, i) => `asset-${i}`);
  await Promise.all(
    names.map(async (name) => assetkit(ctx, { ...ctx.place, cwd }, "requests-resolve", ["publish", await smallSource(cwd, name), name, "--version", VERSION])),
  );
  // Five partial forms per asset: latest, major series, minor series, a range, a sub-path of the latest.
  const specs = names.flatMap((n) => [n, `${n}:1`, `${n}:1.2`, `${n}:^1`, `${n}[file.bin]`]);
  counter.reset();
  const out = (await assetkit(ctx, { ...counted, cwd }, "requests-resolve", ["resolve", ...specs])) as { resolved: { version: string }[] };
  const count = snapshot(counter);
  const wrong = out.resolved.filter((r) => r.version !== VERSION);
  if (out.resolved.length !== specs.length || wrong.length)
    throw new Error(`resolve answered ${JSON.stringify(out.resolved)}; expected ${specs.length} × ${VERSION}`);
  return { ...count, specs: specs.length, assets: ASSETS, expected: ASSETS };
}

async function republishCount(ctx: RequestContext, counted: Place, counter: RequestCounter): Promise<RequestCounts["republish"]> {
  const cwd = await mkdtemp(path.join(ctx.scratch, "republish-"));
  await assetkit(ctx, { ...ctx.place, cwd }, "requests-republish", ["publish", ctx.mixed.path, "mixed"]);
  const changedBytes = await changeOneFile(ctx.mixed);
  counter.reset();
  await assetkit(ctx, { ...counted, cwd }, "requests-republish", ["publish", ctx.mixed.path, "mixed"]);
  return { ...snapshot(counter), datasetBytes: ctx.mixed.bytes, changedBytes, bytesSent: counter.bytesSent() };
}
