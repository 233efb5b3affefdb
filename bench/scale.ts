// The cases at the scale users reach, beside the throughput cases (issue #26), each through the request counter:
// - versions: an asset with 10,000 versions (its index and alias table written straight into the bucket, not
//   published 10,000 times) against one with a single version: resolve name:1, name:production, list, list a page;
// - watch: `sync --watch` polling 100 assets: requests per interval and CPU per interval, after the first sync;
// - many-ops: on the 100,000-file asset of the fetch case (--scale): republish with 10 files changed (in modelkit's
//   layout, then in the content-addressed one), publish --if-changed with none changed, resolve, show.
// Wall time, CPU, peak RSS and requests of every run; medians with their spread over the rounds.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile, mkdir, mkdtemp, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startRequestCounter, type RequestCounter } from "../scripts/request-counter.ts";
import type { Bucket } from "./bucket.ts";
import { changeFiles } from "./datasets.ts";
import { median, runOrThrow } from "./measure.ts";
import { assetkitCommand, type Place, type PublishedAsset } from "./tools.ts";

export interface ScaleContext {
  cli: string;
  /** The place whose target is MinIO itself; measured commands go through the request counter instead. */
  place: Place;
  bucket: Bucket;
  scratch: string;
  repeat: number;
  timeoutMs: number;
  log(line: string): void;
}

export interface ScaleRun {
  seconds: number;
  /** From the spawn to the first request the store saw (process start-up, config, the first connection). */
  firstRequestMs: number;
  cpuSeconds: number;
  peakRssMiB: number;
  requests: number;
  bytesSent: number;
}

/** One command on one asset, `repeat` times: the runs, their medians and their ranges. */
export interface ScaleResult {
  case: "versions" | "many-ops";
  /** What ran, as a user types it (without the store flags). */
  command: string;
  /** The asset it ran on: "10,000 versions", "1 version", the dataset's title. */
  on: string;
  runs: ScaleRun[];
  median: ScaleRun;
  range: { [K in keyof ScaleRun]: [number, number] };
}

export interface WatchResult {
  assets: number;
  intervalSeconds: number;
  /** Intervals after the first sync (warm-up) over which the counts below were taken. */
  intervals: number;
  requestsPerInterval: number;
  /** The requests of one interval by method: what a watcher costs the store. */
  methods: Record<string, number>;
  cpuMsPerInterval: number;
  peakRssMiB: number;
}

const VERSIONS = 10_000;
const VERSIONS_PREFIX = "scale-versions";
const WATCH_PREFIX = "scale-watch";
const WATCH_ASSETS = 100;
const WATCH_INTERVAL_S = 1;
/** The first sync is over when no object has been read for this long (a poll only HEADs). */
const WATCH_SETTLED_S = 2;
const WATCH_MEASURED_S = 10;

/** 10.9.99, 10.9.98, … 1.0.0: newest first, as assetkit keeps an index. */
function manyVersions(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${10 - Math.floor(i / 1000)}.${9 - Math.floor((i % 1000) / 100)}.${99 - (i % 100)}`);
}

/** The index and alias table of an asset with `count` versions (no data or metas: resolve and list read neither). */
async function writeAsset(bucket: Bucket, name: string, count: number): Promise<string> {
  const versions = count === 1 ? ["1.0.0"] : manyVersions(count);
  const digests = Object.fromEntries(versions.map((v) => [v, `sha256:${createHash("sha256").update(`${name}:${v}`).digest("hex")}`]));
  await bucket.put(`${VERSIONS_PREFIX}/${name}.versions`, JSON.stringify({ versions, digests }) + "\n");
  const production = versions[Math.floor(versions.length / 2)]!;
  const entry = { version: production, promoted_at: new Date().toISOString(), promoted_by: "bench", source: {} };
  await bucket.put(`${VERSIONS_PREFIX}/${name}.aliases`, JSON.stringify({ aliases: { production: entry } }) + "\n");
  return production;
}

/** Runs `args` on `prefix` through the counter `repeat` times; each run must succeed and `check` its JSON output. */
async function measured(
  ctx: ScaleContext,
  counter: RequestCounter,
  prefix: string,
  args: string[],
  check: (out: unknown) => void = () => undefined,
  before: () => Promise<void> = async () => undefined,
): Promise<ScaleRun[]> {
  const counted: Place = { ...ctx.place, target: { ...ctx.place.target, endpoint: counter.url } };
  const runs: ScaleRun[] = [];
  for (let round = 0; round < ctx.repeat; round++) {
    await before();
    counter.reset();
    const outcome = await runOrThrow(`assetkit ${args.join(" ")}`, assetkitCommand(ctx.cli, counted, prefix, args), ctx.timeoutMs);
    check(JSON.parse(outcome.stdout));
    const seen = counter.requests();
    runs.push({
      seconds: outcome.seconds,
      firstRequestMs: seen.length ? seen[0]!.at - outcome.startedAt : NaN,
      cpuSeconds: outcome.cpuSeconds,
      peakRssMiB: outcome.peakRssMiB,
      requests: seen.length,
      bytesSent: seen.reduce((sum, r) => sum + r.bytes, 0),
    });
  }
  return runs;
}

function summarise(kind: ScaleResult["case"], command: string, on: string, runs: ScaleRun[]): ScaleResult {
  const keys = Object.keys(runs[0]!) as (keyof ScaleRun)[];
  const of = (k: keyof ScaleRun) => runs.map((r) => r[k]);
  return {
    case: kind,
    command,
    on,
    runs,
    median: Object.fromEntries(keys.map((k) => [k, median(of(k))])) as unknown as ScaleRun,
    range: Object.fromEntries(keys.map((k) => [k, [Math.min(...of(k)), Math.max(...of(k))]])) as ScaleResult["range"],
  };
}

function expectVersion(version: string): (out: unknown) => void {
  return (out) => {
    const got = (out as { resolved: { version: string }[] }).resolved[0]?.version;
    if (got !== version) throw new Error(`resolved ${got}, expected ${version}`);
  };
}

/** resolve name:1, name:production, list name, and a page of 100, on 10,000 versions and on one. */
export async function versionsCase(ctx: ScaleContext): Promise<ScaleResult[]> {
  const counter = await startRequestCounter(ctx.place.target.endpoint);
  try {
    const results: ScaleResult[] = [];
    for (const [name, count, on] of [
      ["bench/versions", VERSIONS, "10,000 versions"],
      ["bench/one", 1, "1 version"],
    ] as const) {
      const production = await writeAsset(ctx.bucket, name, count);
      const latestOf1 = count === 1 ? "1.0.0" : "1.9.99";
      const listed = (n: number) => (out: unknown) => {
        const got = (out as { assets: { versions: string[] }[] }).assets[0]?.versions.length;
        if (got !== n) throw new Error(`listed ${got} versions, expected ${n}`);
      };
      const commands: [string, string[], (out: unknown) => void][] = [
        ["resolve name:1", ["resolve", `${name}:1`], expectVersion(latestOf1)],
        ["resolve name:production", ["resolve", `${name}:production`], expectVersion(production)],
        ["list name", ["list", name], listed(count)],
        ["list name --limit 100", ["list", name, "--limit", "100"], listed(Math.min(100, count))],
      ];
      for (const [command, args, check] of commands) {
        const result = summarise("versions", command, on, await measured(ctx, counter, VERSIONS_PREFIX, args, check));
        ctx.log(`versions: ${command} on ${on}: ${describe(result)}`);
        results.push(result);
      }
    }
    return results;
  } finally {
    await counter.stop();
  }
}

/** On the fetch case's copy of the 100,000-file dataset: the operations besides fetch and publish. */
export async function manyOpsCase(ctx: ScaleContext, asset: PublishedAsset): Promise<ScaleResult[]> {
  const counter = await startRequestCounter(ctx.place.target.endpoint);
  const cwd = await mkdtemp(path.join(ctx.scratch, "many-ops-"));
  const place = { ...ctx.place, cwd };
  const on = asset.dataset.title;
  try {
    const ops: ScaleResult[] = [];
    const run = async (command: string, args: string[], check?: (out: unknown) => void, before?: () => Promise<void>) => {
      const result = summarise("many-ops", command, on, await measured({ ...ctx, place }, counter, asset.prefix, args, check, before));
      ctx.log(`many-ops: ${command}: ${describe(result)}`);
      ops.push(result);
    };
    const publish = ["publish", asset.dataset.path, asset.name, "--versioning", "major-minor"];
    const published = (wanted: boolean) => (out: unknown) => {
      if ((out as { published: boolean }).published !== wanted) throw new Error(`publish said published: ${!wanted}`);
    };
    await run("resolve name", ["resolve", asset.name], expectVersion(asset.version));
    await run("show name", ["show", asset.name]);
    await run("publish --if-changed, none changed", [...publish, "--if-changed"], published(false));
    // Last: it changes the dataset (10 files before each round, a new version each time).
    await run("republish, 10 files changed", publish, published(true), async () => {
      await changeFiles(asset.dataset, 10);
    });
    // The content-addressed layout (docs/content-addressed.md): one publish with --layout content-addressed, not
    // measured (every file is stored once more, as a blob), then the same republish, which follows that layout.
    const setup = assetkitCommand(ctx.cli, place, asset.prefix, [...publish, "--layout", "content-addressed"]);
    await runOrThrow("publish --layout content-addressed", setup, ctx.timeoutMs);
    await run("republish, 10 files changed, content-addressed", publish, published(true), async () => {
      await changeFiles(asset.dataset, 10);
    });
    return ops;
  } finally {
    await counter.stop();
  }
}

/** `sync --watch 1s` over 100 assets: after the first sync, what each interval costs (requests, CPU). */
export async function watchCase(ctx: ScaleContext): Promise<WatchResult> {
  const cwd = await mkdtemp(path.join(ctx.scratch, "watch-"));
  const place = { ...ctx.place, cwd };
  const names = Array.from({ length: WATCH_ASSETS }, (_, i) => `watched/a${i}`);
  ctx.log(`watch: publishing ${WATCH_ASSETS} assets`);
  for (let i = 0; i < names.length; i += 4) {
    await Promise.all(
      names.slice(i, i + 4).map(async (name) => {
        const source = path.join(cwd, "src", name);
        await mkdir(source, { recursive: true });
        await writeFile(path.join(source, "file.bin"), `${name}\n`);
        await runOrThrow(`publish ${name}`, assetkitCommand(ctx.cli, place, WATCH_PREFIX, ["publish", source, name, "--version", "1.0.0"]), ctx.timeoutMs);
      }),
    );
  }
  const counter = await startRequestCounter(ctx.place.target.endpoint);
  try {
    const counted: Place = { ...place, target: { ...place.target, endpoint: counter.url } };
    const command = assetkitCommand(ctx.cli, counted, WATCH_PREFIX, ["sync", ...names, "--dir", path.join(cwd, "served"), "--watch", `${WATCH_INTERVAL_S}s`]);
    // Node itself, not under GNU time: its CPU is read from /proc at the window's two ends.
    const child = spawn(command.file, command.args, { cwd: command.cwd, env: command.env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr = (stderr + d).slice(-4000)));
    const exited = new Promise<number>((resolve) => child.once("close", (code) => resolve(code ?? 1)));
    const started = performance.now();
    await settled(counter, started + ctx.timeoutMs);
    const from = { at: performance.now(), cpu: await cpuMs(child.pid!) };
    await sleep(WATCH_MEASURED_S * 1000);
    const to = { at: performance.now(), cpu: await cpuMs(child.pid!) };
    const peakRssMiB = await peakRss(child.pid!);
    child.kill("SIGTERM");
    const code = await exited;
    if (code !== 0) throw new Error(`sync --watch exited ${code}: ${stderr.trim()}`);
    const window = counter.requests().filter((r) => r.at >= from.at && r.at < to.at);
    const intervals = (to.at - from.at) / 1000 / WATCH_INTERVAL_S;
    const methods: Record<string, number> = {};
    for (const r of window) methods[r.method] = (methods[r.method] ?? 0) + 1 / intervals;
    const result: WatchResult = {
      assets: WATCH_ASSETS,
      intervalSeconds: WATCH_INTERVAL_S,
      intervals,
      requestsPerInterval: window.length / intervals,
      methods,
      cpuMsPerInterval: (to.cpu - from.cpu) / intervals,
      peakRssMiB,
    };
    ctx.log(
      `watch: ${result.requestsPerInterval.toFixed(1)} requests and ${result.cpuMsPerInterval.toFixed(1)} ms CPU per ${WATCH_INTERVAL_S} s interval over ${WATCH_ASSETS} assets (started ${((from.at - started) / 1000).toFixed(1)} s before the window)`,
    );
    return result;
  } finally {
    await counter.stop();
  }
}

/** Waits until the watcher's first sync is over: GETs seen, then none for WATCH_SETTLED_S. */
async function settled(counter: RequestCounter, deadline: number): Promise<void> {
  for (;;) {
    const gets = counter.requests().filter((r) => r.method === "GET");
    const last = gets[gets.length - 1]?.at;
    if (last !== undefined && performance.now() - last >= WATCH_SETTLED_S * 1000) return;
    if (performance.now() > deadline) throw new Error("sync --watch: its first sync did not end");
    await sleep(200);
  }
}

/** User + system CPU of a process so far, from /proc (clock ticks of 10 ms on Linux). */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10; // utime, stime: fields 14 and 15 of stat(5)
}

async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
}

function describe(r: ScaleResult): string {
  const m = r.median;
  return `${(m.seconds * 1000).toFixed(0)} ms (first request at ${m.firstRequestMs.toFixed(0)}), ${(m.cpuSeconds * 1000).toFixed(0)} ms CPU, ${m.peakRssMiB.toFixed(0)} MiB, ${m.requests} requests (median of ${r.runs.length})`;
}

/** The Markdown lines of the scale cases: medians, and [min–max] over the rounds. */
export function scaleLines(results: ScaleResult[], watch: WatchResult | undefined): string[] {
  const span = ([a, b]: [number, number], f: (n: number) => string) => (a === b ? "" : ` (${f(a)}–${f(b)})`);
  const ms = (s: number) => (s * 1000).toFixed(0);
  const lines: string[] = [];
  if (results.length) {
    lines.push("| Case | On | Wall ms | First request ms | CPU ms | Peak RSS MiB | Requests |", "|---|---|---:|---:|---:|---:|---:|");
    for (const r of results) {
      const { median: m, range } = r;
      lines.push(
        `| ${r.command} | ${r.on} | ${ms(m.seconds)}${span(range.seconds, ms)} | ${m.firstRequestMs.toFixed(0)}${span(range.firstRequestMs, (n) => n.toFixed(0))} | ${ms(m.cpuSeconds)}${span(range.cpuSeconds, ms)} | ${m.peakRssMiB.toFixed(0)}${span(range.peakRssMiB, (n) => n.toFixed(0))} | ${m.requests}${span(range.requests, String)} |`,
      );
    }
  }
  if (watch) {
    const methods = Object.entries(watch.methods)
      .map(([method, n]) => `${n.toFixed(1)} ${method}`)
      .join(", ");
    lines.push(
      "",
      `- sync --watch ${watch.intervalSeconds}s over ${watch.assets} assets, after the first sync: ${watch.requestsPerInterval.toFixed(1)} requests per interval (${methods}), ${watch.cpuMsPerInterval.toFixed(1)} ms CPU per interval, peak RSS ${watch.peakRssMiB.toFixed(0)} MiB.`,
    );
  }
  return lines;
}
