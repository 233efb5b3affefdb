// The throughput cases: every tool uploads (publish) or downloads (fetch) one dataset, interleaved and repeated,
// each run checked (the data really arrived) and cleaned up (download deleted, uploaded prefix emptied) untimed.
import { mkdtemp, rm } from "node:fs/promises";
import path from "node:path";
import type { Bucket } from "./bucket.ts";
import { FILE_COUNT_DATASETS, treeBytes, type Dataset, type DatasetId } from "./datasets.ts";
import { measure, median, type Outcome } from "./measure.ts";
import type { PublishedAsset, Tool, ToolName } from "./tools.ts";

export type Direction = "publish" | "fetch";
/** `oci-…`: the same case on a registry (bench/registry.ts), against oras. */
export type CaseId = `${"" | "oci-"}${Direction}-${DatasetId}`;

export interface Run {
  ok: boolean;
  seconds: number;
  peakRssMiB: number;
  cpuSeconds: number;
  /** The kernel's share of cpuSeconds. */
  systemSeconds: number;
  error?: string;
}

export interface CaseResult {
  case: CaseId;
  direction: Direction;
  dataset: Pick<Dataset, "id" | "title" | "files" | "bytes">;
  tool: ToolName;
  runs: Run[];
  /** Registry cases: the requests of one more run, made through a counting proxy (not timed). */
  requests?: number;
  /** Medians over the successful runs; absent when none succeeded. */
  median?: { seconds: number; mbPerSec: number; filesPerSec: number; peakRssMiB: number; cpuSecondsPerGiB: number; cpuMsPerFile: number };
}

export interface CaseContext {
  tools: Tool[];
  repeat: number;
  /** Where uploads land: checked, then emptied. */
  bucket: Pick<Bucket, "bytesUnder" | "deleteUnder">;
  /** "oci": the registry cases (case ids `oci-…`). */
  store?: "oci";
  /** Where downloads go (each run in a fresh folder, deleted after it). */
  scratch: string;
  timeoutMs: number;
  log(line: string): void;
}

/**
 * A case's downloads and uploads are deleted when it ends, not between its runs, while they fit in this. A run right
 * after a 2,000-file deletion (a download, or MinIO's copy of an upload) created its files at up to ~650 µs each
 * instead of ~25 (perf: ext4's inode allocator, in `recently_deleted`), and the cost grew over a case: fetching
 * 2,000 × 64 KiB took s5cmd 0.93 s in round 1 and 2.14 s in round 7, assetkit alike; deleted at the end, every
 * round of both took 0.89-1.08 s. More kept is written back to disk during later runs: keeping every run of the
 * 456 MiB case slowed s5cmd's fetch of it from 0.6 to 0.9-1.2 s.
 */
const KEPT_RUNS_BYTES = 4 * 1024 ** 3;

/**
 * Runs one case for every tool, `repeat` times; each round starts with a different tool (rotation), so no tool
 * always runs first, on a cold server, or right after the same neighbour.
 */
export async function runCase(direction: Direction, dataset: Dataset, published: PublishedAsset | undefined, ctx: CaseContext): Promise<CaseResult[]> {
  const id: CaseId = `${ctx.store ? "oci-" : ""}${direction}-${dataset.id}`;
  const runs = new Map<ToolName, Run[]>(ctx.tools.map((t) => [t.name, []]));
  const kept = dataset.bytes * ctx.tools.length * (ctx.repeat + 1) <= KEPT_RUNS_BYTES;
  const cleanups: Cleanup[] = [];
  const dispose = async (cleanup: Cleanup): Promise<void> => {
    if (kept) cleanups.push(cleanup);
    else await cleanup();
  };
  const runOnce = (tool: Tool, upload: string) =>
    direction === "fetch" ? fetchOnce(tool, published!, ctx) : publishOnce(tool, dataset, `upload/${upload}`, ctx);
  // A warm-up round, every tool once, not counted. The first runs of a case are slow for whichever tool comes first:
  // they pay for what this VM's memory reclaim (DAMON, pages idle for a minute) or the setup evicted (fetching
  // 2,000 × 64 KiB: 1.22 s, then 0.89-1.00), and for the previous case's mass deletion, which slowed s5cmd's next
  // 4-5 publishes of 2,000 × 64 KiB from 2.1-2.2 s to 3.0-3.8 s. One warm-up run of the first tool left that to
  // round 1's first place, the same tool's in every case: assetkit's first counted publish took 3.30 s, the next
  // two 2.26-2.34 s.
  for (const tool of ctx.tools) {
    const warmUp = await runOnce(tool, `warm-up/${tool.name}`);
    await dispose(warmUp.cleanup);
    ctx.log(`${id} warm-up run (${tool.name}, not counted): ${warmUp.run.seconds.toFixed(2)} s`);
  }
  for (let round = 0; round < ctx.repeat; round++) {
    const order = [...ctx.tools.slice(round % ctx.tools.length), ...ctx.tools.slice(0, round % ctx.tools.length)];
    for (const tool of order) {
      const { run, cleanup } = await runOnce(tool, `${tool.name}/${round}`);
      await dispose(cleanup);
      runs.get(tool.name)!.push(run);
      const rate = FILE_COUNT_DATASETS.includes(dataset.id)
        ? `${(dataset.files / run.seconds).toFixed(0)} files/s`
        : `${(dataset.bytes / 1e6 / run.seconds).toFixed(0)} MB/s`;
      ctx.log(
        `${id} ${tool.name} round ${round + 1}/${ctx.repeat}: ${run.ok ? `${run.seconds.toFixed(2)} s, ${rate}, ${run.cpuSeconds.toFixed(2)} s CPU (${run.systemSeconds.toFixed(2)} sys), ${run.peakRssMiB.toFixed(0)} MiB RSS` : `FAILED: ${run.error}`}`,
      );
    }
  }
  for (const cleanup of cleanups) await cleanup();
  return ctx.tools.map((tool) => {
    const all = runs.get(tool.name)!;
    const ok = all.filter((r) => r.ok);
    const result: CaseResult = {
      case: id,
      direction,
      dataset: { id: dataset.id, title: dataset.title, files: dataset.files, bytes: dataset.bytes },
      tool: tool.name,
      runs: all,
    };
    if (ok.length) {
      const seconds = median(ok.map((r) => r.seconds));
      const cpuSeconds = median(ok.map((r) => r.cpuSeconds));
      const cpuSecondsPerGiB = cpuSeconds / (dataset.bytes / 1024 ** 3);
      result.median = {
        seconds,
        mbPerSec: dataset.bytes / 1e6 / seconds,
        filesPerSec: dataset.files / seconds,
        peakRssMiB: median(ok.map((r) => r.peakRssMiB)),
        cpuSecondsPerGiB,
        cpuMsPerFile: (cpuSeconds * 1000) / dataset.files,
      };
    }
    return result;
  });
}

/** Deletes what a run downloaded or uploaded. */
type Cleanup = () => Promise<void>;

async function fetchOnce(tool: Tool, asset: PublishedAsset, ctx: CaseContext): Promise<{ run: Run; cleanup: Cleanup }> {
  const dest = await mkdtemp(path.join(ctx.scratch, `fetch-${tool.name}-`));
  const cleanup = () => rm(dest, { recursive: true, force: true });
  try {
    const outcome = await measure(tool.download(asset, dest), ctx.timeoutMs);
    const run = runOf(outcome);
    if (!run.ok) return { run: { ...run, error: lastLine(outcome.stderr) }, cleanup };
    const got = await treeBytes(dest);
    return { run: got >= asset.dataset.bytes ? run : { ...run, ok: false, error: `only ${got} of ${asset.dataset.bytes} bytes arrived` }, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

async function publishOnce(tool: Tool, dataset: Dataset, prefix: string, ctx: CaseContext): Promise<{ run: Run; cleanup: Cleanup }> {
  const cleanup = () => ctx.bucket.deleteUnder(prefix);
  try {
    const outcome = await measure(tool.upload(dataset, prefix), ctx.timeoutMs);
    const run = runOf(outcome);
    if (!run.ok) return { run: { ...run, error: lastLine(outcome.stderr) }, cleanup };
    const stored = await ctx.bucket.bytesUnder(prefix);
    return { run: stored >= dataset.bytes ? run : { ...run, ok: false, error: `only ${stored} of ${dataset.bytes} bytes stored` }, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

function runOf(outcome: Outcome): Run {
  const { seconds, peakRssMiB, cpuSeconds, systemSeconds } = outcome;
  return { ok: outcome.code === 0, seconds, peakRssMiB, cpuSeconds, systemSeconds };
}

/** The last non-empty line of a failing tool's stderr: what went wrong, usually. */
function lastLine(text: string): string {
  return text.trim().split("\n").filter(Boolean).pop()?.slice(0, 500) ?? "(no output)";
}
