// Which versions of an asset a prune keeps, and why: a pure function of the versions, their push dates, the
// channels (with their history) and the locked versions, so the plan printed is exactly what is deleted.
import type { AliasEntry } from "./channels.ts";
import { isDateVersion } from "./spec.ts";

export interface RetentionPolicy {
  /** Keep the newest N versions (of each major series with perSeries). */
  keepLast?: number;
  perSeries?: boolean;
  /** Keep versions pushed within this many milliseconds. */
  keepWithinMs?: number;
  /** Keep the versions of each channel's last K history entries. */
  keepHistory: number;
}

export interface AssetVersions {
  name: string;
  /** Newest first. */
  versions: string[];
  /** push_date of each version's meta, when readable. */
  pushed: Record<string, Date | undefined>;
}

/** A version some lockfile names, and where that lockfile is (a file, or `assets.lock` on a branch). */
export interface LockedVersion {
  name: string;
  version: string;
  where: string;
}

export interface RetentionPlan {
  keep: { version: string; reasons: string[] }[];
  remove: string[];
}

/** One channel's entry in `<name>.aliases` as prune reads it: the alias contract, with or without history. */
type ChannelEntry = Omit<Partial<AliasEntry>, "history"> & { history?: unknown };

/**
 * The versions a channel protects: where it points, and where its last K history entries pointed (newest first).
 * A table written before history existed has only `version` and `previous`: read as the history [version, previous].
 */
export function channelVersions(entry: ChannelEntry, keepHistory: number): string[] {
  const history = Array.isArray(entry.history)
    ? (entry.history as unknown[]).map((h) => (h && typeof h === "object" ? (h as { version?: unknown }).version : undefined))
    : [entry.version, entry.previous];
  const out = new Set<string>();
  if (typeof entry.version === "string") out.add(entry.version);
  for (const v of history.slice(0, keepHistory)) if (typeof v === "string") out.add(v);
  return [...out];
}

/** The versions each channel of an alias table protects, as "channel production" reasons. */
export function channelReasons(table: Record<string, unknown>, keepHistory: number): Map<string, string[]> {
  const reasons = new Map<string, string[]>();
  for (const [channel, entry] of Object.entries(table)) {
    if (!entry || typeof entry !== "object") continue;
    const current = (entry as ChannelEntry).version;
    for (const v of channelVersions(entry as ChannelEntry, keepHistory)) {
      reasons.set(v, [...(reasons.get(v) ?? []), v === current ? `channel ${channel}` : `in the history of channel ${channel}`]);
    }
  }
  return reasons;
}

export function planRetention(
  asset: AssetVersions,
  policy: RetentionPolicy,
  channels: Map<string, string[]>,
  locked: LockedVersion[],
  now: Date,
): RetentionPlan {
  const reasons = new Map<string, string[]>(asset.versions.map((v) => [v, []]));
  const add = (version: string, reason: string) => reasons.get(version)?.push(reason);

  if (asset.versions[0]) add(asset.versions[0], "latest");
  if (policy.keepLast !== undefined) {
    const seen = new Map<string, number>();
    for (const version of asset.versions) {
      const series = policy.perSeries ? majorOf(version) : undefined;
      const rank = (seen.get(series ?? "") ?? 0) + 1;
      seen.set(series ?? "", rank);
      if (rank <= policy.keepLast) add(version, series ? `among the last ${policy.keepLast} of series ${series}` : `among the last ${policy.keepLast}`);
    }
  }
  if (policy.keepWithinMs !== undefined) {
    const cutoff = now.getTime() - policy.keepWithinMs;
    for (const version of asset.versions) {
      const pushed = asset.pushed[version];
      if (!pushed) add(version, "no readable push date");
      else if (pushed.getTime() >= cutoff) add(version, `pushed ${pushed.toISOString().slice(0, 10)}, within the keep-within period`);
    }
  }
  for (const [version, why] of channels) for (const reason of why) add(version, reason);
  for (const lock of locked) if (lock.name === asset.name) add(lock.version, `locked in ${lock.where}`);

  const plan: RetentionPlan = { keep: [], remove: [] };
  for (const version of asset.versions) {
    const why = reasons.get(version)!;
    if (why.length > 0) plan.keep.push({ version, reasons: why });
    else plan.remove.push(version);
  }
  return plan;
}

/** The major series of a version (1.4.2 and 1.4 are both in series 1); undefined for a date: dates have no series. */
function majorOf(version: string): string | undefined {
  return isDateVersion(version) ? undefined : version.split(".")[0]!;
}
