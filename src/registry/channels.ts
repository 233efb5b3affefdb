// Channels: the alias table `<name>.aliases` (where each channel points, and its history of moves), moved only by
// compare-and-swap and only onto committed versions, so concurrent promotions and prunes never undo each other.
import { AssetError, UsageError } from "../base/errors.ts";
import type { Store } from "../store/store.ts";
import { aliasesKey } from "./layout.ts";
import type { Provenance } from "./manifest.ts";
import { updateDocument } from "./shared-document.ts";
import type { VersionIndexes } from "./version-index.ts";

/** One move of a channel, as its history keeps it. */
export interface ChannelMove {
  version: string;
  previous?: string;
  at: string;
  /** Who moved it: the GitHub actor or local user, else the tool. */
  by: string;
  run_url?: string;
  ref?: string;
  sha?: string;
  /** Set on moves made by `promote --rollback`. */
  rollback?: true;
}

/**
 * One entry of `<name>.aliases`: where the alias points, who moved it there, and its history (newest first, at
 * most MAX_CHANNEL_HISTORY moves; `history_dropped` counts the older ones no longer kept). Entries written
 * before history existed have none: they read as a history of one move.
 */
export interface AliasEntry {
  version: string;
  promoted_at: string;
  promoted_by: string;
  source: Provenance;
  /** The version the alias pointed to before this promotion. */
  previous?: string;
  history?: ChannelMove[];
  history_dropped?: number;
}

/** Who moves a channel, when, from where: an alias entry without its target. */
export type Promotion = Omit<AliasEntry, "version">;

/** A channel's moves (or every channel's), as the history command reports them. */
export interface HistoryResult {
  name: string;
  store: string;
  channels: { channel: string; version: string; history: ChannelMove[]; dropped: number }[];
}

export interface ChannelMoveOutcome {
  version: string;
  previous?: string;
  changed: boolean;
}

/** The alias that means the latest non-prerelease version; never a channel. */
export const LATEST = "latest";

/** Moves of one channel kept inline in `.aliases`; older ones are dropped and counted. */
export const MAX_CHANNEL_HISTORY = 100;

/** A channel's moves, newest first; an entry from before history existed is one move. */
export function channelHistory(entry: AliasEntry): ChannelMove[] {
  if (Array.isArray(entry.history)) return entry.history;
  const { run_url, ref, sha } = entry.source ?? {};
  return [
    {
      version: entry.version,
      ...(entry.previous ? { previous: entry.previous } : {}),
      at: entry.promoted_at,
      by: entry.source?.actor ?? entry.promoted_by,
      ...(run_url ? { run_url } : {}),
      ...(ref ? { ref } : {}),
      ...(sha ? { sha } : {}),
    },
  ];
}

/** A channel's move to `version` from `previous`, as every layout records it: who, when, from which run. */
export function channelMove(version: string, previous: string | undefined, promotion: Promotion, rollback: boolean): ChannelMove {
  const { run_url, ref, sha, actor } = promotion.source;
  return {
    version,
    ...(previous ? { previous } : {}),
    at: promotion.promoted_at,
    by: actor ?? promotion.promoted_by,
    ...(run_url ? { run_url } : {}),
    ...(ref ? { ref } : {}),
    ...(sha ? { sha } : {}),
    ...(rollback ? { rollback: true as const } : {}),
  };
}

/** The entry after moving a channel from `old` to `version`. */
function movedEntry(old: AliasEntry | undefined, version: string, promotion: Promotion, rollback: boolean): AliasEntry {
  const move = channelMove(version, old?.version, promotion, rollback);
  const history = [move, ...(old ? channelHistory(old) : [])];
  const dropped = (old?.history_dropped ?? 0) + Math.max(0, history.length - MAX_CHANNEL_HISTORY);
  return {
    version,
    promoted_at: promotion.promoted_at,
    promoted_by: promotion.promoted_by,
    source: promotion.source,
    ...(old?.version ? { previous: old.version } : {}),
    history: history.slice(0, MAX_CHANNEL_HISTORY),
    ...(dropped ? { history_dropped: dropped } : {}),
  };
}

/** The channels of the assets of one store. */
export class Channels {
  private readonly store: Store;
  private readonly indexes: VersionIndexes;

  constructor(store: Store, indexes: VersionIndexes) {
    this.store = store;
    this.indexes = indexes;
  }

  /** The alias table of an asset (empty when it has none). */
  async table(name: string): Promise<Record<string, AliasEntry>> {
    return this.parse(name, (await this.store.read(aliasesKey(name)))?.data);
  }

  /** The version `alias` points at. */
  async target(name: string, alias: string): Promise<string> {
    const target = (await this.table(name))[alias]?.version;
    if (typeof target !== "string") throw new AssetError(`${name}:${alias}: no alias ${alias} for ${name} in ${this.store.url}`);
    return target;
  }

  /** Points `alias` at a committed version. `previous` is the version it pointed to before (undefined when new). */
  async promote(name: string, alias: string, version: string, promotion: Promotion): Promise<{ previous?: string; changed: boolean }> {
    const { previous, changed } = await this.move(name, alias, () => version, promotion, false);
    return { previous, changed };
  }

  /**
   * Moves `alias` back to the version it pointed at before its last move (the target is read from the table
   * being swapped, so a concurrent move is never undone blindly). `expected`: the target the caller checked; another
   * one (the channel moved meanwhile) fails the rollback.
   */
  rollback(name: string, alias: string, promotion: Promotion, expected?: string): Promise<ChannelMoveOutcome> {
    return this.move(
      name,
      alias,
      (entry) => {
        if (!entry) throw new AssetError(`${name}:${alias}: no channel ${alias} for ${name} in ${this.store.url}, nothing to roll back`);
        if (!entry.previous) throw new AssetError(`${name}:${alias} has no earlier version to roll back to (it was created at ${entry.version})`);
        if (expected !== undefined && entry.previous !== expected)
          throw new AssetError(
            `${name}:${alias} moved while its rollback target ${expected} was checked (it would now go back to ${entry.previous}): run again`,
          );
        return entry.previous;
      },
      promotion,
      true,
    );
  }

  private async move(
    name: string,
    alias: string,
    target: (entry: AliasEntry | undefined) => string,
    promotion: Promotion,
    rollback: boolean,
  ): Promise<ChannelMoveOutcome> {
    if (!this.store.writable) throw new UsageError(`${this.store.url} is read-only: promote in a writable store`);
    const index = await this.indexes.fresh(name);
    let previous: string | undefined;
    let before: AliasEntry | undefined;
    let version = "";
    const changed = await updateDocument(this.store, aliasesKey(name), async (current) => {
      const table = this.parse(name, current);
      const entry = table[alias];
      before = entry;
      previous = entry?.version;
      version = target(entry);
      if (!index.versions.includes(version)) throw new AssetError(`${name}:${version} is not a committed version in ${this.store.url}`);
      if (previous === version) return undefined;
      return aliasesDocument({ ...table, [alias]: movedEntry(entry, version, promotion, rollback) });
    });
    if (changed) await this.undoPromotionOfWithdrawn(name, alias, version, promotion.promoted_at, before);
    return { version, previous, changed };
  }

  /**
   * A prune may withdraw the version between our index check and our alias write. Prune re-reads the aliases
   * after withdrawing, and we re-read the index after promoting: one of us sees the other. If the version is
   * gone, the alias goes back to where it was (unless someone moved it since) and the promotion fails.
   */
  private async undoPromotionOfWithdrawn(name: string, alias: string, version: string, promotedAt: string, before: AliasEntry | undefined): Promise<void> {
    if ((await this.indexes.fresh(name)).versions.includes(version)) return;
    await updateDocument(this.store, aliasesKey(name), async (current) => {
      const table = this.parse(name, current);
      const entry = table[alias];
      if (entry?.version !== version || entry.promoted_at !== promotedAt) return undefined;
      const { [alias]: _ours, ...others } = table;
      return aliasesDocument(before ? { ...others, [alias]: before } : others);
    });
    throw new AssetError(`${name}:${version} was deleted (pruned) while it was being promoted: ${name}:${alias} is unchanged`);
  }

  private parse(name: string, data: Buffer | undefined): Record<string, AliasEntry> {
    if (!data) return {};
    try {
      const doc = JSON.parse(data.toString("utf8")) as { aliases?: unknown };
      if (doc.aliases && typeof doc.aliases === "object" && !Array.isArray(doc.aliases)) return doc.aliases as Record<string, AliasEntry>;
    } catch {
      // reported below
    }
    throw new AssetError(`${aliasesKey(name)} in ${this.store.url} is not an alias table ({"aliases": {...}})`);
  }
}

function aliasesDocument(table: Record<string, AliasEntry>): string {
  return JSON.stringify({ aliases: table }, null, 2) + "\n";
}
