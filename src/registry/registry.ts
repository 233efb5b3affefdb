// The store layout (contract, modelkit-compatible) and the publish/resolve protocols, over any Store.
//   P/<name>/<version>            data of a single-file asset
//   P/<name>/<version>/<relpath>  each file of a folder asset
//   P/<name>/<version>.meta       modelkit's meta keys + the assetkit block
//   P/<name>/<version>.claim      who is publishing that version right now (assetkit only)
//   P/<name>.versions             {"versions": [newest first], "digests": {version: digest}}, kept complete by
//                                 compare-and-swap; modelkit reads (and may rewrite) only "versions"
//   P/<name>.aliases              alias table (assetkit only)
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import pMap from "p-map";
import { AssetError, UsageError } from "../base/errors.ts";
import {
  buildMeta,
  expectedMetaSize,
  hashedInput,
  metaBytes,
  metaSizeBound,
  metaSizeProblem,
  parseMeta,
  sameContent,
  withStoredEtags,
  type HashingInput,
  type PreparedInput,
  type Provenance,
  type VersionMeta,
} from "./manifest.ts";
import { mapSettling } from "../base/map-settling.ts";
import { assetNameProblem } from "./paths.ts";
import { formatSpec, selectorText, type AssetSpec, type VersionSelector } from "./spec.ts";
import { copyBudget, copyObject } from "../transfer/store-copy.ts";
import { MAX_DOCUMENT_BYTES, StoreError, type ByteRange, type Store } from "../store/store.ts";
import type { TransferProgress, TransferSettings } from "../transfer/engine.ts";
import { detectScheme, SCHEMES, sortNewestFirst, type Bump, type Scheme, type SchemeName } from "./versioning.ts";

const MAX_CLAIM_ATTEMPTS = 1000;
const MAX_INDEX_ATTEMPTS = 200;

export interface RegistryOptions {
  /** The scheme a new asset takes. */
  versioning: SchemeName;
  /** Publish even where the store ignores conditional writes (races may then lose versions). */
  unsafePublish?: boolean;
  warn?: (message: string) => void;
  /** The context's transfer settings: files uploaded, copied or deleted at once (ASSETKIT_CONCURRENCY), streamed copies' tries. */
  settings: TransferSettings;
}

export interface VersionIndex {
  versions: string[];
  scheme: Scheme;
  /** Etag of the `.versions` object, for compare-and-swap; undefined when it is absent. */
  etag?: string;
  /** Asset digests the index records (versions published by assetkit), so resolving needs no meta. */
  digests: Record<string, string>;
  /** The versions listed, when none is in a scheme assetkit knows: nothing resolves, nothing is published onto them. */
  foreign?: string[];
}

export interface Resolved {
  name: string;
  version: string;
  meta: VersionMeta;
}

/** A spec resolved to an exact version, as resolve, lock and fetch report it. */
export interface ResolvedAsset {
  spec: string;
  name: string;
  version: string;
  digest: string | null;
  size?: number;
}

export interface PublishRequest {
  name: string;
  /** Hashed, or being hashed: uploads start before hashing ends (unless `ifChanged` needs the digest first). */
  input: PreparedInput | HashingInput;
  series?: Extract<VersionSelector, { kind: "numeric" }>;
  bump?: Bump;
  version?: string;
  ifChanged?: boolean;
  createdBy: string;
  source: Provenance;
  metadata: Record<string, string>;
  /** Called as files are stored (uploaded or copied). */
  onProgress?: (progress: TransferProgress) => void;
}

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

/** The entry after moving a channel from `old` to `version`. */
/** A channel's moves (or every channel's), as the history command reports them. */
export interface HistoryResult {
  name: string;
  store: string;
  channels: { channel: string; version: string; history: ChannelMove[]; dropped: number }[];
}

function movedEntry(old: AliasEntry | undefined, version: string, promotion: Omit<AliasEntry, "version">, rollback: boolean): AliasEntry {
  const previous = old?.version;
  const { run_url, ref, sha, actor } = promotion.source;
  const move: ChannelMove = {
    version,
    ...(previous ? { previous } : {}),
    at: promotion.promoted_at,
    by: actor ?? promotion.promoted_by,
    ...(run_url ? { run_url } : {}),
    ...(ref ? { ref } : {}),
    ...(sha ? { sha } : {}),
    ...(rollback ? { rollback: true as const } : {}),
  };
  const history = [move, ...(old ? channelHistory(old) : [])];
  const dropped = (old?.history_dropped ?? 0) + Math.max(0, history.length - MAX_CHANNEL_HISTORY);
  return {
    version,
    promoted_at: promotion.promoted_at,
    promoted_by: promotion.promoted_by,
    source: promotion.source,
    ...(previous ? { previous } : {}),
    history: history.slice(0, MAX_CHANNEL_HISTORY),
    ...(dropped ? { history_dropped: dropped } : {}),
  };
}

export interface PublishOutcome {
  version: string;
  digest: string;
  published: boolean;
  /** Files sent from this machine. */
  uploaded: { files: number; bytes: number };
  /** Files equal to the previous version's, copied inside the store instead. */
  copied: { files: number; bytes: number };
}

/** Where a copied version came from: kept in its meta at the destination as `promoted_from`. */
export interface PromotedFrom {
  /** The source store's URI without credentials. */
  store: string;
  version: string;
  digest: string | null;
  at: string;
  by: string;
  run_url?: string;
}

export interface CopyVersionOutcome {
  /** False when the destination already held this version with the same digest. */
  copied: boolean;
  digest: string | null;
  /** Files copied by the service (no byte through this process) and files streamed through it. */
  serverSide: { files: number; bytes: number };
  streamed: { files: number; bytes: number };
}

export class Registry {
  readonly store: Store;
  private readonly options: RegistryOptions;
  private conditionalWritesChecked = false;
  /** Each asset's index, read once per registry (a command's lifetime); publish reads afresh and refreshes it. */
  private readonly indexes = new Map<string, Promise<VersionIndex>>();
  private readonly concurrency: number;

  constructor(store: Store, options: RegistryOptions) {
    this.store = store;
    this.options = options;
    this.concurrency = options.settings.concurrency;
  }

  /** A registry over another store, with the same settings (the destination of a promotion). */
  withStore(store: Store): Registry {
    return new Registry(store, this.options);
  }

  private dataKey(name: string, version: string, relPath = ""): string {
    return relPath ? `${name}/${version}/${relPath}` : `${name}/${version}`;
  }
  private metaKey = (name: string, version: string): string => `${name}/${version}.meta`;
  private claimKey = (name: string, version: string): string => `${name}/${version}.claim`;
  private indexKey = (name: string): string => `${name}.versions`;
  private aliasesKey = (name: string): string => `${name}.aliases`;

  /**
   * The committed versions of an asset, newest first: one GET of `.versions` per registry, or a listing when it
   * is unusable.
   */
  versions(name: string): Promise<VersionIndex> {
    let index = this.indexes.get(name);
    if (!index) {
      index = this.readIndex(name);
      this.indexes.set(name, index);
      index.catch(() => this.indexes.delete(name));
    }
    return index;
  }

  /** The committed versions as the store has them now (not the copy this registry read before). */
  freshVersions(name: string): Promise<VersionIndex> {
    this.indexes.delete(name);
    return this.versions(name);
  }

  private async readIndex(name: string): Promise<VersionIndex> {
    const index = await this.store.read(this.indexKey(name));
    let parsed: IndexDocument | undefined;
    if (index) {
      parsed = parseIndex(index.data);
      if (!parsed) this.options.warn?.(`${this.indexKey(name)} in ${this.store.url} is unreadable; listing the asset's metas instead`);
    }
    parsed ??= { versions: await this.versionsFromMetas(name), digests: {} };
    const scheme = detectScheme(parsed.versions, this.options.versioning);
    const versions = sortNewestFirst(scheme, parsed.versions).filter((v) => scheme.isVersion(v));
    const foreign = versions.length === 0 && parsed.versions.length > 0 ? parsed.versions : undefined;
    return { versions, scheme, digests: parsed.digests, ...(index ? { etag: index.etag } : {}), ...(foreign ? { foreign } : {}) };
  }

  private async versionsFromMetas(name: string): Promise<string[]> {
    if (!this.store.listable) return [];
    const out: string[] = [];
    const prefix = `${name}/`;
    // Shallow: the metas sit beside the versions' folders, whose files (thousands, for a dataset) need not be listed.
    for await (const object of this.store.list(prefix, { shallow: true })) {
      const rest = object.key.slice(prefix.length);
      if (rest.endsWith(".meta") && !rest.includes("/")) out.push(rest.slice(0, -".meta".length));
    }
    return out;
  }

  /**
   * A token that changes whenever what `spec` resolves to may have changed: the etag of the alias table for an
   * alias, else of the index. One HEAD (or metadata read), never an object body: what a watcher polls.
   */
  async revision(spec: AssetSpec): Promise<string> {
    const key = spec.selector.kind === "alias" ? this.aliasesKey(spec.name) : this.indexKey(spec.name);
    return (await this.store.head(key))?.etag ?? "absent";
  }

  /** Drops the index read earlier, so the next resolve reads the store again (a long-running watcher). */
  forget(name: string): void {
    this.indexes.delete(name);
  }

  async meta(name: string, version: string): Promise<VersionMeta> {
    const object = await this.store.read(this.metaKey(name, version));
    if (!object) throw new AssetError(`${name}:${version} does not exist in ${this.store.url}`);
    return parseMeta(object.data, `${this.metaKey(name, version)} in ${this.store.url}`);
  }

  /** The exact version a spec names, with its meta. */
  async resolve(spec: AssetSpec): Promise<Resolved> {
    const { name, version } = await this.resolveVersion(spec);
    return { name, version, meta: await this.meta(name, version) };
  }

  /** The exact version a spec names and its digest: no meta read when the index records the digest. */
  async resolveDigest(spec: AssetSpec): Promise<{ name: string; version: string; digest: string | null }> {
    const { name, version } = await this.resolveVersion(spec);
    return { name, version, digest: await this.digestOf(name, version) };
  }

  /** The digest of an exact version, from the index when it records it (null: written by modelkit, no checksums). */
  async digestOf(name: string, version: string): Promise<string | null> {
    const index = await this.versions(name);
    const listed = index.versions.includes(version) ? index.digests[version] : undefined;
    return listed ?? (await this.meta(name, version)).digest ?? null;
  }

  private async resolveVersion(spec: AssetSpec): Promise<{ name: string; version: string }> {
    const index = await this.versions(spec.name);
    const what = formatSpec({ name: spec.name, version: selectorText(spec.selector) });
    if (index.foreign) throw this.foreignVersions(spec.name, index.foreign, what);
    if (index.versions.length === 0) throw new AssetError(`${what}: no asset named ${spec.name} in ${this.store.url}`);
    // name:latest is name (the latest non-prerelease), as W&B users write it; no channel may be called latest.
    const version =
      spec.selector.kind === "alias" && spec.selector.alias !== LATEST
        ? await this.aliasTarget(spec.name, spec.selector.alias)
        : index.scheme.pick(spec.selector.kind === "alias" ? { kind: "latest" } : spec.selector, index.versions);
    if (!version) {
      throw new AssetError(`${what}: no matching version in ${this.store.url} (latest: ${index.versions.slice(0, 5).join(", ")})`);
    }
    if (!index.versions.includes(version)) throw new AssetError(`${what}: version ${version} is not committed in ${this.store.url}`);
    return { name: spec.name, version };
  }

  private async aliasTarget(name: string, alias: string): Promise<string> {
    const { table } = await this.aliases(name);
    const target = table[alias]?.version;
    if (typeof target !== "string") throw new AssetError(`${name}:${alias}: no alias ${alias} for ${name} in ${this.store.url}`);
    return target;
  }

  /** The alias table of an asset (empty when it has none). */
  async aliases(name: string): Promise<{ table: Record<string, AliasEntry> }> {
    return { table: this.parseAliases(name, (await this.store.read(this.aliasesKey(name)))?.data) };
  }

  private parseAliases(name: string, data: Buffer | undefined): Record<string, AliasEntry> {
    if (!data) return {};
    try {
      const doc = JSON.parse(data.toString("utf8")) as { aliases?: unknown };
      if (doc.aliases && typeof doc.aliases === "object" && !Array.isArray(doc.aliases)) return doc.aliases as Record<string, AliasEntry>;
    } catch {
      // reported below
    }
    throw new AssetError(`${this.aliasesKey(name)} in ${this.store.url} is not an alias table ({"aliases": {...}})`);
  }

  /**
   * Points `alias` at a committed version by compare-and-swap of `<name>.aliases`, so concurrent promotions of
   * other aliases are never lost. Returns the version the alias pointed to before (undefined when new).
   */
  async promote(name: string, alias: string, version: string, promotion: Omit<AliasEntry, "version">): Promise<{ previous?: string; changed: boolean }> {
    const { previous, changed } = await this.moveChannel(name, alias, () => version, promotion, false);
    return { previous, changed };
  }

  /**
   * Moves `alias` back to the version it pointed at before its last move, by the same compare-and-swap (so a
   * concurrent move is never undone blindly: the target is read from the table being swapped).
   */
  async rollback(name: string, alias: string, promotion: Omit<AliasEntry, "version">): Promise<{ version: string; previous?: string; changed: boolean }> {
    return this.moveChannel(
      name,
      alias,
      (entry) => {
        if (!entry) throw new AssetError(`${name}:${alias}: no channel ${alias} for ${name} in ${this.store.url}, nothing to roll back`);
        if (!entry.previous) throw new AssetError(`${name}:${alias} has no earlier version to roll back to (it was created at ${entry.version})`);
        return entry.previous;
      },
      promotion,
      true,
    );
  }

  private async moveChannel(
    name: string,
    alias: string,
    target: (entry: AliasEntry | undefined) => string,
    promotion: Omit<AliasEntry, "version">,
    rollback: boolean,
  ): Promise<{ version: string; previous?: string; changed: boolean }> {
    if (!this.store.writable) throw new UsageError(`${this.store.url} is read-only: promote in a writable store`);
    this.indexes.delete(name);
    const index = await this.versions(name);
    let previous: string | undefined;
    let before: AliasEntry | undefined;
    let version = "";
    const changed = await this.updateDocument(this.aliasesKey(name), async (current) => {
      const table = this.parseAliases(name, current);
      const entry = table[alias];
      before = entry;
      previous = entry?.version;
      version = target(entry);
      if (!index.versions.includes(version)) throw new AssetError(`${name}:${version} is not a committed version in ${this.store.url}`);
      if (previous === version) return undefined;
      return JSON.stringify({ aliases: { ...table, [alias]: movedEntry(entry, version, promotion, rollback) } }, null, 2) + "\n";
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
    this.indexes.delete(name);
    if ((await this.versions(name)).versions.includes(version)) return;
    await this.updateDocument(this.aliasesKey(name), async (current) => {
      const table = this.parseAliases(name, current);
      const entry = table[alias];
      if (entry?.version !== version || entry.promoted_at !== promotedAt) return undefined;
      const { [alias]: _ours, ...others } = table;
      return JSON.stringify({ aliases: before ? { ...others, [alias]: before } : others }, null, 2) + "\n";
    });
    throw new AssetError(`${name}:${version} was deleted (pruned) while it was being promoted: ${name}:${alias} is unchanged`);
  }

  /** Every asset with a `.versions` index, sorted by name. */
  async assets(): Promise<string[]> {
    if (!this.store.listable) throw new UsageError(`${this.store.url} cannot be listed: name the asset (assetkit list <name>)`);
    const names: string[] = [];
    for await (const object of this.store.list("")) {
      if (!object.key.endsWith(".versions")) continue;
      const name = object.key.slice(0, -".versions".length);
      if (!assetNameProblem(name)) names.push(name);
    }
    return names.sort();
  }

  openFile(name: string, version: string, relPath: string, range?: ByteRange): Promise<Readable> {
    return this.store.openRead(this.dataKey(name, version, relPath), range);
  }

  /** The publish protocol: claim → upload → meta → compare-and-swap of `.versions`. Race-free and crash-safe. */
  async publish(request: PublishRequest): Promise<PublishOutcome> {
    const { name } = request;
    const input = "digest" in request.input ? hashedInput(request.input) : request.input;
    if (!this.store.writable) throw new UsageError(`${this.store.url} is read-only: publish to a writable store (s3://, gs://, az://, a folder)`);
    this.refuseUnreadableMeta(`cannot publish ${name}`, expectedMetaSize(input, request), input.files.length);

    this.indexes.delete(name);
    const index = await this.versions(name);
    if (index.foreign) throw this.foreignVersions(name, index.foreign, `cannot publish ${name}`);
    const { scheme } = index;
    // The version this one follows in its series: its files that are unchanged are copied inside the store.
    const previous = scheme.pick(request.series ?? { kind: "latest" }, index.versions);
    const previousMeta = previous ? await this.meta(name, previous).catch(() => undefined) : undefined;
    if (request.ifChanged && previous) {
      const prepared = await input.prepared;
      // By content, not by digest: a version published under an earlier meta schema has another digest for the same files.
      if (previousMeta?.digest && sameContent(previousMeta, prepared))
        return { version: previous, digest: previousMeta.digest, published: false, uploaded: { files: 0, bytes: 0 }, copied: { files: 0, bytes: 0 } };
    }

    const version = await this.claim(name, index, request);
    let stored: Pick<PublishOutcome, "uploaded" | "copied">;
    let prepared: PreparedInput;
    try {
      const base = previous && previousMeta?.isDirectory === input.isDirectory ? { version: previous, meta: previousMeta } : undefined;
      stored = await this.storeFiles(name, version, input, base, request.onProgress);
      prepared = await input.prepared;
      const etags = await this.storedEtags(name, version, input.isDirectory);
      const meta = metaBytes(buildMeta(prepared, request, etags));
      if (!(await this.store.write(this.metaKey(name, version), meta, { ifAbsent: true }))) {
        throw new AssetError(`${name}:${version} was written by another publisher that did not claim it (modelkit?): check its data`);
      }
    } catch (err) {
      await this.abandon(name, version, input);
      throw err;
    }
    await this.addToIndex(name, version, scheme, prepared.digest);
    this.indexes.delete(name);
    await this.store.delete(this.claimKey(name, version));
    return { version, digest: prepared.digest, published: true, ...stored };
  }

  /**
   * Uploads the version's files; those whose path, size and sha256 equal the previous version's are copied. Only a
   * file that may be unchanged (same path and size) waits for its hash; the others upload while hashing goes on.
   */
  private async storeFiles(
    name: string,
    version: string,
    input: HashingInput,
    previous: { version: string; meta: VersionMeta } | undefined,
    onProgress: ((progress: TransferProgress) => void) | undefined,
  ): Promise<Pick<PublishOutcome, "uploaded" | "copied">> {
    const before = new Map(previous?.meta.files.map((f) => [f.path, f]));
    const uploaded = { files: 0, bytes: 0 };
    const copied = { files: 0, bytes: 0 };
    const progress: TransferProgress = { bytes: 0, totalBytes: input.size, files: 0, totalFiles: input.files.length };
    await pMap(
      input.files,
      async (file) => {
        const key = this.dataKey(name, version, file.path);
        const old = before.get(file.path);
        // A file from another store is hashed only as it is copied here, so it cannot wait for its hash first.
        const copyable = !file.copyTo && previous !== undefined && old?.size === file.size && old.sha256 === (await input.hashes.get(file.path)!).sha256;
        const wasCopied = copyable && (await this.copyFrom(name, previous.version, old, key, file.source));
        if (file.copyTo) await file.copyTo(this.store, key);
        else if (!wasCopied) await this.store.write(key, { file: file.source, size: file.size });
        const tally = wasCopied ? copied : uploaded;
        tally.files++;
        tally.bytes += file.size;
        progress.files++;
        progress.bytes += file.size;
        onProgress?.(progress);
      },
      { concurrency: this.concurrency },
    );
    return { uploaded, copied };
  }

  /**
   * Copies `name:version` from another registry into this one under the same version number, by the publish
   * protocol (claim, data, meta only-if-absent, compare-and-swap of `.versions`), so concurrent promoters and
   * publishers here lose nothing. Each file is copied by the service where it can reach the source, else
   * streamed and checked against the source meta's size and sha256. Already here with the same digest: nothing
   * copied; with another digest: refused, nothing changed. A source meta without checksums (modelkit's) is
   * refused unless `allowUnverified`.
   */
  async copyVersion(
    source: Registry,
    name: string,
    version: string,
    promotion: Omit<PromotedFrom, "store" | "version" | "digest"> & { allowUnverified?: boolean; onProgress?: (p: TransferProgress) => void },
  ): Promise<CopyVersionOutcome> {
    if (!this.store.writable) throw new UsageError(`${this.store.url} is read-only: promote to a writable store`);
    const meta = await source.meta(name, version);
    const digest = meta.digest ?? null;
    if (!digest && !promotion.allowUnverified) {
      throw new AssetError(`${name}:${version} in ${source.store.url} has no checksums (written by modelkit?): pass --allow-unverified to copy it unverified`);
    }
    const none = { files: 0, bytes: 0 };
    const existing = await this.existingDigest(name, version);
    if (existing !== undefined) {
      if (existing === digest) return { copied: false, digest, serverSide: none, streamed: { ...none } };
      throw new AssetError(
        `${name}:${version} already exists in ${this.store.url} with digest ${existing ?? "(none: no checksums)"}, ` +
          `not ${digest ?? "(none)"} as in ${source.store.url}; versions are immutable: nothing was changed`,
      );
    }
    this.indexes.delete(name);
    const index = await this.versions(name);
    if (index.foreign) throw this.foreignVersions(name, index.foreign, `cannot copy ${name}:${version}`);
    // An asset new here takes the source's scheme (a modelkit MAJOR.MINOR version stays one), not the configured one.
    const scheme = index.versions.length > 0 ? index.scheme : (await source.versions(name)).scheme;
    if (!scheme.isVersion(version)) {
      throw new AssetError(`${name}:${version} is not a ${scheme.name} version, the scheme of ${name} in ${this.store.url}`);
    }
    const promotedFrom: PromotedFrom = {
      store: source.store.url,
      version,
      digest,
      at: promotion.at,
      by: promotion.by,
      ...(promotion.run_url ? { run_url: promotion.run_url } : {}),
    };
    const bound = metaSizeBound({ ...meta.document, promoted_from: promotedFrom });
    this.refuseUnreadableMeta(`cannot copy ${name}:${version} to ${this.store.url}`, bound, meta.files.length);
    const token = randomUUID();
    const claim = Buffer.from(
      JSON.stringify({
        token,
        by: promotion.by,
        host: hostname(),
        pid: process.pid,
        at: promotion.at,
        digest,
        run_url: promotion.run_url,
        from: source.store.url,
      }) + "\n",
    );
    const claimed = await this.claimOnce(name, version, claim, token);
    if (!claimed || (await this.store.head(this.metaKey(name, version)))) {
      if (claimed) await this.store.delete(this.claimKey(name, version));
      else if (await this.store.head(this.claimKey(name, version))) {
        throw new AssetError(
          `${name}:${version} is being written to ${this.store.url} by another publisher or promoter (${this.claimKey(name, version)}); retry later, or run assetkit gc if that one crashed`,
        );
      }
      return this.copyVersion(source, name, version, promotion); // the version landed (or its writer gave up) meanwhile: look again
    }
    const serverSide = { files: 0, bytes: 0 };
    const streamed = { files: 0, bytes: 0 };
    const files = meta.files;
    try {
      const budget = copyBudget();
      const progress: TransferProgress = { bytes: 0, totalBytes: meta.size ?? 0, files: 0, totalFiles: files.length };
      // Settling: a copy still running when another fails would land after the clean-up below.
      await mapSettling(
        files,
        async (file) => {
          const outcome = await copyObject(source.store, source.dataKey(name, version, file.path), this.store, this.dataKey(name, version, file.path), file, {
            settings: this.options.settings,
            budget,
          });
          const tally = outcome.how === "server" ? serverSide : streamed;
          tally.files++;
          tally.bytes += outcome.bytes;
          progress.files++;
          progress.bytes += outcome.bytes;
          promotion.onProgress?.(progress);
        },
        this.concurrency,
      );
      const stored = withStoredEtags(meta.document, await this.storedEtags(name, version, meta.isDirectory));
      const document = metaBytes({ ...stored, promoted_from: promotedFrom });
      if (!(await this.store.write(this.metaKey(name, version), document, { ifAbsent: true }))) {
        throw new AssetError(`${name}:${version} was written by another publisher that did not claim it (modelkit?): check its data`);
      }
    } catch (err) {
      await this.abandonFiles(
        name,
        version,
        files.map((f) => f.path),
      );
      throw err;
    }
    await this.addToIndex(name, version, scheme, digest);
    this.indexes.delete(name);
    await this.store.delete(this.claimKey(name, version));
    return { copied: true, digest, serverSide, streamed };
  }

  /** The digest of a version this store already has (null: it has no checksums), undefined when it has none. */
  private async existingDigest(name: string, version: string): Promise<string | null | undefined> {
    const object = await this.store.read(this.metaKey(name, version));
    if (!object) return undefined;
    return parseMeta(object.data, `${this.metaKey(name, version)} in ${this.store.url}`).digest ?? null;
  }

  /**
   * Copies a file of an earlier version inside the store, only if the store proves its object is still the one
   * that version's meta lists (its recorded etag, or its sha256: see Store.copy); false when it cannot (the caller
   * uploads the local file), with a warning when the object was changed or damaged since, or the store cannot copy.
   */
  private async copyFrom(name: string, version: string, file: VersionMeta["files"][number], destKey: string, localFile: string): Promise<boolean> {
    const what = `${file.path || name} of ${name}:${version}`;
    try {
      if (await this.store.copy(this.dataKey(name, version, file.path), destKey, { etag: file.etag, sha256: file.sha256 })) return true;
      if (file.etag)
        this.options.warn?.(`${what} is no longer the object its meta lists (changed or damaged in ${this.store.url}): uploading ${localFile} instead`);
      return false;
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
      this.options.warn?.(`cannot copy ${what} inside the store, uploading it instead: ${err.message}`);
      return false;
    }
  }

  /**
   * The store's etag of each data object of a version just stored, by file path (one HEAD, or one listing of the
   * version's folder): recorded in its meta, so the next version's copy of an object can be made conditional on it.
   */
  private async storedEtags(name: string, version: string, isDirectory: boolean): Promise<Map<string, string>> {
    if (!isDirectory) {
      const object = await this.store.head(this.dataKey(name, version));
      return new Map(object?.etag ? [["", object.etag]] : []);
    }
    const prefix = `${this.dataKey(name, version)}/`;
    const etags = new Map<string, string>();
    for await (const object of this.store.list(prefix)) if (object.etag) etags.set(object.key.slice(prefix.length), object.etag);
    return etags;
  }

  /** Refuses, before anything is written, a version whose meta no reader would read (see MAX_DOCUMENT_BYTES). */
  private refuseUnreadableMeta(what: string, bytes: number, files: number): void {
    const problem = metaSizeProblem(bytes, files, MAX_DOCUMENT_BYTES);
    if (problem) throw new UsageError(`${what}: ${problem}`);
  }

  /** Why an asset whose versions follow no known scheme can be neither resolved nor published onto. */
  foreignVersions(name: string, versions: string[], what: string): AssetError {
    const shown = versions.slice(0, 3).join(", ") + (versions.length > 3 ? ", …" : "");
    return new AssetError(
      `${what}: the versions of ${name} in ${this.store.url} (${shown}) follow no versioning scheme assetkit knows (${SCHEMES.map((s) => s.name).join(", ")})`,
    );
  }

  /** Claims the next free version (or the explicit one) by creating its `.claim` only if absent. */
  private async claim(name: string, index: VersionIndex, request: PublishRequest): Promise<string> {
    const { scheme } = index;
    if (request.version !== undefined && !scheme.isVersion(request.version)) {
      throw new UsageError(`--version ${request.version} is not a ${scheme.name} version (${name} uses ${scheme.name})`);
    }
    const token = randomUUID();
    const claim = Buffer.from(
      JSON.stringify({
        token,
        by: request.createdBy,
        host: hostname(),
        pid: process.pid,
        at: new Date().toISOString(),
        ...("digest" in request.input ? { digest: request.input.digest } : {}),
        run_url: request.source.run_url,
      }) + "\n",
    );
    let candidate = request.version ?? scheme.next(index.versions, request.series, request.bump);
    for (let attempt = 0; attempt < MAX_CLAIM_ATTEMPTS; attempt++) {
      if (!index.versions.includes(candidate) && (await this.claimOnce(name, candidate, claim, token))) {
        // A finished publisher deletes its claim only after writing its meta, so a free claim with a meta
        // present means the version is taken.
        if (!(await this.store.head(this.metaKey(name, candidate)))) return candidate;
        await this.store.delete(this.claimKey(name, candidate));
      }
      if (request.version !== undefined) {
        throw new AssetError(`${name}:${candidate} already exists (or is being published) in ${this.store.url}; versions are immutable`);
      }
      candidate = scheme.after(candidate, request.series, request.bump);
    }
    throw new AssetError(`could not claim a version of ${name} after ${MAX_CLAIM_ATTEMPTS} attempts`);
  }

  private async claimOnce(name: string, version: string, claim: Buffer, token: string): Promise<boolean> {
    const key = this.claimKey(name, version);
    if (await this.createClaim(key, claim)) return true;
    // After a lost response a retried create reports "exists" for our own write: the token tells.
    const existing = await this.store.read(key);
    return existing !== undefined && existing.data.toString().includes(`"token":"${token}"`);
  }

  private async addToIndex(name: string, version: string, scheme: Scheme, digest: string | null): Promise<void> {
    await this.updateDocument(this.indexKey(name), async (current) => {
      const known = (current && parseIndex(current)) ?? { versions: await this.versionsFromMetas(name), digests: {} };
      if (current && known.versions.includes(version)) return undefined;
      const versions = sortNewestFirst(scheme, [...known.versions, version]);
      const digests: Record<string, string> = { ...known.digests, ...(digest ? { [version]: digest } : {}) };
      // Same shape modelkit reads ("versions"), plus the digests of the versions listed.
      return JSON.stringify({ versions, digests: Object.fromEntries(versions.filter((v) => digests[v]).map((v) => [v, digests[v]])) }) + "\n";
    });
  }

  /** The keys of one version: its meta, its claim, and its data (a single file, or the folder `data/`). */
  versionKeys(name: string, version: string): { meta: string; claim: string; data: string } {
    return { meta: this.metaKey(name, version), claim: this.claimKey(name, version), data: this.dataKey(name, version) };
  }

  /**
   * Removes versions from `.versions` (and their digests) by compare-and-swap: the first step of deleting a
   * version, after which no reader resolves it. Returns the versions that were listed, with their digests.
   */
  async withdraw(name: string, versions: readonly string[]): Promise<Record<string, string | null>> {
    const removed: Record<string, string | null> = {};
    await this.updateDocument(this.indexKey(name), async (current) => {
      const known = current && parseIndex(current);
      if (!known) return undefined;
      for (const v of Object.keys(removed)) delete removed[v];
      for (const v of versions) if (known.versions.includes(v)) removed[v] = known.digests[v] ?? null;
      if (Object.keys(removed).length === 0) return undefined;
      const kept = known.versions.filter((v) => !(v in removed));
      return JSON.stringify({ versions: kept, digests: Object.fromEntries(kept.filter((v) => known.digests[v]).map((v) => [v, known.digests[v]])) }) + "\n";
    });
    this.indexes.delete(name);
    return removed;
  }

  /** Lists withdrawn versions again (a channel moved onto one while it was being withdrawn). */
  async reinstate(name: string, withdrawn: Record<string, string | null>): Promise<void> {
    const index = await this.versions(name);
    // No digest (a version modelkit wrote): the index lists it without one.
    for (const [version, digest] of Object.entries(withdrawn)) await this.addToIndex(name, version, index.scheme, digest ?? "");
    this.indexes.delete(name);
  }

  /**
   * Read-modify-write of a small shared document by compare-and-swap, retried with backoff under contention, so
   * no concurrent update is lost. `next` gets the current content (undefined when absent) and returns the new
   * one, or undefined when nothing needs to change. True when this call wrote.
   */
  private async updateDocument(key: string, next: (current: Buffer | undefined) => Promise<string | undefined>): Promise<boolean> {
    for (let attempt = 0; attempt < MAX_INDEX_ATTEMPTS; attempt++) {
      const current = await this.store.read(key);
      const body = await next(current?.data);
      if (body === undefined) return false;
      if (await this.store.write(key, Buffer.from(body), current ? { ifMatch: current.etag } : { ifAbsent: true })) return true;
      await contentionBackoff(attempt);
    }
    throw new AssetError(`could not update ${key} in ${this.store.url} after ${MAX_INDEX_ATTEMPTS} attempts (too much contention)`);
  }

  /** Best effort after a failed publish: readers never see the version (no meta), and nothing is left over. */
  private async abandon(name: string, version: string, input: HashingInput): Promise<void> {
    await this.abandonFiles(
      name,
      version,
      input.files.map((f) => f.path),
    );
  }

  private async abandonFiles(name: string, version: string, relPaths: string[]): Promise<void> {
    await pMap(relPaths, (p) => this.store.delete(this.dataKey(name, version, p)).catch(() => undefined), {
      concurrency: this.concurrency,
    });
    await this.store.delete(this.claimKey(name, version)).catch(() => undefined);
  }

  /**
   * Creates a claim only if absent. Publishing is race-free only where the store honours create-if-absent, so the
   * first claim of a registry is created a second time, which must be refused: a store that lets it through is
   * refused (its claim removed) unless the user opted in. The claim is the probe: no extra object, no extra
   * round trips before the first claim.
   */
  private async createClaim(key: string, claim: Buffer): Promise<boolean> {
    try {
      if (!(await this.store.write(key, claim, { ifAbsent: true }))) {
        this.conditionalWritesChecked = true; // refused: the store honours the condition
        return false;
      }
      if (this.conditionalWritesChecked || this.options.unsafePublish) return true;
      if (await this.store.write(key, claim, { ifAbsent: true })) {
        await this.store.delete(key).catch(() => undefined);
        throw new AssetError(
          `${this.store.url} ignores conditional writes (If-None-Match), so concurrent publishes could overwrite each other; ` +
            `upgrade the server, or pass --unsafe-publish if only one publisher ever runs at a time`,
        );
      }
    } catch (err) {
      if (err instanceof StoreError && err.code === "unsupported" && !this.options.unsafePublish) {
        throw new AssetError(`${this.store.url} does not support conditional writes: ${err.message}; pass --unsafe-publish to publish anyway`);
      }
      throw err;
    }
    this.conditionalWritesChecked = true;
    return true;
  }
}

/** Randomised exponential backoff between compare-and-swap attempts on a contended document. */
function contentionBackoff(attempt: number): Promise<void> {
  return sleep(Math.min(500, 5 * 2 ** Math.min(attempt, 6)) * Math.random());
}

interface IndexDocument {
  versions: string[];
  digests: Record<string, string>;
}

/**
 * `{"versions": [...], "digests": {...}}` → its content, or undefined without a versions list. The digests are
 * optional (modelkit writes none, and drops them when it rewrites the index) and kept only where well-formed.
 */
function parseIndex(data: Buffer): IndexDocument | undefined {
  try {
    const doc = JSON.parse(data.toString("utf8")) as { versions?: unknown; digests?: unknown };
    if (!Array.isArray(doc.versions) || !doc.versions.every((v) => typeof v === "string")) return undefined;
    const digests = typeof doc.digests === "object" && doc.digests !== null ? Object.entries(doc.digests) : [];
    return {
      versions: doc.versions as string[],
      digests: Object.fromEntries(digests.filter(([, d]) => typeof d === "string" && /^sha256:[0-9a-f]{64}$/.test(d))),
    };
  } catch {
    return undefined;
  }
}
