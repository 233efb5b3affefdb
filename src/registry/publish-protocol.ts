// The protocol that adds a version to a store, shared by publish and promote --to: claim the version (create its
// `.claim` only if absent), store its data, its meta's shards (if any), its signature (if any) and then its meta
// only if absent, list it in `.versions`, drop the claim.
import { createHash, randomUUID } from "node:crypto";
import { hostname } from "node:os";
import pMap from "p-map";
import { AssetError, UsageError } from "../base/errors.ts";
import { StoreError, type Store } from "../store/store.ts";
import { blobKey, claimKey, dataKey, metaKey, metaShardKey, signatureKey } from "./layout.ts";
import type { MetaDocumentBytes } from "./manifest.ts";
import type { VersionIndex, VersionIndexes } from "./version-index.ts";
import type { Bump, Scheme } from "./versioning.ts";
import type { VersionSelector } from "./spec.ts";

const MAX_CLAIM_ATTEMPTS = 1000;

/** A claim's content (read only by gc and by people): who holds the version, and a token to recognise it by. */
export interface Claim {
  token: string;
  body: Buffer;
}

/** The claim of a writer: `digest` when already known, `from` the source store when copying a version in. */
export function claimDocument(who: { by: string; at: string; digest?: string | null; run_url?: string; from?: string }): Claim {
  const token = randomUUID();
  const { by, at, digest, run_url, from } = who;
  const body = { token, by, host: hostname(), pid: process.pid, at, ...(digest !== undefined ? { digest } : {}), run_url, from };
  return { token, body: Buffer.from(JSON.stringify(body) + "\n") };
}

/** Which version a publish claims: an explicit one, or the next free one after the index's in a series. */
export interface VersionWanted {
  version?: string;
  series?: Extract<VersionSelector, { kind: "numeric" }>;
  bump?: Bump;
}

export class PublishProtocol {
  private readonly store: Store;
  private readonly indexes: VersionIndexes;
  private readonly options: { unsafePublish?: boolean; concurrency: number };
  private conditionalWritesChecked = false;

  constructor(store: Store, indexes: VersionIndexes, options: { unsafePublish?: boolean; concurrency: number }) {
    this.store = store;
    this.indexes = indexes;
    this.options = options;
  }

  /** Claims the next free version (or the explicit one) by creating its `.claim` only if absent. */
  async claimNext(name: string, index: VersionIndex, wanted: VersionWanted, claim: Claim): Promise<string> {
    const { scheme } = index;
    if (wanted.version !== undefined && !scheme.isVersion(wanted.version)) {
      throw new UsageError(`--version ${wanted.version} is not a ${scheme.name} version (${name} uses ${scheme.name})`);
    }
    let candidate = wanted.version ?? scheme.next(index.versions, wanted.series, wanted.bump);
    for (let attempt = 0; attempt < MAX_CLAIM_ATTEMPTS; attempt++) {
      if (!index.versions.includes(candidate) && (await this.claimIfFree(name, candidate, claim)) === "claimed") return candidate;
      if (wanted.version !== undefined) {
        throw new AssetError(`${name}:${candidate} already exists (or is being published) in ${this.store.url}; versions are immutable`);
      }
      candidate = scheme.after(candidate, wanted.series, wanted.bump);
    }
    throw new AssetError(`could not claim a version of ${name} after ${MAX_CLAIM_ATTEMPTS} attempts`);
  }

  /**
   * Claims one given version; false when it is complete already, or was claimed and given up meanwhile (the
   * caller looks again). Refused while another writer holds it.
   */
  async claimExact(name: string, version: string, claim: Claim): Promise<boolean> {
    const outcome = await this.claimIfFree(name, version, claim);
    if (outcome === "refused" && (await this.store.head(claimKey(name, version)))) {
      throw new AssetError(
        `${name}:${version} is being written to ${this.store.url} by another publisher or promoter (${claimKey(name, version)}); retry later, or run assetkit gc if that one crashed`,
      );
    }
    return outcome === "claimed";
  }

  /**
   * Stores a claimed version: `write` stores its files (`paths` gives theirs, asked only on failure) and returns
   * the documents of its meta (shards, then the `.meta`: see storedDocuments) and its signature (and what the caller needs back); the shards are
   * written first, then the signature and the `.meta` only if absent (a version is never visible unsigned or
   * without its shards; with `sharedShards`, the shards are blobs of the content-addressed layout, those it holds
   * kept without a request); then `.versions` lists it and the claim goes. On failure nothing of it is left and the
   * claim is released.
   */
  async complete<Stored extends { documents: Iterable<MetaDocumentBytes>; signature?: Buffer; digest: string | null }>(
    name: string,
    version: string,
    paths: () => Iterable<string>,
    scheme: Scheme,
    write: () => Promise<Stored>,
    sharedShards?: ReadonlySet<string>,
  ): Promise<Stored> {
    let stored: Stored;
    let shards = 0;
    try {
      stored = await write();
      for (const { shard, bytes } of stored.documents) {
        if (shard !== undefined && sharedShards) {
          // Content-addressed: a shard is a blob, as a file is (kept when the previous meta lists it; else created if absent).
          const sha256 = createHash("sha256").update(bytes).digest("hex");
          if (!sharedShards.has(sha256)) await this.store.write(blobKey(name, sha256), bytes, { ifAbsent: true });
          continue;
        }
        if (shard !== undefined) {
          shards = shard + 1;
          await this.store.write(metaShardKey(name, version, shard), bytes);
          continue;
        }
        if (stored.signature) await this.createSignature(name, version, stored.signature);
        if (!(await this.store.write(metaKey(name, version), bytes, { ifAbsent: true }))) {
          throw new AssetError(`${name}:${version} was written by another publisher that did not claim it (modelkit?): check its data`);
        }
      }
    } catch (err) {
      await this.abandon(name, version, paths, shards);
      throw err;
    }
    await this.indexes.add(name, version, scheme, stored.digest);
    await this.store.delete(claimKey(name, version));
    return stored;
  }

  /**
   * The store's etag of each data object of a version just stored, by file path (one HEAD, or one listing of the
   * version's folder): recorded in its meta, so the next version's copy of an object can be made conditional on it.
   */
  async storedEtags(name: string, version: string, isDirectory: boolean): Promise<Map<string, string>> {
    const etags = new Map<string, string>();
    await this.forEachStoredEtag(name, version, isDirectory, (p, etag) => etags.set(p, etag));
    return etags;
  }

  /** Calls `each` with the path and etag of every data object of a version just stored, as they are listed (see storedEtags). */
  async forEachStoredEtag(name: string, version: string, isDirectory: boolean, each: (path: string, etag: string) => void): Promise<void> {
    if (!isDirectory) {
      const object = await this.store.head(dataKey(name, version));
      if (object?.etag) each("", object.etag);
      return;
    }
    const prefix = `${dataKey(name, version)}/`;
    for await (const object of this.store.list(prefix)) if (object.etag) each(object.key.slice(prefix.length), object.etag);
  }

  /**
   * Claims a version: "refused" when another claim holds it, "complete" when its meta exists (a finished writer
   * deletes its claim only after writing its meta; the claim just taken is given back).
   */
  private async claimIfFree(name: string, version: string, claim: Claim): Promise<"claimed" | "complete" | "refused"> {
    const key = claimKey(name, version);
    if (!(await this.createClaim(key, claim.body))) {
      // After a lost response a retried create reports "exists" for our own write: the token tells.
      const existing = await this.store.read(key);
      if (!existing?.data.toString().includes(`"token":"${claim.token}"`)) return "refused";
    }
    if (!(await this.store.head(metaKey(name, version)))) return "claimed";
    await this.store.delete(key);
    return "complete";
  }

  /**
   * Creates the signature of a claimed version only if absent. Present already: ours after a lost response (same
   * bytes), else another writer's that did not claim the version.
   */
  private async createSignature(name: string, version: string, signature: Buffer): Promise<void> {
    const key = signatureKey(name, version);
    if (await this.store.write(key, signature, { ifAbsent: true })) return;
    const existing = await this.store.read(key);
    if (!existing?.data.equals(signature)) {
      throw new AssetError(`${name}:${version} already has a signature (${key}) that this publish did not write: check who writes to ${this.store.url}`);
    }
  }

  /** Best effort after a failed write: readers never see the version (no meta), and nothing is left over. */
  private async abandon(name: string, version: string, paths: () => Iterable<string>, shards: number): Promise<void> {
    const keys = [...Array.from(paths(), (p) => dataKey(name, version, p)), ...Array.from({ length: shards }, (_, i) => metaShardKey(name, version, i))];
    await pMap(keys, (key) => this.store.delete(key).catch(() => undefined), { concurrency: this.options.concurrency });
    await this.store.delete(signatureKey(name, version)).catch(() => undefined);
    await this.store.delete(claimKey(name, version)).catch(() => undefined);
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
