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
import { AssetError, UsageError } from "./errors.ts";
import { buildMeta, parseMeta, type PreparedInput, type Provenance, type VersionMeta } from "./manifest.ts";
import { assetNameProblem } from "./paths.ts";
import { formatSpec, selectorText, type AssetSpec, type VersionSelector } from "./spec.ts";
import { StoreError, type ByteRange, type Store } from "./store/store.ts";
import { DEFAULT_TUNING } from "./store/tuning.ts";
import type { TransferProgress } from "./transfer.ts";
import { detectScheme, sortNewestFirst, type Bump, type Scheme, type SchemeName } from "./versioning.ts";

const MAX_CLAIM_ATTEMPTS = 1000;
const MAX_INDEX_ATTEMPTS = 200;

export interface RegistryOptions {
  /** The scheme a new asset takes. */
  versioning: SchemeName;
  /** Publish even where the store ignores conditional writes (races may then lose versions). */
  unsafePublish?: boolean;
  warn?: (message: string) => void;
  /** Files uploaded, copied or deleted at once (ASSETKIT_CONCURRENCY, read once into the context). */
  concurrency?: number;
}

export interface VersionIndex {
  versions: string[];
  scheme: Scheme;
  /** Etag of the `.versions` object, for compare-and-swap; undefined when it is absent. */
  etag?: string;
  /** Asset digests the index records (versions published by assetkit), so resolving needs no meta. */
  digests: Record<string, string>;
}

export interface Resolved {
  name: string;
  version: string;
  meta: VersionMeta;
}

export interface PublishRequest {
  name: string;
  input: PreparedInput;
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

/** One entry of `<name>.aliases`: where the alias points, and who moved it there. */
export interface AliasEntry {
  version: string;
  promoted_at: string;
  promoted_by: string;
  source: Provenance;
  /** The version the alias pointed to before this promotion. */
  previous?: string;
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
    this.concurrency = options.concurrency ?? DEFAULT_TUNING.concurrency;
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
    return { versions, scheme, digests: parsed.digests, ...(index ? { etag: index.etag } : {}) };
  }

  private async versionsFromMetas(name: string): Promise<string[]> {
    if (!this.store.listable) return [];
    const out: string[] = [];
    const prefix = `${name}/`;
    for await (const object of this.store.list(prefix)) {
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
    if (index.versions.length === 0) throw new AssetError(`${what}: no asset named ${spec.name} in ${this.store.url}`);
    const version =
      spec.selector.kind === "alias"
        ? await this.aliasTarget(spec.name, spec.selector.alias)
        : index.scheme.pick(spec.selector, index.versions);
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
    if (!this.store.writable) throw new UsageError(`${this.store.url} is read-only: promote in a writable store`);
    const index = await this.versions(name);
    if (!index.versions.includes(version)) throw new AssetError(`${name}:${version} is not a committed version in ${this.store.url}`);
    let previous: string | undefined;
    const changed = await this.updateDocument(this.aliasesKey(name), async (current) => {
      const table = this.parseAliases(name, current);
      previous = table[alias]?.version;
      if (previous === version) return undefined;
      return JSON.stringify({ aliases: { ...table, [alias]: { version, ...promotion, ...(previous ? { previous } : {}) } } }, null, 2) + "\n";
    });
    return { previous, changed };
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
    const { name, input } = request;
    if (!this.store.writable) throw new UsageError(`${this.store.url} is read-only: publish to a writable store (s3://, gs://, az://, a folder)`);
    await this.checkConditionalWrites();

    this.indexes.delete(name);
    const index = await this.versions(name);
    const { scheme } = index;
    // The version this one follows in its series: its files that are unchanged are copied inside the store.
    const previous = scheme.pick(request.series ?? { kind: "latest" }, index.versions);
    const previousMeta = previous ? await this.meta(name, previous).catch(() => undefined) : undefined;
    if (request.ifChanged && previous && previousMeta?.digest === input.digest) {
      return { version: previous, digest: input.digest, published: false, uploaded: { files: 0, bytes: 0 }, copied: { files: 0, bytes: 0 } };
    }

    const version = await this.claim(name, index, request);
    let stored: Pick<PublishOutcome, "uploaded" | "copied">;
    try {
      const base = previous && previousMeta?.isDirectory === input.isDirectory ? { version: previous, meta: previousMeta } : undefined;
      stored = await this.storeFiles(name, version, input, base, request.onProgress);
      const meta = Buffer.from(JSON.stringify(buildMeta(input, request), null, 2) + "\n");
      if (!(await this.store.write(this.metaKey(name, version), meta, { ifAbsent: true }))) {
        throw new AssetError(`${name}:${version} was written by another publisher that did not claim it (modelkit?): check its data`);
      }
    } catch (err) {
      await this.abandon(name, version, input);
      throw err;
    }
    await this.addToIndex(name, version, scheme, input.digest);
    this.indexes.delete(name);
    await this.store.delete(this.claimKey(name, version));
    return { version, digest: input.digest, published: true, ...stored };
  }

  /** Uploads the version's files; those whose path, size and sha256 equal the previous version's are copied. */
  private async storeFiles(
    name: string,
    version: string,
    input: PreparedInput,
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
        const copyable = previous !== undefined && old?.size === file.size && old.sha256 === file.sha256;
        const wasCopied = copyable && (await this.copyFrom(name, previous.version, file.path, key));
        if (!wasCopied) await this.store.write(key, { file: file.source, size: file.size });
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

  /** Copies a file of an earlier version inside the store; false (with a warning) when the store cannot. */
  private async copyFrom(name: string, version: string, relPath: string, destKey: string): Promise<boolean> {
    try {
      await this.store.copy(this.dataKey(name, version, relPath), destKey);
      return true;
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
      this.options.warn?.(`cannot copy ${relPath || name} of ${name}:${version} inside the store, uploading it instead: ${err.message}`);
      return false;
    }
  }

  /** Claims the next free version (or the explicit one) by creating its `.claim` only if absent. */
  private async claim(name: string, index: VersionIndex, request: PublishRequest): Promise<string> {
    const { scheme } = index;
    if (request.version !== undefined && !scheme.isVersion(request.version)) {
      throw new UsageError(`--version ${request.version} is not a ${scheme.name} version (${name} uses ${scheme.name})`);
    }
    const token = randomUUID();
    const claim = Buffer.from(
      JSON.stringify({ token, by: request.createdBy, host: hostname(), pid: process.pid, at: new Date().toISOString(), digest: request.input.digest, run_url: request.source.run_url }) + "\n",
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
    if (await this.store.write(key, claim, { ifAbsent: true })) return true;
    // After a lost response a retried create reports "exists" for our own write: the token tells.
    const existing = await this.store.read(key);
    return existing !== undefined && existing.data.toString().includes(`"token":"${token}"`);
  }

  private async addToIndex(name: string, version: string, scheme: Scheme, digest: string): Promise<void> {
    await this.updateDocument(this.indexKey(name), async (current) => {
      const known = (current && parseIndex(current)) ?? { versions: await this.versionsFromMetas(name), digests: {} };
      if (current && known.versions.includes(version)) return undefined;
      const versions = sortNewestFirst(scheme, [...known.versions, version]);
      const digests: Record<string, string> = { ...known.digests, [version]: digest };
      // Same shape modelkit reads ("versions"), plus the digests of the versions listed.
      return JSON.stringify({ versions, digests: Object.fromEntries(versions.filter((v) => digests[v]).map((v) => [v, digests[v]])) }) + "\n";
    });
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
  private async abandon(name: string, version: string, input: PreparedInput): Promise<void> {
    await pMap(input.files, (f) => this.store.delete(this.dataKey(name, version, f.path)).catch(() => undefined), {
      concurrency: this.concurrency,
    });
    await this.store.delete(this.claimKey(name, version)).catch(() => undefined);
  }

  /**
   * Publishing is race-free only where the store honours create-if-absent. Checked once per registry with a
   * probe object; a store that lets the second create through is refused unless the user opted in.
   */
  private async checkConditionalWrites(): Promise<void> {
    if (this.conditionalWritesChecked || this.options.unsafePublish) return;
    const key = `.assetkit/probe-${randomUUID()}`;
    try {
      const first = await this.store.write(key, Buffer.from("1"), { ifAbsent: true });
      const second = await this.store.write(key, Buffer.from("2"), { ifAbsent: true });
      if (!first || second) {
        throw new AssetError(
          `${this.store.url} ignores conditional writes (If-None-Match), so concurrent publishes could overwrite each other; ` +
            `upgrade the server, or pass --unsafe-publish if only one publisher ever runs at a time`,
        );
      }
    } catch (err) {
      if (err instanceof StoreError && err.code === "unsupported") {
        throw new AssetError(`${this.store.url} does not support conditional writes: ${err.message}; pass --unsafe-publish to publish anyway`);
      }
      throw err;
    } finally {
      await this.store.delete(key).catch(() => undefined);
    }
    this.conditionalWritesChecked = true;
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
    return { versions: doc.versions as string[], digests: Object.fromEntries(digests.filter(([, d]) => typeof d === "string" && /^sha256:[0-9a-f]{64}$/.test(d))) };
  } catch {
    return undefined;
  }
}
