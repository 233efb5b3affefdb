// Deletes whole old versions by policy, never one that a channel (or its recent history) or a lockfile names.
// Without `apply` it only plans: every version it would delete, with its size, and why each other one stays.
import path from "node:path";
import pMap from "p-map";
import type { Context } from "./context.ts";
import { UsageError } from "../base/errors.ts";
import { readLockfile } from "../project/lockfile.ts";
import { checkAssetName } from "../registry/paths.ts";
import { formatBytes } from "../base/units.ts";
import { dataObjects, deleteVersions } from "../registry/prune.ts";
import { sweepBlobs } from "../registry/sweep.ts";
import { DEFAULT_GC_GRACE, sweepLines } from "./gc.ts";
import { keyValueRegistry } from "../registry/key-value.ts";
import { isOciLayout } from "../registry/oci/kind.ts";
import { channelReasons, planRetention, type LockedVersion, type RetentionPolicy } from "../registry/retention.ts";
import { parseDuration, parseWholeNumber } from "../base/units.ts";

export const DEFAULT_KEEP_HISTORY = 5;
const META_CONCURRENCY = 8;

export interface PruneOptions {
  /** Assets to prune (default: every asset of the store). */
  names?: string[];
  keepLast?: string;
  perSeries?: boolean;
  keepWithin?: string;
  keepHistory?: string;
  /** Lockfiles whose versions are kept (the lockfile beside the config is always read when present). */
  keepLocked?: string[];
  /** More locked versions (the Action: the lockfile at the head of every branch). */
  locked?: LockedVersion[];
  /** Delete; without it, only the plan. */
  apply?: boolean;
}

export interface PrunedAsset {
  name: string;
  remove: { version: string; size: number | null }[];
  keep: { version: string; reasons: string[] }[];
  /** Versions a channel moved onto during the prune: kept. */
  reinstated: string[];
  /** Content-addressed layout: what the sweep of blobs no remaining version lists said (sweep.ts). */
  blobs?: string[];
}

export interface PruneResult {
  store: string;
  dryRun: boolean;
  assets: PrunedAsset[];
  removed: { versions: number; bytes: number };
}

export async function pruneCommand(ctx: Context, options: PruneOptions): Promise<PruneResult> {
  const policy = parsePolicy(options);
  // An OCI store deletes version tags (oci/gc.ts); every other layout is the key-value one.
  const registry = isOciLayout(ctx.registry) ? ctx.registry : keyValueRegistry(ctx.registry, "prune");
  if (options.apply && !registry.writable) throw new UsageError(`${registry.url} is read-only: prune the writable store`);
  const locked = [...(options.locked ?? []), ...(await lockedInFiles(ctx, options.keepLocked ?? []))];
  const names = options.names?.length ? options.names.map(checkAssetName) : await registry.assets();
  const now = new Date();
  const result: PruneResult = { store: registry.url, dryRun: !options.apply, assets: [], removed: { versions: 0, bytes: 0 } };

  for (const name of names) {
    const { versions } = await registry.versions(name);
    const metas = new Map(
      await pMap(versions, async (v) => [v, await registry.meta(name, v).catch(() => undefined)] as const, { concurrency: META_CONCURRENCY }),
    );
    const pushed = Object.fromEntries(versions.map((v) => [v, validDate(metas.get(v)?.document.push_date)]));
    const channels = async () => channelReasons((await registry.aliases(name)).table, policy.keepHistory);
    const plan = planRetention({ name, versions, pushed }, policy, await channels(), locked, now);
    const sizeOf = async (v: string): Promise<number | null> => {
      const meta = metas.get(v);
      if (meta?.size !== undefined) return meta.size;
      if (!registry.listable || isOciLayout(registry)) return null;
      return (await dataObjects(registry, name, v)).reduce((sum, o) => sum + o.size, 0);
    };
    const asset: PrunedAsset = { name, remove: [], keep: plan.keep, reinstated: [] };
    for (const version of plan.remove) asset.remove.push({ version, size: await sizeOf(version) });
    if (options.apply && plan.remove.length > 0) {
      const protectedNow = async () => new Set((await channels()).keys());
      const done = isOciLayout(registry)
        ? await registry.deleteVersions(name, plan.remove, protectedNow)
        : await deleteVersions(registry, name, plan.remove, protectedNow);
      asset.reinstated = done.reinstated;
      // Shared blobs stay while a remaining version lists them; only blobs older than gc's default grace go.
      if (!isOciLayout(registry)) {
        const swept = await sweepBlobs(registry, name, { graceMs: parseDuration(DEFAULT_GC_GRACE, "grace"), dryRun: false });
        if (swept.state !== "none") asset.blobs = sweepLines(name, swept, false);
      }
      asset.remove = asset.remove.filter((r) => done.deleted.some((d) => d.version === r.version));
      for (const v of done.reinstated) asset.keep.push({ version: v, reasons: ["a channel moved onto it during the prune"] });
    }
    result.removed.versions += asset.remove.length;
    result.removed.bytes += asset.remove.reduce((sum, r) => sum + (r.size ?? 0), 0);
    result.assets.push(asset);
  }
  return result;
}

function parsePolicy(options: PruneOptions): RetentionPolicy {
  const count = (text: string | undefined, flag: string, min: number): number | undefined => {
    if (text === undefined || text === "") return undefined;
    return parseWholeNumber(text, flag, min);
  };
  const keepLast = count(options.keepLast, "--keep-last", 1);
  const keepWithinMs = options.keepWithin ? parseDuration(options.keepWithin, "--keep-within") : undefined;
  if (keepLast === undefined && keepWithinMs === undefined) {
    throw new UsageError("prune needs a policy: --keep-last N and/or --keep-within DURATION (channels and locked versions are always kept)");
  }
  if (options.perSeries && keepLast === undefined) throw new UsageError("--per-series applies to --keep-last: give --keep-last N");
  return {
    ...(keepLast !== undefined ? { keepLast } : {}),
    ...(keepWithinMs !== undefined ? { keepWithinMs } : {}),
    perSeries: options.perSeries ?? false,
    keepHistory: count(options.keepHistory, "--keep-history", 0) ?? DEFAULT_KEEP_HISTORY,
  };
}

/** The versions named by the given lockfiles and by the one beside the config, when it exists. */
async function lockedInFiles(ctx: Context, files: string[]): Promise<LockedVersion[]> {
  const out: LockedVersion[] = [];
  const given = files.map((f) => path.resolve(f));
  for (const file of new Set([...given, ctx.lockfilePath])) {
    const lock = await readLockfile(file);
    if (!lock) {
      if (!given.includes(file)) continue;
      throw new UsageError(`--keep-locked ${file}: no such lockfile`);
    }
    for (const entry of Object.values(lock.assets)) out.push({ name: entry.name, version: entry.version, where: file });
  }
  return out;
}

function validDate(text: unknown): Date | undefined {
  if (typeof text !== "string") return undefined;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** The plan (or what was done), one line per version: each deleted one with its size, each kept one with why. */
export function pruneLines(r: PruneResult, howToApply: string): string[] {
  const size = (bytes: number | null) => (bytes === null ? "size unknown" : formatBytes(bytes));
  const verb = r.dryRun ? "would delete" : "deleted";
  const lines = r.assets.flatMap((a) => [
    ...a.remove.map((v) => `${verb}\t${a.name}:${v.version}\t${size(v.size)}`),
    ...a.keep.map((v) => `keep\t${a.name}:${v.version}\t${v.reasons.join("; ")}`),
    ...(a.blobs ?? []),
  ]);
  const total = `${verb} ${r.removed.versions} version(s), ${formatBytes(r.removed.bytes)}`;
  return [...lines, r.dryRun ? `${total} (dry run: ${howToApply})` : total];
}
