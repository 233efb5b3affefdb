// Frees space in the local assets dir: removes the least recently used versions (last use recorded at fetch),
// never one a running fetch holds, and never one the lockfile beside the config names unless `all`.
import type { Context } from "./context.ts";
import { UsageError } from "../base/errors.ts";
import { ServedDir } from "../local/serving/served-dir.ts";
import { parseSize, parseWholeNumber } from "../base/units.ts";

export interface PruneLocalOptions {
  maxSize?: string;
  keepLast?: string;
  /** Also remove versions the lockfile names. */
  all?: boolean;
  dryRun?: boolean;
}

export interface PruneLocalResult {
  assetsDir: string;
  dryRun: boolean;
  removed: { name: string; version: string; size: number; lastUsed: string }[];
  /** Versions that would have gone but stayed, and why. */
  kept: { name: string; version: string; reason: string }[];
  /** Bytes of local copies before and after. */
  before: number;
  after: number;
  maxSize: number | null;
}

export async function pruneLocalCommand(ctx: Context, options: PruneLocalOptions): Promise<PruneLocalResult> {
  const maxSize = options.maxSize ? parseSize(options.maxSize, "--max-size") : undefined;
  const keepLast = options.keepLast === undefined ? undefined : parseWholeNumber(options.keepLast, "--keep-last", 0);
  if (maxSize === undefined && keepLast === undefined) throw new UsageError("prune-local needs --max-size SIZE and/or --keep-last N");

  const locked = new Set(options.all ? [] : Object.values((await ctx.readLock())?.assets ?? {}).map((e) => `${e.name}:${e.version}`));
  const served = new ServedDir(ctx.assetsDir);
  // Least recently used first.
  const versions = (await ctx.assetsDir.localVersions()).sort((a, b) => a.lastUsed.getTime() - b.lastUsed.getTime());
  const before = versions.reduce((sum, v) => sum + v.size, 0);
  const result: PruneLocalResult = {
    assetsDir: ctx.assetsDir.root,
    dryRun: options.dryRun ?? false,
    removed: [],
    kept: [],
    before,
    after: before,
    maxSize: maxSize ?? null,
  };

  const excess = new Set<(typeof versions)[number]>();
  if (keepLast !== undefined) {
    const seen = new Map<string, number>();
    for (const v of [...versions].reverse()) {
      const rank = (seen.get(v.name) ?? 0) + 1;
      seen.set(v.name, rank);
      if (rank > keepLast) excess.add(v);
    }
  }
  const overSize = () => maxSize !== undefined && result.after > maxSize;
  for (const v of versions) {
    if (!excess.has(v) && !overSize()) continue;
    const spec = `${v.name}:${v.version}`;
    if (locked.has(spec)) {
      result.kept.push({ name: v.name, version: v.version, reason: `locked in ${ctx.lockfilePath} (--all removes it too)` });
      continue;
    }
    const state = await served.state(v.name);
    if (state && (state.version === v.version || state.previous.includes(v.version))) {
      result.kept.push({ name: v.name, version: v.version, reason: "a sync serves it (current, or kept for rollback)" });
      continue;
    }
    if (!result.dryRun && !(await ctx.assetsDir.removeUnlessHeld(v.name, v.version))) {
      result.kept.push({ name: v.name, version: v.version, reason: "a running fetch holds it" });
      continue;
    }
    result.removed.push({ name: v.name, version: v.version, size: v.size, lastUsed: v.lastUsed.toISOString() });
    result.after -= v.size;
  }
  return result;
}
