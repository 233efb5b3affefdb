// The registry: assets and their versions in one store, as the commands see them. A facade over the layout
// (layout.ts), the version index, the channels and the publish protocol, which each do one job.
import type { Readable } from "node:stream";
import { AssetError, UsageError } from "../base/errors.ts";
import {
  expectedMetaSize,
  hashedInput,
  indexOfPath,
  pathIndexer,
  inlineDocument,
  metaSizeBound,
  metaSizeProblem,
  parseMetaDocument,
  readMeta,
  sameContent,
  storedDocuments,
  storedMeta,
  withLayout,
  withStoredEtags,
  type AssetMetaDocument,
  type HashingInput,
  type MetaShard,
  type VersionMeta,
} from "./manifest.ts";
import { mapSettling } from "../base/map-settling.ts";
import { PackedStrings } from "../base/packed-strings.ts";
import { Channels, LATEST, type AliasEntry, type ChannelMoveOutcome, type Promotion } from "./channels.ts";
import {
  aliasesKey,
  blobDigest,
  blobKey,
  blobPrefix,
  dataKey,
  fileKey,
  indexedAsset,
  indexKey,
  metaKey,
  metaShardKey,
  signatureKey,
  type LayoutName,
} from "./layout.ts";
import { readSweep, sweptSince } from "./blobs.ts";
import { claimDocument, PublishProtocol } from "./publish-protocol.ts";
import { formatSpec, selectorText, type AssetSpec } from "./spec.ts";
import { copyBudget, copyObject, streamObject } from "../transfer/store-copy.ts";
import { MAX_DOCUMENT_BYTES, StoreError, type ByteRange, type Store } from "../store/store.ts";
import { countStoredFile, type TransferProgress, type TransferSettings } from "../transfer/engine.ts";
import { VersionIndexes, type VersionIndex } from "./version-index.ts";
import { SCHEMES, type SchemeName } from "./versioning.ts";
import type { AssetRegistry, CopyVersionOutcome, PromotedFrom, PublishOutcome, PublishRequest, Resolved } from "./asset-registry.ts";
import { promotionOrigin } from "./promotion-origin.ts";

export type { CopyVersionOutcome, PromotedFrom, PublishOutcome, PublishRequest, Resolved, ResolvedAsset, SignedVersion } from "./asset-registry.ts";

export interface RegistryOptions {
  /** The scheme a new asset takes. */
  versioning: SchemeName;
  /** Publish even where the store ignores conditional writes (races may then lose versions). */
  unsafePublish?: boolean;
  warn?: (message: string) => void;
  /** The context's transfer settings: files uploaded, copied or deleted at once (ASSETKIT_CONCURRENCY), streamed copies' tries. */
  settings: TransferSettings;
  /** The layout new versions are written in (--layout, assetkit.yml); unset: the layout of the version each one follows. */
  layout?: LayoutName;
}

/** Versions whose file keys openFile keeps (a fetch reads a few; a content-addressed one holds a path → sha256 map). */
const KEPT_KEY_MAPS = 8;

/** The key-value layout (layout.ts) over any Store. */
export class Registry implements AssetRegistry {
  readonly store: Store;
  private readonly options: RegistryOptions;
  /** Each asset's index, read once per registry (a command's lifetime); writers read afresh. */
  private readonly indexes: VersionIndexes;
  private readonly channels: Channels;
  private readonly protocol: PublishProtocol;
  private readonly concurrency: number;
  /** How the files of the versions read last map to keys (fileKey), by "name NUL version": what openFile reads through. */
  private readonly keyMaps = new Map<string, (relPath: string) => string>();

  constructor(store: Store, options: RegistryOptions) {
    this.store = store;
    this.options = options;
    this.concurrency = options.settings.concurrency;
    this.indexes = new VersionIndexes(store, options.versioning, options.warn);
    this.channels = new Channels(store, this.indexes);
    this.protocol = new PublishProtocol(store, this.indexes, { unsafePublish: options.unsafePublish, concurrency: this.concurrency });
  }

  readonly kind = "store";
  readonly storeCopies = true;

  get url(): string {
    return this.store.url;
  }

  get writable(): boolean {
    return this.store.writable;
  }

  get listable(): boolean {
    return this.store.listable;
  }

  /** A registry over another store, with the same settings (the destination of a promotion). */
  withStore(store: Store): Registry {
    return new Registry(store, this.options);
  }

  /**
   * The committed versions of an asset, newest first: one GET of `.versions` per registry, or a listing when it
   * is unusable.
   */
  versions(name: string): Promise<VersionIndex> {
    return this.indexes.get(name);
  }

  /** The committed versions as the store has them now (not the copy this registry read before). */
  freshVersions(name: string): Promise<VersionIndex> {
    return this.indexes.fresh(name);
  }

  /**
   * A token that changes whenever what `spec` resolves to may have changed: the etag of the alias table for an
   * alias, else of the index. One HEAD (or metadata read), never an object body: what a watcher polls.
   */
  async revision(spec: AssetSpec): Promise<string> {
    const key = spec.selector.kind === "alias" ? aliasesKey(spec.name) : indexKey(spec.name);
    return (await this.store.head(key))?.etag ?? "absent";
  }

  /** Drops the index read earlier, so the next resolve reads the store again (a long-running watcher). */
  forget(name: string): void {
    this.indexes.forget(name);
  }

  /** The bytes of a version's signature, undefined when it is unsigned. */
  async signature(name: string, version: string): Promise<Buffer | undefined> {
    return (await this.store.read(signatureKey(name, version)))?.data;
  }

  signatureWhere(name: string, version: string): string {
    return `${signatureKey(name, version)} in ${this.store.url}`;
  }

  /** The validated meta of a version, to read its files: a sharded one without its etags (see readMeta). */
  async meta(name: string, version: string): Promise<VersionMeta> {
    const meta = await this.storedMeta(name, version, { etags: false });
    if (!meta) throw new AssetError(`${name}:${version} does not exist in ${this.store.url}`);
    this.keepKeyMap(name, version, meta);
    return meta;
  }

  /** Remembers where the files of a version just read lie, for openFile (the last KEPT_KEY_MAPS versions). */
  private keepKeyMap(name: string, version: string, meta: VersionMeta): void {
    const id = `${name}\0${version}`;
    this.keyMaps.delete(id);
    if (meta.layout === "modelkit") {
      this.keyMaps.set(id, (relPath) => dataKey(name, version, relPath));
    } else {
      // Found by a binary search of the files (a meta lists them in path order), not in a map of every path: ~50
      // bytes a file more, for as long as the version is kept here.
      const { files } = meta;
      this.keyMaps.set(id, (relPath) => {
        const sha256 = files[indexOfPath(files, relPath)]?.sha256;
        if (sha256 === undefined) throw new AssetError(`${JSON.stringify(relPath)} is not a file of ${name}:${version} in ${this.store.url}`);
        return blobKey(name, sha256);
      });
    }
    if (this.keyMaps.size > KEPT_KEY_MAPS) this.keyMaps.delete(this.keyMaps.keys().next().value!);
  }

  /** The validated meta of a version (read with its shards, not kept), undefined when the store has none. */
  async storedMeta(name: string, version: string, options?: { etags?: boolean }): Promise<VersionMeta | undefined> {
    const object = await this.store.read(metaKey(name, version));
    if (!object) return undefined;
    const readShard = async (index: number, shard: MetaShard, layout: LayoutName): Promise<Buffer | undefined> =>
      (await this.store.read(layout === "modelkit" ? metaShardKey(name, version, index) : blobKey(name, shard.sha256)))?.data;
    return readMeta(object.data, `${metaKey(name, version)} in ${this.store.url}`, readShard, options);
  }

  /** The exact version a spec names, with its `.meta` as stored (a sharded meta's shards are not read: see parseMetaDocument). */
  async resolveDocument(spec: AssetSpec): Promise<{ name: string; version: string; document: AssetMetaDocument }> {
    const { name, version } = await this.resolveVersion(spec);
    const object = await this.store.read(metaKey(name, version));
    if (!object) throw new AssetError(`${name}:${version} does not exist in ${this.store.url}`);
    return { name, version, document: parseMetaDocument(object.data, `${metaKey(name, version)} in ${this.store.url}`) };
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
    const listed = index.versions.includes(version) ? index.digest(version) : undefined;
    return listed ?? (await this.meta(name, version)).digest ?? null;
  }

  private async resolveVersion(spec: AssetSpec): Promise<{ name: string; version: string }> {
    // name:latest is name (the latest non-prerelease), as W&B users write it; no channel may be called latest.
    const channel = spec.selector.kind === "alias" && spec.selector.alias !== LATEST ? spec.selector.alias : undefined;
    // A channel's table is read beside the index, not after it; its failure is reported after the index's.
    const target = channel === undefined ? undefined : this.channels.target(spec.name, channel);
    target?.catch(() => undefined);
    const index = await this.versions(spec.name);
    const what = formatSpec({ name: spec.name, version: selectorText(spec.selector) });
    if (index.foreign) throw this.foreignVersions(spec.name, index.foreign, what);
    if (index.versions.length === 0) throw new AssetError(`${what}: no asset named ${spec.name} in ${this.store.url}`);
    const version = target ? await target : index.scheme.pick(spec.selector.kind === "alias" ? { kind: "latest" } : spec.selector, index.versions);
    if (!version) {
      throw new AssetError(`${what}: no matching version in ${this.store.url} (latest: ${index.versions.slice(0, 5).join(", ")})`);
    }
    if (!index.versions.includes(version)) throw new AssetError(`${what}: version ${version} is not committed in ${this.store.url}`);
    return { name: spec.name, version };
  }

  /** The alias table of an asset (empty when it has none). */
  async aliases(name: string): Promise<{ table: Record<string, AliasEntry> }> {
    return { table: await this.channels.table(name) };
  }

  /**
   * Points `alias` at a committed version by compare-and-swap of `<name>.aliases`, so concurrent promotions of
   * other aliases are never lost. Returns the version the alias pointed to before (undefined when new).
   */
  promote(name: string, alias: string, version: string, promotion: Promotion): Promise<{ previous?: string; changed: boolean }> {
    return this.channels.promote(name, alias, version, promotion);
  }

  /** Moves `alias` back to the version it pointed at before its last move. */
  rollback(name: string, alias: string, promotion: Promotion, expected?: string): Promise<ChannelMoveOutcome> {
    return this.channels.rollback(name, alias, promotion, expected);
  }

  /** Every asset with a `.versions` index, sorted by name. */
  async assets(): Promise<string[]> {
    if (!this.store.listable) throw new UsageError(`${this.store.url} cannot be listed: name the asset (assetkit list <name>)`);
    const names: string[] = [];
    for await (const object of this.store.list("")) {
      const name = indexedAsset(object.key);
      if (name !== undefined) names.push(name);
    }
    return names.sort();
  }

  /** One file of a version, from where its meta's layout keeps it (the meta read once per version: see keepKeyMap). */
  async openFile(name: string, version: string, relPath: string, range?: ByteRange): Promise<Readable> {
    let keyOf = this.keyMaps.get(`${name}\0${version}`);
    if (!keyOf) {
      await this.meta(name, version);
      keyOf = this.keyMaps.get(`${name}\0${version}`)!;
    }
    return this.store.openRead(keyOf(relPath), range);
  }

  /** The publish protocol: claim → upload → meta → compare-and-swap of `.versions`. Race-free and crash-safe. */
  async publish(request: PublishRequest): Promise<PublishOutcome> {
    const { name } = request;
    const input = "digest" in request.input ? hashedInput(request.input) : request.input;
    if (!this.store.writable) throw new UsageError(`${this.store.url} is read-only: publish to a writable store (s3://, gs://, az://, a folder)`);

    // Read, and answered, before the previous version's meta is read: a sweep since then may have deleted a blob it
    // lists (blobs.ts). Sent beside the index, unless requests go one at a time (ASSETKIT_CONCURRENCY=1).
    const readSweepBefore = () => (this.options.layout === "modelkit" ? undefined : readSweep(this.store, name));
    const early = this.concurrency > 1 ? readSweepBefore() : undefined;
    early?.catch(() => undefined);
    const index = await this.indexes.fresh(name);
    const sweepBefore = early ?? readSweepBefore();
    await sweepBefore?.catch(() => undefined); // its failure matters only to the content-addressed layout, below
    if (index.foreign) throw this.foreignVersions(name, index.foreign, `cannot publish ${name}`);
    const { scheme } = index;
    // The version this one follows in its series: its files that are unchanged are copied inside the store (or, by content, kept).
    const previous = scheme.pick(request.series ?? { kind: "latest" }, index.versions);
    const unchanged = (digest: string): PublishOutcome => ({
      version: previous!,
      digest,
      published: false,
      uploaded: { files: 0, bytes: 0 },
      copied: { files: 0, bytes: 0 },
      kept: { files: 0, bytes: 0 },
    });
    // The digest binds every path, size and hash (assetDigest): the input's, equal to the one the index records for
    // the previous version (what resolve trusts and a lockfile pins), says it holds these files without reading its
    // meta (a fetch checks the meta against that digest). Else its meta is read, after the hashing, and compared.
    const recorded = request.ifChanged && previous ? index.digest(previous) : undefined;
    if (recorded !== undefined && (await input.prepared).digest === recorded) return unchanged(recorded);
    // storedMeta, not meta: publish opens none of its files (no key map of 100,000 paths kept for openFile).
    let previousMeta = previous ? await this.storedMeta(name, previous).catch(() => undefined) : undefined;
    if (request.ifChanged && previous) {
      const prepared = await input.prepared;
      // By content too, not by digest alone: a version published under an earlier meta schema has another digest for the same files.
      if (previousMeta?.digest && sameContent(previousMeta, prepared)) return unchanged(previousMeta.digest);
    }
    const layout = this.options.layout ?? previousMeta?.layout ?? "modelkit";
    // Before the claim and any upload, after --if-changed's answer (which writes nothing): the bound serializes a stand-in meta.
    this.refuseUnreadableMeta(`cannot publish ${name}`, expectedMetaSize(input, request), input.files.length);

    const claim = claimDocument({
      by: request.createdBy,
      at: new Date().toISOString(),
      ...("digest" in request.input ? { digest: request.input.digest } : {}),
      run_url: request.source.run_url,
    });
    const version = await this.protocol.claimNext(name, index, request, claim);
    let followed = previous;
    if (layout === "content-addressed" && (await sweptSince(this.store, name, await sweepBefore!, (m) => this.options.warn?.(m)))) {
      // The blobs the previous meta lists may be gone: only what the store has now is reused.
      followed = scheme.pick(request.series ?? { kind: "latest" }, (await this.indexes.fresh(name)).versions);
      previousMeta = followed ? await this.storedMeta(name, followed).catch(() => undefined) : undefined;
    }
    const base = followed && previousMeta?.isDirectory === input.isDirectory ? { version: followed, meta: previousMeta } : undefined;
    // A content-addressed version that failed leaves its blobs (another publish may share them) for gc; files staged
    // under the version go. Listed only on failure: an array of every path was 8 MB held for a publish of 1,000,000.
    const ownKeys = function* (): Generator<string> {
      if (layout === "modelkit" || input.files.some((f) => f.copyTo)) for (const f of input.files) yield f.path;
    };
    // Its meta's shards are blobs too: those the previous version lists are kept without a request.
    const sharedShards =
      layout === "content-addressed" ? new Set(base?.meta.layout === layout ? base.meta.document.assetkit?.shards?.map((s) => s.sha256) : []) : undefined;
    const { digest, stored } = await this.protocol.complete(
      name,
      version,
      ownKeys,
      scheme,
      async () => {
        const stored = await this.storeFiles(name, version, input, base, layout, request.onProgress);
        const prepared = await input.prepared;
        const { digest, isDirectory, files } = prepared;
        // By the file's index (files are in path order), not in a map by path: one slot per file, no second copy of
        // the paths, packed (a string each took ~64 bytes a file). A content-addressed meta records none (its keys
        // are its digests).
        const etags = new PackedStrings(layout === "modelkit" ? files.length : 0);
        if (layout === "modelkit") {
          // Object stores list in key order, which is path order here: each found next to the one before.
          const indexOf = pathIndexer(files);
          await this.protocol.forEachStoredEtag(name, version, isDirectory, (p, etag) => {
            const index = indexOf(p);
            if (index >= 0) etags.set(index, etag);
          });
        }
        const signature = await request.sign?.({ name, version, digest, isDirectory, files });
        return { documents: storedMeta(prepared, { ...request, layout }, (_, index) => etags.get(index)), ...(signature ? { signature } : {}), digest, stored };
      },
      sharedShards,
    );
    return { version, digest, published: true, ...stored };
  }

  /**
   * Stores the version's files in `layout`. Under its version (modelkit's layout), a file whose path, size and sha256
   * equal the previous version's is copied; only a file that may be unchanged (same path and size) waits for its
   * hash, the others upload while hashing goes on. By content, a file waits for its hash (its key), and one whose
   * blob the previous content-addressed version lists is kept as it is, without a request (blobs.ts says why that
   * blob is still there); another is created only if absent (present: kept).
   */
  private async storeFiles(
    name: string,
    version: string,
    input: HashingInput,
    previous: { version: string; meta: VersionMeta } | undefined,
    layout: LayoutName,
    onProgress: ((progress: TransferProgress) => void) | undefined,
  ): Promise<Pick<PublishOutcome, "uploaded" | "copied" | "kept">> {
    const listed = new Set(layout === "content-addressed" && previous?.meta.layout === layout ? previous.meta.files.map((f) => f.sha256) : []);
    /** The blobs this version stores, by sha256: a content held twice is stored once. */
    const storing = new Map<string, Promise<"uploaded" | "copied" | "kept">>();
    const tallies = { uploaded: { files: 0, bytes: 0 }, copied: { files: 0, bytes: 0 }, kept: { files: 0, bytes: 0 } };
    const progress: TransferProgress = { bytes: 0, totalBytes: input.size, files: 0, totalFiles: input.files.length };
    // A meta lists its files in path order, as the input is stored: found along it, not in a map of every path.
    const previousIndex = pathIndexer(previous?.meta.files ?? []);
    const sameAsBefore = async (file: HashingInput["files"][number]) => {
      const old = previous?.meta.files[previousIndex(file.path)];
      return old?.size === file.size && old.sha256 === (await input.hashes.get(file.path)!).sha256 ? old : undefined;
    };
    const storeBlob = async (file: HashingInput["files"][number], key: string): Promise<"uploaded" | "copied" | "kept"> => {
      const old = previous && (await sameAsBefore(file));
      if (old && (await this.copyFrom(name, previous.version, previous.meta.layout, old, key, file.source))) return "copied";
      return (await this.store.write(key, { file: file.source, size: file.size }, { ifAbsent: true })) ? "uploaded" : "kept";
    };
    // By content, a file whose blob the previous version lists is kept without a request: counted here, as its hash
    // comes (in path order, as they are hashed), not passed through the concurrent map (its promises and async steps
    // for each of the 99,990 unchanged files of a republish of 100,000).
    const toStore = async function* (): AsyncGenerator<HashingInput["files"][number]> {
      for (const file of input.files) {
        if (!file.copyTo && listed.has((await input.hashes.get(file.path)!).sha256)) countStoredFile(tallies.kept, progress, file.size, onProgress);
        else yield file;
      }
    };
    // Settling: an upload still running when another fails would land after the clean-up.
    await mapSettling(
      listed.size > 0 ? toStore() : input.files,
      async (file) => {
        let how: "uploaded" | "copied" | "kept";
        if (layout === "modelkit") {
          const key = dataKey(name, version, file.path);
          // A file from another store is hashed only as it is copied here, so it cannot wait for its hash first.
          const old = !file.copyTo && previous ? await sameAsBefore(file) : undefined;
          const wasCopied = old !== undefined && (await this.copyFrom(name, previous!.version, previous!.meta.layout, old, key, file.source));
          if (file.copyTo) await file.copyTo(this.store, key);
          else if (!wasCopied) await this.store.write(key, { file: file.source, size: file.size });
          how = wasCopied ? "copied" : "uploaded";
        } else if (file.copyTo) {
          // Its key is known only once it is hashed, as it is copied: staged under the version, then copied to its blob.
          const staged = dataKey(name, version, file.path);
          await file.copyTo(this.store, staged);
          await this.store.copy(staged, blobKey(name, (await input.hashes.get(file.path)!).sha256));
          await this.store.delete(staged);
          how = "uploaded";
        } else {
          const { sha256 } = await input.hashes.get(file.path)!;
          const first = !listed.has(sha256) && !storing.has(sha256);
          if (first) storing.set(sha256, storeBlob(file, blobKey(name, sha256)));
          how = first ? await storing.get(sha256)! : (await storing.get(sha256)?.catch(() => undefined), "kept");
        }
        countStoredFile(tallies[how], progress, file.size, onProgress);
      },
      this.concurrency,
    );
    return tallies;
  }

  /**
   * Copies `name:version` from another registry into this one under the same version number, by the publish
   * protocol (claim, data, meta only-if-absent, compare-and-swap of `.versions`), so concurrent promoters and
   * publishers here lose nothing. Each file is copied by the service where it can reach the source, else
   * streamed and checked against the source meta's size and sha256. Already here with the same digest: nothing
   * copied; with another digest: refused, nothing changed. A source meta without checksums (modelkit's) is
   * refused unless `allowUnverified`. A source of another layout (an OCI registry) is read through its `openFile`.
   */
  async copyVersion(
    source: AssetRegistry,
    name: string,
    version: string,
    promotion: Omit<PromotedFrom, "store" | "version" | "digest"> & { allowUnverified?: boolean; onProgress?: (p: TransferProgress) => void },
  ): Promise<CopyVersionOutcome> {
    if (!this.store.writable) throw new UsageError(`${this.store.url} is read-only: promote to a writable store`);
    const [meta, signature] = await Promise.all([source.meta(name, version), source.signature(name, version)]);
    const digest = meta.digest ?? null;
    if (!digest && !promotion.allowUnverified) {
      throw new AssetError(`${name}:${version} in ${source.url} has no checksums (written by modelkit?): pass --allow-unverified to copy it unverified`);
    }
    const none = { files: 0, bytes: 0 };
    const existing = await this.existingDigest(name, version);
    if (existing !== undefined) {
      if (existing === digest) return { copied: false, digest, serverSide: none, streamed: { ...none } };
      throw new AssetError(
        `${name}:${version} already exists in ${this.store.url} with digest ${existing ?? "(none: no checksums)"}, ` +
          `not ${digest ?? "(none)"} as in ${source.url}; versions are immutable: nothing was changed`,
      );
    }
    const index = await this.indexes.fresh(name);
    if (index.foreign) throw this.foreignVersions(name, index.foreign, `cannot copy ${name}:${version}`);
    const { scheme, origin } = await promotionOrigin(index, this.store.url, source, name, version, digest, promotion);
    const document = inlineDocument(meta);
    const bound = metaSizeBound({ ...document, promoted_from: origin });
    this.refuseUnreadableMeta(`cannot copy ${name}:${version} to ${this.store.url}`, bound, meta.files.length);
    const layout = this.options.layout ?? meta.layout;
    if (layout === "content-addressed" && !digest) {
      throw new UsageError(`cannot copy ${name}:${version} into the content-addressed layout: it has no checksums to key its files by (use --layout modelkit)`);
    }
    const claim = claimDocument({ by: promotion.by, at: promotion.at, digest, run_url: promotion.run_url, from: source.url });
    if (!(await this.protocol.claimExact(name, version, claim))) {
      return this.copyVersion(source, name, version, promotion); // the version landed (or its writer gave up) meanwhile: look again
    }
    const serverSide = { files: 0, bytes: 0 };
    const streamed = { files: 0, bytes: 0 };
    const kept = { files: 0, bytes: 0 };
    const files = meta.files;
    const ownKeys = function* (): Generator<string> {
      if (layout === "modelkit") for (const f of files) yield f.path;
    };
    // The blobs here already (listed once the claim is held and no sweep runs: blobs.ts) are kept, not copied: files and meta shards.
    const present = new Set<string>();
    await this.protocol.complete(
      name,
      version,
      ownKeys,
      scheme,
      async () => {
        if (layout === "content-addressed") {
          await sweptSince(this.store, name, undefined, (m) => this.options.warn?.(m));
          for await (const object of this.store.list(blobPrefix(name))) present.add(blobDigest(name, object.key) ?? "");
        }
        const budget = copyBudget();
        const progress: TransferProgress = { bytes: 0, totalBytes: meta.size ?? 0, files: 0, totalFiles: files.length };
        // Settling: a copy still running when another fails would land after the clean-up.
        await mapSettling(
          files,
          async (file) => {
            const key = fileKey(name, version, layout, file);
            if (layout === "content-addressed" && present.has(file.sha256!)) {
              countStoredFile(kept, progress, file.size ?? 0, promotion.onProgress);
              return;
            }
            present.add(file.sha256 ?? "");
            const options = { settings: this.options.settings, budget };
            const outcome =
              source instanceof Registry
                ? await copyObject(source.store, fileKey(name, version, meta.layout, file), this.store, key, file, options)
                : await streamObject(
                    (range) => source.openFile(name, version, file.path, range),
                    `${file.path || name} of ${name}:${version} in ${source.url}`,
                    this.store,
                    key,
                    // Its metas are assetkit's: every file has a size (what the stream is checked against).
                    { size: file.size ?? 0, sha256: file.sha256 },
                    options,
                  );
            const tally = outcome.how === "server" ? serverSide : streamed;
            tally.files++;
            tally.bytes += outcome.bytes;
            progress.files++;
            progress.bytes += outcome.bytes;
            promotion.onProgress?.(progress);
          },
          this.concurrency,
        );
        const etags = layout === "modelkit" ? await this.protocol.storedEtags(name, version, meta.isDirectory) : new Map<string, string>();
        const stored = withLayout(withStoredEtags(document, etags), layout);
        return { documents: storedDocuments({ ...stored, promoted_from: origin }), ...(signature ? { signature } : {}), digest };
      },
      layout === "content-addressed" ? present : undefined,
    );
    return { copied: true, digest, serverSide, streamed, kept };
  }

  /** The digest of a version this store already has (null: it has no checksums), undefined when it has none. */
  private async existingDigest(name: string, version: string): Promise<string | null | undefined> {
    const meta = await this.storedMeta(name, version);
    return meta && (meta.digest ?? null);
  }

  /**
   * Copies a file of an earlier version inside the store, only if the store proves its object is still the one
   * that version's meta lists (its recorded etag, or its sha256: see Store.copy); false when it cannot (the caller
   * uploads the local file), with a warning when the object was changed or damaged since, or the store cannot copy.
   */
  private async copyFrom(
    name: string,
    version: string,
    layout: LayoutName,
    file: VersionMeta["files"][number],
    destKey: string,
    localFile: string,
  ): Promise<boolean> {
    const what = `${file.path || name} of ${name}:${version}`;
    try {
      if (await this.store.copy(fileKey(name, version, layout, file), destKey, { etag: file.etag, sha256: file.sha256 })) return true;
      if (file.etag)
        this.options.warn?.(`${what} is no longer the object its meta lists (changed or damaged in ${this.store.url}): uploading ${localFile} instead`);
      return false;
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
      this.options.warn?.(`cannot copy ${what} inside the store, uploading it instead: ${err.message}`);
      return false;
    }
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

  /**
   * Removes versions from `.versions` (and their digests) by compare-and-swap: the first step of deleting a
   * version, after which no reader resolves it. Returns the versions that were listed, with their digests.
   */
  withdraw(name: string, versions: readonly string[]): Promise<Record<string, string | null>> {
    return this.indexes.withdraw(name, versions);
  }

  /** Lists withdrawn versions again (a channel moved onto one while it was being withdrawn). */
  reinstate(name: string, withdrawn: Record<string, string | null>): Promise<void> {
    return this.indexes.reinstate(name, withdrawn);
  }
}
