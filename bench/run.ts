// The benchmark (issue #4): assetkit's publish and fetch against s5cmd, the aws CLI, rclone and modelkit on one
// MinIO and the same data, plus counted store requests. Not part of the test suite.
//
//   npm run bench                      install the tools if missing, build dist/, full run (~17 min, more with the registry cases)
//   npm run bench -- --quick           small datasets, 1 round: for developing the benchmark, not for numbers
//   npm run bench -- --scale           also 100,000 × 4 KiB in 1,000 folders (fetch, publish vs s5cmd and rclone; then
//                                      republish with 10 changed, --if-changed, resolve, show): ~0.5 GiB, long
//   npm run bench -- --huge            also one 20 GiB file (fetch, publish vs s5cmd and rclone), MinIO's data on disk
//                                      (unless --store-dir); refused unless the disks have room for the copies
//   node bench/run.ts [--repeat N] [--cases fetch-large,publish-small,…,oci-fetch-large,…,requests,verify,versions,watch] [--peers s5cmd,aws,…] [--no-pinned] [--store-dir DIR] [--out FILE]
//
// The oci-… cases run assetkit on an oci:// store against oras, on a local distribution registry (registry.ts).
// Besides throughput: store requests (requests.ts), an asset with 10,000 versions and sync --watch over 100 assets
// (scale.ts).
//
// Besides the peers, assetkit runs pinned to 1 core and to 2 cores (taskset), to show how it scales.
//
// Prints a Markdown table (stdout; progress goes to stderr) and writes the raw runs, medians, machine and tool
// versions to bench/results.json (a --quick run writes bench/data/results-quick.json instead, so it never passes
// for a full run). Page cache cannot be dropped without privileges: tools are interleaved and repeated instead.
// MinIO's data lives in --store-dir, by default /dev/shm when it has room; datasets and downloads on disk (placement.ts).
import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { cp, mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { startServers } from "../scripts/test-servers.ts";
import { openBucket } from "./bucket.ts";
import { chooseStoreDir, spreadSubfolders } from "./placement.ts";
import {
  assertFreeSpace,
  datasetBytes,
  datasetShapes,
  DATASET_IDS,
  HUGE_DATASET_IDS,
  makeDataset,
  SCALE_DATASET_IDS,
  type Dataset,
  type DatasetId,
} from "./datasets.ts";
import { assertGnuTime, runOrThrow } from "./measure.ts";
import { renderReport, type BenchResults } from "./report.ts";
import { countRequests } from "./requests.ts";
import { registryCases } from "./registry.ts";
import { measureVerify } from "./verify.ts";
import { manyOpsCase, versionsCase, watchCase, type ScaleResult } from "./scale.ts";
import { runCase, type CaseId, type CaseResult } from "./throughput.ts";
import { locateTools, makeTools, PINNED, toolVersions, TOOL_NAMES, type Place, type PublishedAsset, type S3ToolName } from "./tools.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const GiB = 1024 ** 3;
const directionsOf = (ids: readonly DatasetId[]): CaseId[] => ids.flatMap((id): CaseId[] => [`fetch-${id}`, `publish-${id}`]);
const THROUGHPUT_CASES = directionsOf([...DATASET_IDS, ...SCALE_DATASET_IDS, ...HUGE_DATASET_IDS]);
/** On a registry, against oras (bench/registry.ts): the 2 GiB file and 2,000 × 64 KiB. */
const REGISTRY_CASES = (["large", "small"] as const).flatMap((id): CaseId[] => [`oci-fetch-${id}`, `oci-publish-${id}`]);
const DEFAULT_CASES = [...directionsOf(DATASET_IDS), ...REGISTRY_CASES, "requests", "verify", "versions", "watch"] as const;
const SCALE_CASES = [...directionsOf(SCALE_DATASET_IDS), "many-ops"] as const;
const HUGE_CASES = directionsOf(HUGE_DATASET_IDS);
const ALL_CASES = [...THROUGHPUT_CASES, ...REGISTRY_CASES, "requests", "verify", "versions", "watch", "many-ops"] as const;
/** The verify case: a version of this many files, checked this many times per round (--repeat) of the other cases. */
const VERIFY_FILES = 2000;
const VERIFY_ROUNDS_PER_REPEAT = 20;
type Case = (typeof ALL_CASES)[number];
const PEERS = TOOL_NAMES.filter((t) => t !== "assetkit" && !PINNED.includes(t));
/** The peers of the opt-in cases (the issue's): the fast tools, not the slow ones, which would take hours there. */
const SCALE_PEERS: readonly S3ToolName[] = ["s5cmd", "rclone"];
/** Where a fetch case's data lies: published once by assetkit, then downloaded by every tool. */
const FETCH_PREFIX = "fetch";
/** The fetch case whose published copy outlives its case: many-ops republishes it. */
const KEPT_FETCH_COPY: DatasetId = "many";

interface Options {
  quick: boolean;
  repeat: number;
  cases: Case[];
  peers: S3ToolName[];
  /** Also run assetkit pinned to 1 and 2 cores. */
  pinned: boolean;
  /** Where MinIO keeps its data (undefined: store-dir.ts chooses). */
  storeDir: string | undefined;
  /** --huge: MinIO's data on disk unless --store-dir says otherwise. */
  huge: boolean;
  out: string;
}

class UsageError extends Error {}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      repeat: { type: "string" },
      cases: { type: "string" },
      peers: { type: "string" },
      "no-pinned": { type: "boolean", default: false },
      "store-dir": { type: "string" },
      out: { type: "string" },
      scale: { type: "boolean", default: false },
      huge: { type: "boolean", default: false },
    },
  });
  const list = <T extends string>(flag: string, value: string | undefined, known: readonly T[]): T[] => {
    if (value === undefined) return [...known];
    const items = value
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
    const unknown = items.filter((i) => !known.includes(i as T));
    if (unknown.length || items.length === 0) throw new UsageError(`--${flag}: unknown ${unknown.join(", ") || "(empty)"}; known: ${known.join(", ")}`);
    return known.filter((k) => items.includes(k)); // the benchmark's order, whatever the flag's
  };
  const repeat = values.repeat === undefined ? (values.quick ? 1 : 5) : Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) throw new UsageError(`--repeat must be a positive integer, not ${values.repeat}`);
  const out = values.out ?? path.join(ROOT, values.quick ? "bench/data/results-quick.json" : "bench/results.json");
  return {
    quick: values.quick,
    repeat,
    cases: list("cases", values.cases ?? [...DEFAULT_CASES, ...(values.scale ? SCALE_CASES : []), ...(values.huge ? HUGE_CASES : [])].join(","), ALL_CASES),
    peers: list("peers", values.peers, PEERS),
    pinned: !values["no-pinned"],
    storeDir: values["store-dir"] === undefined ? undefined : path.resolve(values["store-dir"]),
    huge: values.huge,
    out: path.resolve(out),
  };
}

const t0 = Date.now();
function log(line: string): void {
  const s = Math.round((Date.now() - t0) / 1000);
  process.stderr.write(`[bench ${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}] ${line}\n`);
}

async function goBin(): Promise<string> {
  const { stdout } = await promisify(execFile)("go", ["env", "GOBIN", "GOPATH"], { encoding: "utf8" });
  const [gobin = "", gopath = ""] = stdout.split("\n");
  return gobin || path.join(gopath.split(path.delimiter)[0] || path.join(os.homedir(), "go"), "bin");
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const startedAt = new Date().toISOString();
  assertGnuTime();
  const throughputCases = THROUGHPUT_CASES.filter((c) => options.cases.includes(c));
  const registryCaseIds = REGISTRY_CASES.filter((c) => options.cases.includes(c));
  const shapes = datasetShapes(options.quick);
  const needed = [...DATASET_IDS, ...SCALE_DATASET_IDS, ...HUGE_DATASET_IDS].filter(
    (id) => [...throughputCases, ...registryCaseIds].some((c) => c.endsWith(`-${id}`)) || (id === "mixed" && options.cases.includes("requests")),
  );

  const scratch = await mkdtemp(path.join(os.tmpdir(), "assetkit-bench-"));
  process.on("exit", () => rmSync(scratch, { recursive: true, force: true })); // also when interrupted
  const unspread = await spreadSubfolders(scratch);
  if (unspread) log(`cannot spread ${scratch}'s folders over the file system (${unspread}): runs after deletions may be slower`);
  // Here the datasets and one download at a time. In the store one dataset's copy at a time (a fetch case's copy is
  // deleted when its case ends, but for the one many-ops reads later), or an upload; and the republish's two copies
  // of the mixed dataset. The 20 GiB case alone thus needs ~63 GiB on one disk, not the ~84 of keeping every copy.
  const bytesOf = (id: DatasetId): number => datasetBytes(shapes[id]);
  const total = needed.reduce((sum, id) => sum + bytesOf(id), 0);
  const largest = Math.max(0, ...needed.map(bytesOf));
  const dataSide = total + largest + GiB;
  const storeSide = largest + (needed.includes(KEPT_FETCH_COPY) ? bytesOf(KEPT_FETCH_COPY) : 0) + 2 * bytesOf("mixed") + GiB;
  await assertFreeSpace(scratch, dataSide);
  // The 20 GiB case keeps MinIO's data on disk, as a store of that size would be (and a tmpfs could not hold it).
  const storeDir = await chooseStoreDir(options.storeDir ?? (options.huge ? os.tmpdir() : undefined), storeSide);
  if ((await stat(storeDir.path)).dev === (await stat(scratch)).dev) await assertFreeSpace(scratch, dataSide + storeSide);
  log(`MinIO's data under ${storeDir.path} (${storeDir.why})`);

  // A snapshot of dist/: others may rebuild it while the benchmark runs (the bundle has no outside imports).
  const cli = path.join(scratch, "assetkit-dist/cli.js");
  await cp(path.join(ROOT, "dist"), path.dirname(cli), { recursive: true }).catch((err: Error) => {
    throw new Error(`cannot copy dist/ (${err.message}): build first with 'node scripts/build.ts' (npm run bench does)`);
  });
  const paths = locateTools(ROOT, await goBin(), cli);
  const versions = await toolVersions(paths);

  log("starting MinIO");
  const servers = await startServers(["s3"], storeDir.path);
  const env = servers.env;
  const target = {
    endpoint: env.ASSETKIT_TEST_S3_ENDPOINT!,
    bucket: env.ASSETKIT_TEST_S3_BUCKET!,
    accessKey: env.ASSETKIT_TEST_S3_ACCESS_KEY!,
    secretKey: env.ASSETKIT_TEST_S3_SECRET_KEY!,
  };
  const bucket = openBucket(target, path.join(servers.dir, "minio"));
  try {
    const home = path.join(scratch, "home");
    const cwd = path.join(scratch, "cwd");
    await Promise.all([mkdir(home), mkdir(cwd), mkdir(path.join(scratch, "data"))]);
    const place: Place = { target, home, cwd };
    const timeoutMs = (options.quick ? 5 : 30) * 60_000;

    const datasets = new Map<DatasetId, Dataset>();
    for (const id of needed) {
      log(`making dataset ${id}`);
      datasets.set(id, await makeDataset(path.join(scratch, "data"), id, shapes[id]));
    }

    const allTools = makeTools(paths, place);
    // assetkit's closest peer (s5cmd, the first) runs right after it in every round but the one it starts: the
    // machine's speed drifts during a run (other VMs on the host), and runs close in time drift alike. In one full
    // run with the peers after the pinned runs, assetkit's last two publish rounds fell in a slow spell that s5cmd's,
    // three places earlier, missed (1.53 and 1.61 s against 1.29; aws and modelkit slowed as much).
    const [closest, ...others] = options.peers.map((p) => allTools[p]);
    const tools = [allTools.assetkit, ...(closest ? [closest] : []), ...(options.pinned ? PINNED.map((p) => allTools[p]) : []), ...others];
    const scaleTools = [allTools.assetkit, ...options.peers.filter((p) => SCALE_PEERS.includes(p)).map((p) => allTools[p])];
    const cases: CaseResult[] = [];
    const publishedAssets = new Map<DatasetId, PublishedAsset>();
    for (const id of throughputCases) {
      const dataset = datasets.get(id.slice(id.indexOf("-") + 1) as DatasetId)!;
      let published: PublishedAsset | undefined;
      if (id.startsWith("fetch-")) {
        log(`publishing ${dataset.id} once for the fetch case`);
        const publish = allTools.assetkit.upload(dataset, FETCH_PREFIX);
        const { name, version } = JSON.parse((await runOrThrow(`assetkit publish ${dataset.id}`, publish, timeoutMs)).stdout) as {
          name: string;
          version: string;
        };
        published = { prefix: FETCH_PREFIX, name, version, dataset };
        publishedAssets.set(dataset.id, published);
      }
      cases.push(
        ...(await runCase(id.startsWith("fetch-") ? "fetch" : "publish", dataset, published, {
          tools: DATASET_IDS.includes(dataset.id) ? tools : scaleTools,
          repeat: options.repeat,
          bucket,
          scratch,
          timeoutMs,
          log,
        })),
      );
      // The asset's whole folder: a single-file version is one object, <name>/<version>, not a folder of them.
      if (published && dataset.id !== KEPT_FETCH_COPY) await bucket.deleteUnder(`${published.prefix}/${published.name}`);
    }

    if (registryCaseIds.length) {
      const registryCasesToRun = registryCaseIds.map((id) => {
        const [, direction, datasetId] = id.split("-") as ["oci", "fetch" | "publish", DatasetId];
        return { direction, dataset: datasets.get(datasetId)! };
      });
      cases.push(...(await registryCases(registryCasesToRun, { paths, place, storeDir: storeDir.path, scratch, repeat: options.repeat, timeoutMs, log })));
    }

    const requests = options.cases.includes("requests")
      ? await countRequests({ cli, place, scratch, mixed: datasets.get("mixed")!, timeoutMs, log })
      : undefined;
    const scaleContext = { cli, place, bucket, scratch, repeat: options.repeat, timeoutMs, log };
    const scale: ScaleResult[] = [];
    if (options.cases.includes("versions")) scale.push(...(await versionsCase(scaleContext)));
    if (options.cases.includes("many-ops")) {
      const many = publishedAssets.get("many");
      if (!many) throw new UsageError("many-ops runs on the fetch-many case's asset: add fetch-many to --cases (or use --scale)");
      scale.push(...(await manyOpsCase(scaleContext, many)));
    }
    const watch = options.cases.includes("watch") ? await watchCase(scaleContext) : undefined;

    if (options.cases.includes("verify")) log(`verifying a signed ${VERIFY_FILES}-file version`);
    const verify = options.cases.includes("verify")
      ? await measureVerify({ files: VERIFY_FILES, rounds: VERIFY_ROUNDS_PER_REPEAT * options.repeat, scratch })
      : undefined;

    const cpus = os.cpus();
    const results: BenchResults = {
      quick: options.quick,
      startedAt,
      finishedAt: new Date().toISOString(),
      options: { repeat: options.repeat, cases: options.cases, tools: tools.map((t) => t.name) },
      machine: {
        cpus: cpus.length,
        cpuModel: cpus[0]?.model.trim() ?? "unknown",
        memoryGiB: Math.round(os.totalmem() / GiB),
        os: `${os.type()} ${os.release()}`,
        node: process.version,
        storeData: storeDir.kind,
      },
      versions,
      cases,
      ...(requests ? { requests } : {}),
      ...(verify ? { verify } : {}),
      ...(scale.length ? { scale } : {}),
      ...(watch ? { watch } : {}),
    };
    process.stdout.write(renderReport(results));
    await mkdir(path.dirname(options.out), { recursive: true });
    await writeFile(options.out, JSON.stringify(results, null, 2) + "\n");
    log(`wrote ${options.out}`);
  } finally {
    bucket.close();
    await servers.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).message}\n`);
  process.exit(err instanceof UsageError ? 2 : 1);
});
