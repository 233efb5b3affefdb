// The throughput cases: every tool uploads (publish) or downloads (fetch) one dataset, interleaved and repeated,
// each run checked (the data really arrived) and cleaned up (download deleted, uploaded prefix emptied) untimed.
import { mkdtemp, rm } from "node:fs/promises";
import path from "node:path";
import type { Bucket } from "./bucket.ts";
import { treeBytes, type Dataset, type DatasetId } from "./datasets.ts";
import { measure, median } from "./measure.ts";
import type { PublishedAsset, Tool, ToolName } from "./tools.ts";

export type Direction = "publish" | "fetch";
export type CaseId = `${Direction}-${DatasetId}`;

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
  /** Medians over the successful runs; absent when none succeeded. */
  median?: { seconds: number; mbPerSec: number; filesPerSec: number; peakRssMiB: number; cpuSecondsPerGiB: number };
}

export interface CaseContext {
  tools: Tool[];
  repeat: number;
  bucket: Bucket;
  /** Where downloads go (each run in a fresh folder, deleted after it). */
  scratch: string;
  timeoutMs: number;
  log(line: string): void;
}

/**
 * Runs one case for every tool, `repeat` times; each round starts with a different tool (rotation), so no tool
 * always runs first, on a cold server, or right after the same neighbour.
 */
export async function runCase(direction: Direction, dataset: Dataset, published: PublishedAsset | undefined, ctx: CaseContext): Promise<CaseResult[]> {
  const id: CaseId = `${direction}-${dataset.id}`;
  const runs = new Map<ToolName, Run[]>(ctx.tools.map((t) => [t.name, []]));
  for (let round = 0; round < ctx.repeat; round++) {
    const order = [...ctx.tools.slice(round % ctx.tools.length), ...ctx.tools.slice(0, round % ctx.tools.length)];
    for (const tool of order) {
      const run = direction === "fetch" ? await fetchOnce(tool, published!, ctx) : await publishOnce(tool, dataset, `upload/${tool.name}/${round}`, ctx);
      runs.get(tool.name)!.push(run);
      const rate = dataset.id === "small" ? `${(dataset.files / run.seconds).toFixed(0)} files/s` : `${(dataset.bytes / 1e6 / run.seconds).toFixed(0)} MB/s`;
      ctx.log(
        `${id} ${tool.name} round ${round + 1}/${ctx.repeat}: ${run.ok ? `${run.seconds.toFixed(2)} s, ${rate}, ${run.cpuSeconds.toFixed(2)} s CPU (${run.systemSeconds.toFixed(2)} sys), ${run.peakRssMiB.toFixed(0)} MiB RSS` : `FAILED: ${run.error}`}`,
      );
    }
  }
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
      const cpuSecondsPerGiB = median(ok.map((r) => r.cpuSeconds)) / (dataset.bytes / 1024 ** 3);
      result.median = {
        seconds,
        mbPerSec: dataset.bytes / 1e6 / seconds,
        filesPerSec: dataset.files / seconds,
        peakRssMiB: median(ok.map((r) => r.peakRssMiB)),
        cpuSecondsPerGiB,
      };
    }
    return result;
  });
}

async function fetchOnce(tool: Tool, asset: PublishedAsset, ctx: CaseContext): Promise<Run> {
  const dest = await mkdtemp(path.join(ctx.scratch, `fetch-${tool.name}-`));
  try {
    const outcome = await measure(tool.download(asset, dest), ctx.timeoutMs);
    const run: Run = {
      ok: outcome.code === 0,
      seconds: outcome.seconds,
      peakRssMiB: outcome.peakRssMiB,
      cpuSeconds: outcome.cpuSeconds,
      systemSeconds: outcome.systemSeconds,
    };
    if (!run.ok) return { ...run, error: lastLine(outcome.stderr) };
    const got = await treeBytes(dest);
    return got >= asset.dataset.bytes ? run : { ...run, ok: false, error: `only ${got} of ${asset.dataset.bytes} bytes arrived` };
  } finally {
    await rm(dest, { recursive: true, force: true });
  }
}

async function publishOnce(tool: Tool, dataset: Dataset, prefix: string, ctx: CaseContext): Promise<Run> {
  try {
    const outcome = await measure(tool.upload(dataset, prefix), ctx.timeoutMs);
    const run: Run = {
      ok: outcome.code === 0,
      seconds: outcome.seconds,
      peakRssMiB: outcome.peakRssMiB,
      cpuSeconds: outcome.cpuSeconds,
      systemSeconds: outcome.systemSeconds,
    };
    if (!run.ok) return { ...run, error: lastLine(outcome.stderr) };
    const stored = await ctx.bucket.bytesUnder(prefix);
    return stored >= dataset.bytes ? run : { ...run, ok: false, error: `only ${stored} of ${dataset.bytes} bytes stored` };
  } finally {
    await ctx.bucket.deleteUnder(prefix);
  }
}

/** The last non-empty line of a failing tool's stderr: what went wrong, usually. */
function lastLine(text: string): string {
  return text.trim().split("\n").filter(Boolean).pop()?.slice(0, 500) ?? "(no output)";
}
