// The store layout (contract, modelkit-compatible) and the publish/resolve protocols, over any Store.
//   P/<name>/<version>            data of a single-file asset
//   P/<name>/<version>/<relpath>  each file of a folder asset
//   P/<name>/<version>.meta       modelkit's meta keys + the assetkit block
//   P/<name>/<version>.claim      who is publishing that version right now (assetkit only)
//   P/<name>.versions             {"versions": [newest first]}, kept complete by compare-and-swap
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
import { detectScheme, sortNewestFirst, type Bump, type Scheme, type SchemeName } from "./versioning.ts";

const UPLOAD_CONCURRENCY = 8;
const MAX_CLAIM_ATTEMPTS = 1000;
const MAX_INDEX_ATTEMPTS = 200;

export interface RegistryOptions {
  /** The scheme a new asset takes. */
  versioning: SchemeName;
  /** Publish even where the store ignores conditional writes (races may then lose versions). */
  unsafePublish?: boolean;
  warn?: (message: string) => void;
}

export interface VersionIndex {
  versions: string[];
  scheme: Scheme;
  /** Etag of the `.versions` object, for compare-and-swap; undefined when it is absent. */
  etag?: string;
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
}

export class Registry {
  readonly store: Store;
  private readonly options: RegistryOptions;
  private conditionalWritesChecked = false;

  constructor(store: Store, options: RegistryOptions) {
    this.store = store;
    this.options = options;
  }

  private dataKey(name: string, version: string, relPath = ""): string {
    return relPath ? `${name}/${version}/${relPath}` : `${name}/${version}`;
  }
  private metaKey = (name: string, version: string): string => `${name}/${version}.meta`;
  private claimKey = (name: string, version: string): string => `${name}/${version}.claim`;
  private indexKey = (name: string): string => `${name}.versions`;
  private aliasesKey = (name: string): string => `${name}.aliases`;

  /** The committed versions of an asset, newest first: one GET of `.versions`, or a listing when it is unusable. */
  async versions(name: string): Promise<VersionIndex> {
    const index = await this.store.read(this.indexKey(name));
    let listed: string[] | undefined;
    if (index) {
      listed = parseIndex(index.data);
      if (!listed) this.options.warn?.(`${this.indexKey(name)} in ${this.store.url} is unreadable; listing the asset's metas instead`);
    }
    listed ??= await this.versionsFromMetas(name);
    const scheme = detectScheme(listed, this.options.versioning);
    const versions = sortNewestFirst(scheme, listed).filter((v) => scheme.isVersion(v));
    return index ? { versions, scheme, etag: index.etag } : { versions, scheme };
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

  async meta(name: string, version: string): Promise<VersionMeta> {
    const object = await this.store.read(this.metaKey(name, version));
    if (!object) throw new AssetError(`${name}:${version} does not exist in ${this.store.url}`);
    return parseMeta(object.data, `${this.metaKey(name, version)} in ${this.store.url}`);
  }

  /** The exact version a spec names, with its meta. */
  async resolve(spec: AssetSpec): Promise<Resolved> {
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
    return { name: spec.name, version, meta: await this.meta(spec.name, version) };
  }

  private async aliasTarget(name: string, alias: string): Promise<string> {
    const { table } = await this.aliases(name);
    const target = table[alias]?.version;
    if (typeof target !== "string") throw new AssetError(`${name}:${alias}: no alias ${alias} for ${name} in ${this.store.url}`);
    return target;
  }

  /** The alias table of an asset (empty when it has none), with its etag for compare-and-swap. */
  async aliases(name: string): Promise<{ table: Record<string, AliasEntry>; etag?: string }> {
    const object = await this.store.read(this.aliasesKey(name));
    if (!object) return { table: {} };
    try {
      const doc = JSON.parse(object.data.toString("utf8")) as { aliases?: unknown };
      if (doc.aliases && typeof doc.aliases === "object" && !Array.isArray(doc.aliases)) {
        return { table: doc.aliases as Record<string, AliasEntry>, etag: object.etag };
      }
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
    for (let attempt = 0; attempt < MAX_INDEX_ATTEMPTS; attempt++) {
      const { table, etag } = await this.aliases(name);
      const previous = table[alias]?.version;
      if (previous === version) return { previous, changed: false };
      const body = Buffer.from(JSON.stringify({ aliases: { ...table, [alias]: { version, ...promotion, ...(previous ? { previous } : {}) } } }, null, 2) + "\n");
      if (await this.store.write(this.aliasesKey(name), body, etag ? { ifMatch: etag } : { ifAbsent: true })) return { previous, changed: true };
      await contentionBackoff(attempt);
    }
    throw new AssetError(`${name}: could not update ${this.aliasesKey(name)} after ${MAX_INDEX_ATTEMPTS} attempts (too much contention)`);
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

    const index = await this.versions(name);
    const { scheme } = index;
    if (request.ifChanged) {
      const latest = scheme.pick(request.series ?? { kind: "latest" }, index.versions);
      if (latest && (await this.meta(name, latest)).digest === input.digest) {
        return { version: latest, digest: input.digest, published: false };
      }
    }

    const version = await this.claim(name, index, request);
    try {
      await pMap(
        input.files,
        (file) => this.store.write(this.dataKey(name, version, file.path), { file: file.source, size: file.size }),
        { concurrency: UPLOAD_CONCURRENCY },
      );
      const meta = Buffer.from(JSON.stringify(buildMeta(input, request), null, 2) + "\n");
      if (!(await this.store.write(this.metaKey(name, version), meta, { ifAbsent: true }))) {
        throw new AssetError(`${name}:${version} was written by another publisher that did not claim it (modelkit?): check its data`);
      }
    } catch (err) {
      await this.abandon(name, version, input);
      throw err;
    }
    await this.addToIndex(name, version, scheme);
    await this.store.delete(this.claimKey(name, version));
    return { version, digest: input.digest, published: true };
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

  private async addToIndex(name: string, version: string, scheme: Scheme): Promise<void> {
    for (let attempt = 0; attempt < MAX_INDEX_ATTEMPTS; attempt++) {
      const current = await this.store.read(this.indexKey(name));
      const known = (current && parseIndex(current.data)) ?? (await this.versionsFromMetas(name));
      if (current && known.includes(version)) return;
      const body = Buffer.from(JSON.stringify({ versions: sortNewestFirst(scheme, [...known, version]) }) + "\n");
      if (await this.store.write(this.indexKey(name), body, current ? { ifMatch: current.etag } : { ifAbsent: true })) return;
      await contentionBackoff(attempt);
    }
    throw new AssetError(`${name}: could not update ${this.indexKey(name)} after ${MAX_INDEX_ATTEMPTS} attempts (too much contention)`);
  }

  /** Best effort after a failed publish: readers never see the version (no meta), and nothing is left over. */
  private async abandon(name: string, version: string, input: PreparedInput): Promise<void> {
    await pMap(input.files, (f) => this.store.delete(this.dataKey(name, version, f.path)).catch(() => undefined), {
      concurrency: UPLOAD_CONCURRENCY,
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

/** `{"versions": [...]}` → the version strings, or undefined when the document is not that. */
function parseIndex(data: Buffer): string[] | undefined {
  try {
    const doc = JSON.parse(data.toString("utf8")) as { versions?: unknown };
    if (Array.isArray(doc.versions) && doc.versions.every((v) => typeof v === "string")) return doc.versions as string[];
  } catch {
    // fall through
  }
  return undefined;
}
