// Assets in an OCI registry (docs/oci.md): asset `<name>` = repository `<namespace>/<name>`, version = a tag on one
// manifest (artifact.ts), the tag list = the version index. Publishing takes a version by the claim rule of §5.1,
// since registries have no conditional write: claim tag, settle, list, win only when no rival claim is listed.
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { AssetError, UsageError } from "../../base/errors.ts";
import { mapSettling } from "../../base/map-settling.ts";
import { formatBytes } from "../../base/units.ts";
import { hashPool } from "../../hashing/pool.ts";
import { Limiter } from "../../store/limiter.ts";
import type { OciClient } from "../../store/oci/client.ts";
import type { GitHubPackages } from "../../store/oci/github-packages.ts";
import type { OciLocation } from "../../store/oci/open.ts";
import { sourceOf, StoreError, type ByteRange, MAX_DOCUMENT_BYTES } from "../../store/store.ts";
import { countStoredFile, type OpenObject, type TransferProgress, type TransferSettings } from "../../transfer/engine.ts";
import { copyBudget, writeVerified } from "../../transfer/store-copy.ts";
import type { AssetRegistry, CopyVersionOutcome, PromotedFrom, PublishOutcome, PublishRequest, Resolved } from "../asset-registry.ts";
import { promotionOrigin } from "../promotion-origin.ts";
import { channelMove, LATEST, type AliasEntry, type ChannelMove, type ChannelMoveOutcome, type Promotion } from "../channels.ts";
import {
  buildMeta,
  expectedMetaSize,
  hashedInput,
  metaSizeProblem,
  parseMeta,
  sameContent,
  type AssetMetaDocument,
  withStoredEtags,
  type HashingInput,
  type VersionMeta,
} from "../manifest.ts";
import { checkAssetName } from "../paths.ts";
import { formatSpec, selectorText, type AssetSpec } from "../spec.ts";
import type { DeletedVersions } from "../prune.ts";
import type { VersionIndex } from "../version-index.ts";
import { detectScheme, sortNewestFirst, SCHEMES, type Scheme, type SchemeName } from "../versioning.ts";
import {
  configBlob,
  DIGEST_ANNOTATION,
  EMPTY_BLOB,
  MOVE_CONFIG_MEDIA_TYPE,
  moveManifestBytes,
  MANIFEST_MEDIA_TYPE,
  MAX_MANIFEST_BYTES,
  manifestBytes,
  manifestSizeBound,
  metaOfConfig,
  parseManifest,
  partTitleClash,
  sha256Digest,
  signatureLayer,
  signatureManifestBytes,
  standInManifestBytes,
  type BlobPart,
  type Descriptor,
  type ImageManifest,
  type LayerFile,
} from "./artifact.ts";
import { openParts, splitRanges, rangeDigests, storedFiles, withinPart, type StoredFile } from "./split.ts";
import {
  deleteVersionTags,
  planRepositoryGc,
  removeLeftovers,
  removeLeftoversThroughPackages,
  type OciGcPlan,
  type OciLeftover,
  type VersionsAt,
} from "./gc.ts";
import {
  channelMoves,
  holdTag,
  isAbandoned,
  moveSlot,
  moveTag,
  newClaim,
  readTags,
  rivalClaims,
  signatureTag,
  versionTagProblem,
  withdrawalMarker,
  type TagState,
} from "./tags.ts";

/** A repository path component (distribution spec), for each '/'-segment of an asset name. */
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
/** `<registry>/<namespace>/<name>` may not be longer (distribution's limit). */
const MAX_REPOSITORY_REFERENCE = 255;
/** Claim rounds before a publisher gives up (measured: ≤ 36 rounds for 16 publishers, docs/oci.md §5.3). */
const MAX_ROUNDS = 200;
/** The backoff's exponent stops growing here: waits stay within 64 × (settle + a listing's round trip). */
const MAX_BACKOFF_EXPONENT = 6;
/**
 * A publish sends a blob up to this size without asking first (HEAD) whether the repository holds it, unless the
 * previous version lists it. Such a blob is nearly always absent (the HEAD answers 404: one round trip for nothing,
 * a third of a small file's requests); when it is present, sending it again costs a round trip and at most this many
 * bytes more. Larger blobs are always asked about: a retried publish must not send gigabytes twice.
 */
const UNASKED_BLOB_BYTES = 1024 * 1024;

export interface OciLayoutOptions {
  /** The scheme a new asset takes. */
  versioning: SchemeName;
  /** One publisher at a time: no claims, the version tag is written once it is seen absent. */
  unsafePublish?: boolean;
  settings: TransferSettings;
  /** Where publish says that files were split into parts (standard pullers get the parts). */
  warn?: (message: string) => void;
  /** GitHub's Packages API for this store (ghcr.io): prune deletes through it where the registry refuses DELETE. */
  packages?: GitHubPackages;
}

/** A channel's name must leave room for its claim tag within the 128 characters of a tag. */
const MAX_CHANNEL_LENGTH = 64;

/** A channel move as its record keeps it: the move, and the manifest digest the channel tag was given. */
type RecordedMove = ChannelMove & { digest: string };

/** A repository's package on GitHub: the repository below its owner, the namespace's first segment. */
const packageName = (repo: string): string => repo.split("/").slice(1).join("/");

/** The `.sig` of the version being committed, made once its number is known (PublishRequest.sign), or none. */
type Signing = (version: string) => Buffer | undefined | Promise<Buffer | undefined>;

/** A publish's first claim, written before its blobs upload (claimEarly) on a stand-in manifest; its settle runs from `at`. */
interface EarlyClaim {
  slot: string;
  claim: { tag: string; cid: string };
  standIn: Buffer;
  at: number;
}

/** How a version is stored in the registry, as `show` prints it (`oci` in its JSON). */
export interface OciStorage {
  /** `<registry>/<repository>@<manifest digest>`: what a pod or `oras pull` pins. */
  reference: string;
  /** The files stored as parts (§4), by the name a puller would write them under; standard pullers get the parts. */
  split: { file: string; size: number; parts: number }[];
}

/** A version's manifest as read: its digest and content, and the files its layers hold by title. */
interface StoredManifest {
  digest: string;
  manifest: ImageManifest;
  files: Map<string, StoredFile>;
}

export class OciLayout implements AssetRegistry {
  readonly kind = "oci";
  readonly url: string;
  readonly writable = true;
  readonly listable = true;
  readonly storeCopies = false;
  private readonly client: OciClient;
  private readonly location: OciLocation;
  private readonly options: OciLayoutOptions;
  /** Each asset's versions, read once per command (a tag listing); publishers list afresh. */
  private readonly indexes = new Map<string, Promise<VersionIndex>>();
  /** Version manifests read, by `name:version`: tags of versions are never re-pointed by assetkit. */
  private readonly manifests = new Map<string, Promise<StoredManifest>>();

  constructor(client: OciClient, location: OciLocation, options: OciLayoutOptions) {
    this.client = client;
    this.location = location;
    this.options = options;
    this.url = location.url;
  }

  /** The repository of an asset, its name checked against the repository grammar (usage error naming the rule). */
  repository(name: string): string {
    checkAssetName(name);
    const bad = name.split("/").find((segment) => !PATH_COMPONENT.test(segment));
    if (bad !== undefined) {
      throw new UsageError(
        `asset name ${JSON.stringify(name)} cannot be a repository of ${this.url}: ${JSON.stringify(bad)} is not a repository path component (lowercase letters and digits, joined by '.', '_' or '-')`,
      );
    }
    const repo = `${this.location.namespace}/${name}`;
    if (`${this.location.registry.host}/${repo}`.length > MAX_REPOSITORY_REFERENCE) {
      throw new UsageError(
        `asset name ${JSON.stringify(name)} is too long for ${this.url}: <registry>/<namespace>/<name> may have ${MAX_REPOSITORY_REFERENCE} characters`,
      );
    }
    return repo;
  }

  // ── reading ──

  versions(name: string): Promise<VersionIndex> {
    let index = this.indexes.get(name);
    if (!index) {
      index = this.listTags(this.repository(name)).then((state) => this.indexOf(state));
      this.indexes.set(name, index);
      index.catch(() => this.indexes.delete(name));
    }
    return index;
  }

  forget(name: string): void {
    this.indexes.delete(name);
  }

  /** A channel's tag digest (one HEAD), else the version tags joined (one listing): what a watcher polls. */
  async revision(spec: AssetSpec): Promise<string> {
    if (spec.selector.kind === "alias" && spec.selector.alias !== LATEST) {
      return (await this.client.headManifest(this.repository(spec.name), spec.selector.alias))?.digest ?? "absent";
    }
    return (await this.listTags(this.repository(spec.name))).versions.sort().join(",") || "absent";
  }

  async assets(): Promise<string[]> {
    const prefix = `${this.location.namespace}/`;
    const names: string[] = [];
    try {
      for await (const repo of this.client.listRepositories()) if (repo.startsWith(prefix)) names.push(repo.slice(prefix.length));
    } catch (err) {
      // A refusal of the catalog, not of the credentials themselves (those are refused on every request).
      const noCatalog =
        err instanceof StoreError && (err.code === "not-found" || err.code === "unsupported" || (err.code === "auth" && !this.client.credentialsRefused));
      if (noCatalog) {
        throw new UsageError(`${this.url} does not list its repositories (no catalog): name the asset (assetkit list <name>)`);
      }
      throw err;
    }
    return names.sort();
  }

  async meta(name: string, version: string): Promise<VersionMeta> {
    const repo = this.repository(name);
    const { manifest } = await this.manifestOf(name, version);
    const where = `the config of ${repo}:${version} in ${this.url}`;
    return parseMeta(metaOfConfig(await this.checkedBlob(repo, manifest.config, where), where), where);
  }

  /** A small blob (a config, a record, a signature) read whole and checked against its digest; `where` names it. */
  private async checkedBlob(repo: string, blob: Descriptor, where: string): Promise<Buffer> {
    const data = await this.client.readBlob(repo, blob.digest, blob.size);
    if (sha256Digest(data) !== blob.digest) throw new AssetError(`${where} is damaged: its bytes do not have digest ${blob.digest}`);
    return data;
  }

  signatureWhere(name: string, version: string): string {
    return `tag ${signatureTag(version)} of ${this.repository(name)} in ${this.url}`;
  }

  /** The version's `.sig`: the layer of the manifest tagged `_s.<version>` whose subject is the version's manifest. */
  async signature(name: string, version: string): Promise<Buffer | undefined> {
    const repo = this.repository(name);
    const { digest } = await this.manifestOf(name, version);
    const got = await this.client.getManifest(repo, signatureTag(version));
    if (!got) return undefined;
    const where = `the signature of ${repo}:${version} in ${this.url}`;
    // Naming another manifest of this version (a publish that failed after signing), it signs nothing here.
    const layer = signatureLayer(got.data, where, digest);
    if (!layer) return undefined;
    return this.checkedBlob(repo, layer, where);
  }

  async resolve(spec: AssetSpec): Promise<Resolved> {
    const { name, version } = await this.resolveVersion(spec);
    return { name, version, meta: await this.meta(name, version) };
  }

  /** The meta document of the version a spec names (the config blob: one document, never sharded). */
  async resolveDocument(spec: AssetSpec): Promise<{ name: string; version: string; document: AssetMetaDocument }> {
    const { name, version, meta } = await this.resolve(spec);
    return { name, version, document: meta.document };
  }

  async resolveDigest(spec: AssetSpec): Promise<{ name: string; version: string; digest: string | null }> {
    const { name, version } = await this.resolveVersion(spec);
    return { name, version, digest: await this.digestOf(name, version) };
  }

  /** The asset digest from the version's manifest annotation: one manifest GET, no config read. */
  async digestOf(name: string, version: string): Promise<string | null> {
    return (await this.manifestOf(name, version)).manifest.annotations?.[DIGEST_ANNOTATION] ?? null;
  }

  /**
   * A file's bytes: its layer blob, or its part blobs in order (split.ts; each part read whole is checked against its
   * digest). The engine verifies what it reads against the meta.
   */
  async openFile(name: string, version: string, relPath: string, range?: ByteRange): Promise<Readable> {
    const repo = this.repository(name);
    const file = await this.storedFile(name, version, relPath);
    return openParts(file, range, (digest, within) => this.client.openBlob(repo, digest, within), `${relPath || name} of ${name}:${version} in ${this.url}`);
  }

  /** How a file of a version is stored: its blob, or its parts (a single-file asset's file is the one there is). */
  async storedFile(name: string, version: string, relPath: string): Promise<StoredFile> {
    const { files } = await this.manifestOf(name, version);
    const file = relPath === "" && files.size === 1 ? [...files.values()][0] : files.get(relPath);
    if (!file) throw new AssetError(`${name}:${version} in ${this.url} has no layer titled ${JSON.stringify(relPath)}`);
    return file;
  }

  /** Where a version's manifest is and which of its files are split into parts (one manifest GET, cached). */
  async storage(name: string, version: string): Promise<OciStorage> {
    const { digest, files } = await this.manifestOf(name, version);
    return {
      reference: `${this.location.registry.host}/${this.repository(name)}@${digest}`,
      split: [...files.values()].filter((f) => f.parts.length > 1).map((f) => ({ file: f.title, size: f.size, parts: f.parts.length })),
    };
  }

  foreignVersions(name: string, versions: string[], what: string): AssetError {
    const shown = versions.slice(0, 3).join(", ") + (versions.length > 3 ? ", …" : "");
    return new AssetError(
      `${what}: the version tags of ${name} in ${this.url} (${shown}) follow no versioning scheme assetkit knows (${SCHEMES.map((s) => s.name).join(", ")})`,
    );
  }

  private async resolveVersion(spec: AssetSpec): Promise<{ name: string; version: string }> {
    const index = await this.versions(spec.name);
    const what = formatSpec({ name: spec.name, version: selectorText(spec.selector) });
    if (index.foreign) throw this.foreignVersions(spec.name, index.foreign, what);
    if (index.versions.length === 0) throw new AssetError(`${what}: no asset named ${spec.name} in ${this.url}`);
    const version =
      spec.selector.kind === "alias" && spec.selector.alias !== LATEST
        ? await this.channelTarget(spec.name, spec.selector.alias)
        : index.scheme.pick(spec.selector.kind === "alias" ? { kind: "latest" } : spec.selector, index.versions);
    if (!version) throw new AssetError(`${what}: no matching version in ${this.url} (latest: ${index.versions.slice(0, 5).join(", ")})`);
    if (!index.versions.includes(version)) throw new AssetError(`${what}: version ${version} is not committed in ${this.url}`);
    return { name: spec.name, version };
  }

  private manifestOf(name: string, version: string): Promise<StoredManifest> {
    const key = `${name}:${version}`;
    let read = this.manifests.get(key);
    if (!read) {
      const repo = this.repository(name);
      read = this.client.getManifest(repo, version).then((got) => {
        if (!got) throw new AssetError(`${name}:${version} does not exist in ${this.url}`);
        const where = `${repo}:${version} in ${this.url}`;
        const manifest = parseManifest(got.data, where);
        return { digest: got.digest, manifest, files: new Map(storedFiles(manifest.layers, where).map((f) => [f.title, f])) };
      });
      this.manifests.set(key, read);
      read.catch(() => this.manifests.delete(key));
    }
    return read;
  }

  private async listTags(repo: string): Promise<TagState> {
    const tags: string[] = [];
    for await (const tag of this.client.listTags(repo)) tags.push(tag);
    return readTags(tags);
  }

  private indexOf(state: TagState): VersionIndex {
    const scheme = detectScheme(state.versions, this.options.versioning);
    const versions = sortNewestFirst(scheme, state.versions).filter((v) => scheme.isVersion(v));
    const foreign = versions.length === 0 && state.versions.length > 0 ? state.versions : undefined;
    return { versions, scheme, digest: () => undefined, ...(foreign ? { foreign } : {}) };
  }

  // ── publishing ──

  /**
   * Uploads the files as blobs (those the repository holds already are skipped), then the config and the manifest
   * under a hold tag, then takes a version by the claim rule and commits it with one tag PUT. Its first claim goes
   * up before the uploads (claimEarly), so that its settle passes while they run.
   */
  async publish(request: PublishRequest): Promise<PublishOutcome> {
    const early: { claim?: EarlyClaim } = {};
    try {
      return await this.publishClaiming(request, early);
    } catch (err) {
      // An early claim must not hold the next publisher off until it is abandoned (15 minutes). One that lost or
      // failed its commit was withdrawn already; once more is harmless. One that won and committed has no failure here.
      const { claim } = early;
      if (claim) await this.withdraw(this.repository(request.name), claim.claim.tag, claim.claim.cid, claim.standIn).catch(() => undefined);
      throw err;
    }
  }

  /** publish, its first claim (when it makes one before uploading) kept in `early` for publish to withdraw on failure. */
  private async publishClaiming(request: PublishRequest, early: { claim?: EarlyClaim }): Promise<PublishOutcome> {
    const { name } = request;
    const repo = this.repository(name);
    const input = "digest" in request.input ? hashedInput(request.input) : request.input;
    if (input.files.some((f) => f.copyTo)) throw new UsageError(`files copied from another store cannot be published to ${this.url} yet`);
    if (request.version !== undefined) this.checkVersionTag(request.version);
    const metaProblem = metaSizeProblem(expectedMetaSize(input, request), input.files.length, MAX_DOCUMENT_BYTES);
    if (metaProblem) throw new UsageError(`cannot publish ${name}: ${metaProblem}`);
    const bound = manifestSizeBound(name, input.files, this.location.maxBlobBytes);
    if (bound > MAX_MANIFEST_BYTES) throw this.manifestTooLarge(name, input.files.length, bound);
    const clash = partTitleClash(name, input.files, this.location.maxBlobBytes);
    if (clash) throw new UsageError(`cannot publish ${name} to ${this.url}: ${clash}`);

    const state = await this.listTags(repo);
    const index = this.indexOf(state);
    if (index.foreign) throw this.foreignVersions(name, index.foreign, `cannot publish ${name}`);
    const { scheme } = index;
    if (request.version !== undefined && !scheme.isVersion(request.version)) {
      throw new UsageError(`--version ${request.version} is not a ${scheme.name} version (${name} uses ${scheme.name})`);
    }
    const previous = scheme.pick(request.series ?? { kind: "latest" }, index.versions);
    if (request.ifChanged && previous) {
      const [previousMeta, prepared] = await Promise.all([this.meta(name, previous).catch(() => undefined), input.prepared]);
      if (previousMeta?.digest && sameContent(previousMeta, prepared)) return unpublished(previous, previousMeta.digest);
    }
    if (request.version !== undefined && state.tags.has(request.version)) {
      return this.alreadyThere(name, request.version, (await input.prepared).digest);
    }

    if (!this.options.unsafePublish) early.claim = await this.claimEarly(repo, state, scheme, request);
    // The blobs the previous version's manifest lists (parts included): the ones worth a HEAD before sending.
    const previousBlobs = previous
      ? await this.manifestOf(name, previous).then(
          ({ manifest }) => new Set(manifest.layers.map((l) => l.digest)),
          () => new Set<string>(),
        )
      : new Set<string>();
    const { parts, ...tally } = await this.uploadFiles(repo, input, previousBlobs, request.onProgress);
    const prepared = await input.prepared;
    const layers: LayerFile[] = prepared.files.map((f) => {
      const split = parts.get(f.path);
      return { path: f.path, size: f.size, digest: `sha256:${f.sha256}`, ...(split ? { parts: split } : {}) };
    });
    this.reportSplit(name, layers);
    const meta = buildMeta(prepared, request, new Map(layers.map((l) => [l.path, l.digest])));
    const config = configBlob(name, meta, layers);
    await this.putBlobOnce(repo, config);
    const manifest = manifestBytes(name, meta, config, layers, request.source);
    if (manifest.length > MAX_MANIFEST_BYTES) throw this.manifestTooLarge(name, layers.length, manifest.length);

    // Tagged from the start, so it is never an untagged manifest while this publisher lives (gc finds holds).
    const hold = holdTag(Date.now());
    const digest = await this.client.putManifest(repo, hold, manifest, MANIFEST_MEDIA_TYPE);
    const { sign } = request;
    const signing: Signing | undefined =
      sign && ((version) => sign({ name, version, digest: prepared.digest, isDirectory: prepared.isDirectory, files: prepared.files }));
    try {
      const version = this.options.unsafePublish
        ? await this.commitUnsafely(repo, name, scheme, request, manifest, digest, signing)
        : await this.claimAndCommit(repo, name, scheme, request, manifest, digest, early.claim, signing);
      if (version === undefined) return this.alreadyThere(name, request.version!, prepared.digest);
      this.forget(name);
      return { version, digest: prepared.digest, published: true, ...tally };
    } finally {
      // A hold left behind only tags a manifest that exists anyway: it must not hide why the publish ended.
      await this.withdraw(repo, hold, undefined, manifest).catch(() => undefined);
    }
  }

  /**
   * Copies `name:version` from another store under the same version and asset digest (promote --to): each file
   * becomes the blob named by its sha256 in the source meta, then the meta (with `promoted_from`) the config, then
   * the manifest is committed by the claim rule for exactly `version`. Already here with the same asset digest:
   * nothing copied; with another: refused. Its signature, if any, is tagged before the version (putSignature).
   */
  async copyVersion(
    source: AssetRegistry,
    name: string,
    version: string,
    promotion: Omit<PromotedFrom, "store" | "version" | "digest"> & { onProgress?: (p: TransferProgress) => void },
  ): Promise<CopyVersionOutcome> {
    const repo = this.repository(name);
    this.checkVersionTag(version);
    const meta = await source.meta(name, version);
    const { digest } = meta;
    const files: LayerFile[] = [];
    for (const f of meta.files) if (f.size !== undefined && f.sha256 !== undefined) files.push({ path: f.path, size: f.size, digest: `sha256:${f.sha256}` });
    if (!digest || files.length < meta.files.length) {
      throw new UsageError(
        `${name}:${version} in ${source.url} has no checksums (written by modelkit?): it cannot be copied to ${this.url}, whose blobs are named by their sha256`,
      );
    }
    const state = await this.listTags(repo);
    if (state.tags.has(version)) {
      this.manifests.delete(`${name}:${version}`);
      const existing = await this.digestOf(name, version);
      if (existing === digest) return { copied: false, digest, serverSide: { files: 0, bytes: 0 }, streamed: { files: 0, bytes: 0 } };
      throw new AssetError(
        `${name}:${version} already exists in ${this.url} with digest ${existing ?? "(none)"}, not ${digest} as in ${source.url}; versions are immutable: nothing was changed`,
      );
    }
    const index = this.indexOf(state);
    if (index.foreign) throw this.foreignVersions(name, index.foreign, `cannot copy ${name}:${version}`);
    const clash = partTitleClash(name, files, this.location.maxBlobBytes);
    if (clash) throw new UsageError(`cannot copy ${name}:${version} to ${this.url}: ${clash}`);
    const { origin } = await promotionOrigin(index, this.url, source, name, version, digest, promotion);
    const layers: LayerFile[] = [];
    await mapSettling(
      [...files.keys()],
      async (i) => {
        layers[i] = await this.splitCopied(source, name, version, files[i]!);
      },
      this.options.settings.concurrency,
    );
    this.reportSplit(name, layers);
    // Each file's etag here is its sha256 digest (its blob's, when it is not split), as publish records it.
    const document = { ...withStoredEtags(meta.document, new Map(layers.map((l) => [l.path, l.digest]))), promoted_from: origin };
    const config = configBlob(name, document, layers);
    const manifest = manifestBytes(name, document, config, layers, document.assetkit?.source ?? {});
    const what = `cannot copy ${name}:${version} to ${this.url}`;
    const metaProblem = metaSizeProblem(config.length, layers.length, MAX_DOCUMENT_BYTES);
    if (metaProblem) throw new UsageError(`${what}: ${metaProblem}`);
    if (manifest.length > MAX_MANIFEST_BYTES) throw this.manifestTooLarge(name, layers.length, manifest.length);

    const signature = await source.signature(name, version);
    const tally = await this.copyBlobs(repo, source, name, version, layers, promotion.onProgress);
    if (!(await this.client.blobExists(repo, sha256Digest(config)))) await this.client.uploadBlob(repo, sha256Digest(config), config);
    const hold = holdTag(Date.now());
    const manifestDigest = await this.client.putManifest(repo, hold, manifest, MANIFEST_MEDIA_TYPE);
    try {
      const won = await this.claimSlot(
        repo,
        manifest,
        (now) => (now.tags.has(version) ? undefined : version),
        (now, slot) => now.tags.has(slot),
        `${name}:${version}`,
        `copy ${name}:${version}`,
      );
      // Committed by another promoter meanwhile: compared like any version already here.
      if (won === undefined) return await this.copyVersion(source, name, version, promotion);
      await this.releasingOnFailure(repo, won.claim, manifest, () =>
        this.commit(repo, name, version, manifest, manifestDigest, signature && (() => signature)),
      );
      this.forget(name);
      return { copied: true, digest, ...tally };
    } finally {
      await this.withdraw(repo, hold, undefined, manifest).catch(() => undefined);
    }
  }

  /**
   * A copied file as layers here: itself, or its parts when it is over `?max-blob=`. The parts' digests come from
   * the source's manifest when it is a registry that split the file alike; else the file is read once from the
   * source to hash them, checked against its size and sha256 on the way (copyBlobs then reads it again, each part
   * checked against the digest found).
   */
  private async splitCopied(source: AssetRegistry, name: string, version: string, file: LayerFile): Promise<LayerFile> {
    const ranges = splitRanges(file.size, this.location.maxBlobBytes);
    if (!ranges) return file;
    const stored = source instanceof OciLayout ? await source.storedFile(name, version, file.path) : undefined;
    const alike =
      stored?.parts.length === ranges.length && stored.parts.every((p, i) => p.offset === ranges[i]!.start && p.size === ranges[i]!.end - ranges[i]!.start + 1);
    const digests = alike
      ? stored.parts.map((p) => p.digest)
      : (
          await writeVerified(
            (range) => source.openFile(name, version, file.path, range),
            `${file.path || name} of ${name}:${version} in ${source.url}`,
            { size: file.size, sha256: file.digest.slice("sha256:".length) },
            { settings: this.options.settings, budget: copyBudget() },
            (body) => rangeDigests((range) => body.open(range), ranges),
          )
        ).result;
    return { ...file, parts: ranges.map((r, i) => ({ digest: digests[i]!, size: r.end - r.start + 1, offset: r.start })) };
  }

  /**
   * The blobs of a copied version (a split file's parts at once, within the transfer's concurrency): one the repository holds is skipped
   * (HEAD); one of another repository of this registry is mounted from it (no byte through this process); any
   * other streams from the source's `openFile`, checked against its digest and size as it uploads, so wrong bytes
   * fail before the registry commits the blob.
   */
  private async copyBlobs(
    repo: string,
    source: AssetRegistry,
    name: string,
    version: string,
    layers: readonly LayerFile[],
    onProgress: ((progress: TransferProgress) => void) | undefined,
  ): Promise<Pick<CopyVersionOutcome, "serverSide" | "streamed">> {
    const mountFrom = source instanceof OciLayout && source.location.registry.origin === this.location.registry.origin ? source.repository(name) : undefined;
    const serverSide = { files: 0, bytes: 0 };
    const streamed = { files: 0, bytes: 0 };
    const progress: TransferProgress = { bytes: 0, totalBytes: layers.reduce((sum, l) => sum + l.size, 0), files: 0, totalFiles: layers.length };
    // One read-ahead budget for the whole copy: parts streamed at once share it.
    const options = { settings: this.options.settings, budget: copyBudget() };
    const requests = new Limiter(this.options.settings.concurrency);
    await mapSettling(
      layers,
      async (layer) => {
        const label = `${layer.path || name} of ${name}:${version} in ${source.url}`;
        const open: OpenObject = (range) => source.openFile(name, version, layer.path, range);
        const uploaded = await this.storeBlobs(
          repo,
          blobsOf(layer),
          requests,
          () => true,
          async (blob, i) => {
            const { result } = await writeVerified(
              layer.parts ? withinPart(open, blob) : open,
              layer.parts ? `part ${i + 1} of ${layer.parts.length} of ${label}` : label,
              { size: blob.size, sha256: blob.digest.slice("sha256:".length) },
              options,
              (body) => this.client.uploadBlob(repo, blob.digest, body, mountFrom === undefined ? {} : { mountFrom }),
            );
            return result === "uploaded";
          },
        );
        countStoredFile(uploaded ? streamed : serverSide, progress, layer.size, onProgress);
      },
      this.options.settings.concurrency,
    );
    return { serverSide, streamed };
  }

  /** Publish and promote --to say when files were split: standard pullers (oras pull, image volumes) get the parts. */
  private reportSplit(name: string, layers: readonly LayerFile[]): void {
    const split = layers.filter((l) => l.parts);
    if (split.length === 0) return;
    const shown = split.slice(0, 3).map((l) => `${l.path || name}: ${l.parts!.length} parts`);
    this.options.warn?.(
      `${split.length} file(s) of ${name} are larger than ${this.url} takes in one blob (max-blob ${formatBytes(this.location.maxBlobBytes!)}), stored as parts (${shown.join(", ")}${split.length > 3 ? ", …" : ""}): assetkit reassembles them; oras pull and image volumes get the parts (<file>.part-NNN-of-MMM; cat <file>.part-* > <file>)`,
    );
  }

  // ── gc and prune (gc.ts) ──

  /** gc's plan over every asset of the namespace: assetkit tags older than the grace period that no version needs. */
  async gcPlan(graceMs: number, now = Date.now()): Promise<OciGcPlan> {
    const plan: OciGcPlan = { leftovers: [], recent: [] };
    for (const name of await this.assets()) {
      const repo = this.repository(name);
      const found = planRepositoryGc(name, repo, await this.listTags(repo), now - graceMs);
      plan.leftovers.push(...found.leftovers);
      plan.recent.push(...found.recent);
    }
    return plan;
  }

  /** Whether deletions the registry refuses go through GitHub's Packages API (ghcr.io, ?packages-api=). */
  get deletesThroughPackages(): boolean {
    return this.options.packages !== undefined;
  }

  /** Deletes the leftovers' tags; where the registry refuses, through GitHub's Packages API when it has one (gc.ts). */
  async removeLeftovers(leftovers: OciLeftover[]): Promise<{ removed: OciLeftover[]; refused: OciLeftover[] }> {
    const done = await removeLeftovers(this.client, leftovers);
    const { packages } = this.options;
    if (done.refused.length === 0 || !packages) return done;
    const through = await removeLeftoversThroughPackages(packages, packageName, done.refused, sha256Digest(standInManifestBytes()));
    return { removed: [...done.removed, ...through.removed], refused: through.refused };
  }

  /** prune's deletion: version tags, in two phases (gc.ts). */
  async deleteVersions(name: string, versions: string[], protectedNow: () => Promise<Set<string>>): Promise<DeletedVersions> {
    const { packages } = this.options;
    const where: VersionsAt = {
      url: this.url,
      repo: this.repository(name),
      name,
      settleMs: this.location.settleMs,
      ...(packages ? { packages: { api: packages, name: packageName(this.repository(name)) } } : {}),
    };
    try {
      const result = await deleteVersionTags(this.client, where, versions, protectedNow);
      // A deleted version's signature goes with it (best effort: one left behind signs no manifest a tag names).
      for (const { version } of result.deleted) await this.client.deleteManifest(where.repo, signatureTag(version)).catch(() => undefined);
      return result;
    } finally {
      this.forget(name);
    }
  }

  // ── channels (docs/oci.md §5.4): tag <channel> = the version's manifest; move n recorded as tag _m.<channel>.<n> ──

  async aliases(name: string): Promise<{ table: Record<string, AliasEntry> }> {
    const repo = this.repository(name);
    const table: Record<string, AliasEntry> = {};
    for (const [channel, numbers] of channelMoves(await this.listTags(repo))) {
      const history = (await Promise.all(numbers.map((n) => this.readMove(repo, channel, n)))).reverse();
      const newest = history[0]!;
      const { run_url, ref, sha } = newest;
      table[channel] = {
        version: newest.version,
        promoted_at: newest.at,
        promoted_by: newest.by,
        source: { ...(run_url ? { run_url } : {}), ...(ref ? { ref } : {}), ...(sha ? { sha } : {}) },
        ...(newest.previous ? { previous: newest.previous } : {}),
        history: history.map(({ digest: _digest, ...move }) => move),
      };
    }
    return { table };
  }

  /**
   * Moves `channel` to a committed version by the claim rule on its next move number: the winner points the
   * channel tag at the version's manifest, then records the move (with the version it replaced).
   */
  async promote(name: string, channel: string, version: string, promotion: Promotion, rollback = false): Promise<{ previous?: string; changed: boolean }> {
    if (channel.length > MAX_CHANNEL_LENGTH) throw new UsageError(`channel ${channel} is too long for ${this.url}: at most ${MAX_CHANNEL_LENGTH} characters`);
    const repo = this.repository(name);
    const target = await this.client.getManifest(repo, version);
    if (!target) throw new AssetError(`${name}:${version} does not exist in ${this.url}`);
    const current = await this.newestMove(repo, channel);
    if (current?.version === version && (await this.client.headManifest(repo, channel))?.digest === target.digest) return { previous: version, changed: false };
    const won = await this.claimSlot(
      repo,
      target.data,
      (state) => {
        const now = Date.now();
        let n = (channelMoves(state).get(channel)?.at(-1) ?? 0) + 1;
        while (rivalClaims(state, moveSlot(channel, n)).some((c) => isAbandoned(c, now))) n++;
        return moveSlot(channel, n);
      },
      (state, slot) => state.tags.has(`_${slot}`),
      undefined,
      `promote ${name}:${channel}`,
    );
    const slot = won!.slot;
    const n = Number(slot.slice(slot.lastIndexOf(".") + 1));
    const before = n > 1 ? await this.readMove(repo, channel, n - 1).catch(() => undefined) : undefined;
    const move: RecordedMove = { ...channelMove(version, before?.version, promotion, rollback), digest: target.digest };
    await this.releasingOnFailure(repo, won!.claim, target.data, async () => {
      await this.client.putManifest(repo, channel, target.data, MANIFEST_MEDIA_TYPE);
      const config = Buffer.from(JSON.stringify(move));
      for (const blob of [config, EMPTY_BLOB]) await this.putBlobOnce(repo, blob);
      await this.client.putManifest(repo, moveTag(channel, n), moveManifestBytes(config), MANIFEST_MEDIA_TYPE);
    });
    await this.undoMoveOntoPruned(repo, { name, channel, version, n, digest: target.digest, data: target.data }, before, won!.claim);
    return { ...(before ? { previous: before.version } : {}), changed: true };
  }

  /**
   * A prune may delete the version's tag between our read of it and our move (docs/oci.md §5.4). Prune re-reads
   * the channels `settle` after deleting; we re-read the version tag `settle` after moving: one of us sees the other.
   * If the tag is gone, the channel tag goes back to the manifest it named (unless another move came since), the
   * move's record and claim go, and the promotion fails.
   */
  private async undoMoveOntoPruned(
    repo: string,
    move: { name: string; channel: string; version: string; n: number; digest: string; data: Buffer },
    before: RecordedMove | undefined,
    claim: { tag: string; cid: string },
  ): Promise<void> {
    const { name, channel, version, n, digest } = move;
    await sleep(this.location.settleMs);
    if ((await this.client.headManifest(repo, version))?.digest === digest) return;
    const newest = channelMoves(await this.listTags(repo))
      .get(channel)
      ?.at(-1);
    if (newest === n && (await this.client.headManifest(repo, channel))?.digest === digest) {
      const back = before && (await this.client.getManifest(repo, before.digest));
      if (back) await this.client.putManifest(repo, channel, back.data, back.mediaType);
      else await this.client.deleteManifest(repo, channel);
      await this.client.deleteManifest(repo, moveTag(channel, n));
      await this.withdraw(repo, claim.tag, claim.cid, move.data);
    }
    throw new AssetError(`${name}:${version} was deleted (pruned) while it was being promoted: ${name}:${channel} is unchanged`);
  }

  async rollback(name: string, channel: string, promotion: Promotion, expected?: string): Promise<ChannelMoveOutcome> {
    const current = await this.newestMove(this.repository(name), channel);
    if (!current) throw new AssetError(`${name}:${channel}: no channel ${channel} for ${name} in ${this.url}`);
    if (!current.previous) throw new AssetError(`${name}:${channel} has no earlier version to roll back to (it was created at ${current.version})`);
    if (expected !== undefined && current.previous !== expected)
      throw new AssetError(
        `${name}:${channel} moved while its rollback target ${expected} was checked (it would now go back to ${current.previous}): run again`,
      );
    const { changed } = await this.promote(name, channel, current.previous, promotion, true);
    return { version: current.previous, previous: current.version, changed };
  }

  /** The version a channel names: its newest recorded move, checked against the channel tag itself. */
  private async channelTarget(name: string, channel: string): Promise<string> {
    const repo = this.repository(name);
    const move = await this.newestMove(repo, channel);
    if (!move) throw new AssetError(`${name}:${channel}: no channel ${channel} for ${name} in ${this.url}`);
    const tagged = await this.client.headManifest(repo, channel);
    if (tagged?.digest !== move.digest) {
      throw new AssetError(
        `${name}:${channel} names ${tagged?.digest ?? "nothing"} in ${this.url}, not ${move.digest} (${move.version}) as its last recorded move says: a move was interrupted or made by another tool; promote again`,
      );
    }
    return move.version;
  }

  private async newestMove(repo: string, channel: string): Promise<RecordedMove | undefined> {
    const n = channelMoves(await this.listTags(repo))
      .get(channel)
      ?.at(-1);
    return n === undefined ? undefined : this.readMove(repo, channel, n);
  }

  private async readMove(repo: string, channel: string, n: number): Promise<RecordedMove> {
    const tag = moveTag(channel, n);
    const where = `${repo}:${tag} in ${this.url}`;
    const got = await this.client.getManifest(repo, tag);
    if (!got) throw new AssetError(`${where} is gone`);
    const { config } = parseManifest(got.data, where, MOVE_CONFIG_MEDIA_TYPE);
    const move = JSON.parse((await this.checkedBlob(repo, config, where)).toString("utf8")) as RecordedMove;
    if (typeof move.version !== "string" || typeof move.digest !== "string") throw new AssetError(`${where} is not a channel move record`);
    return move;
  }

  private checkVersionTag(version: string): void {
    const problem = versionTagProblem(version);
    if (problem) throw new UsageError(`version ${version} cannot be a tag of ${this.url}: ${problem}`);
  }

  private manifestTooLarge(name: string, files: number, bytes: number): UsageError {
    return new UsageError(
      `cannot publish ${name} to ${this.url}: its manifest of ${files} file(s) would take about ${bytes} bytes, over the ${MAX_MANIFEST_BYTES} registries accept; publish fewer files (an archive of the small ones)`,
    );
  }

  /** `--version V` where tag V exists: not published when it holds the same asset digest, refused with another. */
  private async alreadyThere(name: string, version: string, digest: string): Promise<PublishOutcome> {
    this.manifests.delete(`${name}:${version}`);
    const existing = await this.digestOf(name, version);
    if (existing === digest) return unpublished(version, digest);
    throw new AssetError(
      `${name}:${version} already exists in ${this.url} with digest ${existing ?? "(none)"}, not ${digest}; versions are immutable: nothing was changed`,
    );
  }

  /**
   * Each file as a blob whose digest is its sha256, once hashed, or, over `?max-blob=`, as parts whose digests are
   * hashed from the file here (one more read of it); a blob the repository holds already is not sent. Returns the
   * parts of the split files, by path.
   */
  private async uploadFiles(
    repo: string,
    input: HashingInput,
    previousBlobs: ReadonlySet<string>,
    onProgress?: (progress: TransferProgress) => void,
  ): Promise<Pick<PublishOutcome, "uploaded" | "copied"> & { parts: Map<string, BlobPart[]> }> {
    const uploaded = { files: 0, bytes: 0 };
    const copied = { files: 0, bytes: 0 };
    const parts = new Map<string, BlobPart[]>();
    const progress: TransferProgress = { bytes: 0, totalBytes: input.size, files: 0, totalFiles: input.files.length };
    const requests = new Limiter(this.options.settings.concurrency);
    await mapSettling(
      input.files,
      async (file) => {
        const whole = { file: file.source, size: file.size };
        const ranges = splitRanges(file.size, this.location.maxBlobBytes);
        const blobs: BlobPart[] = ranges
          ? await Promise.all(
              ranges.map(async (r) => ({
                digest: `sha256:${await hashPool.hashRange(file.source, r.start, r.end + 1)}`,
                size: r.end - r.start + 1,
                offset: r.start,
              })),
            )
          : [{ digest: `sha256:${(await input.hashes.get(file.path)!).sha256}`, size: file.size, offset: 0 }];
        if (ranges) parts.set(file.path, blobs);
        const source = sourceOf(whole);
        const worthAsking = (blob: BlobPart) => blob.size > UNASKED_BLOB_BYTES || previousBlobs.has(blob.digest);
        const sent = await this.storeBlobs(repo, blobs, requests, worthAsking, async (blob) => {
          await this.client.uploadBlob(repo, blob.digest, ranges ? { size: blob.size, open: withinPart((range) => source.open(range), blob) } : whole);
          return true;
        });
        countStoredFile(sent ? uploaded : copied, progress, file.size, onProgress);
      },
      this.options.settings.concurrency,
    );
    return { uploaded, copied, parts };
  }

  /**
   * A file's blobs (its parts all at once), each skipped when the repository holds it (a HEAD, for those
   * `worthAsking`), else given to `send` (true: bytes went). Every HEAD and send holds a slot of `requests`, shared by all the files of one transfer, so
   * at most ASSETKIT_CONCURRENCY blobs are in flight whether they are files or parts (each upload reads its bytes in
   * bounded buffers: memory stays bounded by that number). True when `send` said any bytes went.
   */
  private async storeBlobs(
    repo: string,
    blobs: readonly BlobPart[],
    requests: Limiter,
    worthAsking: (blob: BlobPart) => boolean,
    send: (blob: BlobPart, index: number) => Promise<boolean>,
  ): Promise<boolean> {
    let sent = false;
    await mapSettling(
      [...blobs.keys()],
      (i) =>
        requests.run(async () => {
          if (worthAsking(blobs[i]!) && (await this.client.blobExists(repo, blobs[i]!.digest))) return;
          if (await send(blobs[i]!, i)) sent = true;
        }),
      blobs.length,
    );
    return sent;
  }

  /** A small blob (a config, the empty blob) put into `repo` unless it holds it already. */
  private async putBlobOnce(repo: string, data: Buffer): Promise<void> {
    const digest = sha256Digest(data);
    if (!(await this.client.blobExists(repo, digest))) await this.client.uploadBlob(repo, digest, data);
  }

  /**
   * The first claim of a publish, made before its blobs upload so that its settle passes meanwhile (docs/oci.md
   * §5.1), for the slot the publish's first listing names; it tags a stand-in manifest until the version's own
   * exists (claimSlot then points it there). None when a live rival claims that slot: the usual rounds wait for it.
   */
  private async claimEarly(repo: string, state: TagState, scheme: Scheme, request: PublishRequest): Promise<EarlyClaim | undefined> {
    const slot = request.version ?? this.nextFree(state, scheme, request);
    const now = Date.now();
    if (rivalClaims(state, slot).some((c) => !isAbandoned(c, now))) return undefined;
    const standIn = standInManifestBytes();
    await this.putBlobOnce(repo, EMPTY_BLOB);
    const claim = newClaim(slot, now);
    await this.client.putManifest(repo, claim.tag, standIn, MANIFEST_MEDIA_TYPE);
    return { slot, claim, standIn, at: Date.now() };
  }

  /** The claim rule for a version: the next free one of the series (or exactly `--version`), then its tag. */
  private async claimAndCommit(
    repo: string,
    name: string,
    scheme: Scheme,
    request: PublishRequest,
    manifest: Buffer,
    digest: string,
    early: EarlyClaim | undefined,
    signing: Signing | undefined,
  ): Promise<string | undefined> {
    const wanted = request.version;
    const won = await this.claimSlot(
      repo,
      manifest,
      (state) => (wanted === undefined ? this.nextFree(state, scheme, request) : state.tags.has(wanted) ? undefined : wanted),
      (state, slot) => state.tags.has(slot),
      wanted === undefined ? undefined : `${name}:${wanted}`,
      `publish ${name}`,
      early,
    );
    if (won === undefined) return undefined;
    await this.releasingOnFailure(repo, won.claim, manifest, () => this.commit(repo, name, won.slot, manifest, digest, signing));
    return won.slot;
  }

  /**
   * Runs the writes a won claim allows; if they fail, the claim is withdrawn (best effort) so the next writer need not
   * wait for it to be abandoned: a live claim on a slot nobody will commit would hold every publisher off that long.
   */
  private async releasingOnFailure(repo: string, claim: { tag: string; cid: string }, manifest: Buffer, writes: () => Promise<void>): Promise<void> {
    try {
      await writes();
    } catch (err) {
      await this.withdraw(repo, claim.tag, claim.cid, manifest).catch(() => undefined);
      throw err;
    }
  }

  /**
   * The claim rule (docs/oci.md §5.1) for a slot (a version, or a channel's next move): `pick` names the slot from a
   * listing; wait while a live rival claims it, claim it (a tag on `manifest`), wait `settle`, list again; win only
   * when the own claim is listed and neither a rival claim nor the slot's commit (`committed`) is. The winning claim
   * stays as the receipt (withdrawn if the writes it allows fail, see releasingOnFailure); a loser withdraws its claim and goes again after a random backoff. With `exact` (the slot
   * is given): undefined once it is committed (by anyone), and an error while someone else claims it. With `early`,
   * the first round's claim is that one: pointed at `manifest`, then listed once its settle, begun before the
   * uploads, is over.
   */
  private async claimSlot(
    repo: string,
    manifest: Buffer,
    pick: (state: TagState) => string | undefined,
    committed: (state: TagState, slot: string) => boolean,
    exact: string | undefined,
    what: string,
    early?: EarlyClaim,
  ): Promise<{ slot: string; claim: { tag: string; cid: string } } | undefined> {
    const settle = this.location.settleMs;
    let roundTrip = 0;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const backoff = () => sleep(Math.random() * (settle + roundTrip + 10) * 2 ** Math.min(round, MAX_BACKOFF_EXPONENT));
      let slot: string;
      let claim: { tag: string; cid: string };
      let claimedAt: number;
      if (round === 0 && early) {
        ({ slot, claim } = early);
        // Re-pointing the tag does not un-list it: its settle still runs from its first PUT.
        await this.client.putManifest(repo, claim.tag, manifest, MANIFEST_MEDIA_TYPE);
        claimedAt = early.at;
      } else {
        const listedAt = Date.now();
        const state = await this.listTags(repo);
        roundTrip = Date.now() - listedAt;
        const picked = pick(state);
        if (picked === undefined) return undefined;
        slot = picked;
        const now = Date.now();
        if (rivalClaims(state, slot).some((c) => !isAbandoned(c, now))) {
          if (exact !== undefined) throw this.beingWritten(exact);
          await backoff();
          continue;
        }
        claim = newClaim(slot, now);
        await this.client.putManifest(repo, claim.tag, manifest, MANIFEST_MEDIA_TYPE);
        claimedAt = Date.now();
      }
      await sleep(Math.max(0, claimedAt + settle - Date.now()));
      const after = await this.listTags(repo);
      if (!after.tags.has(claim.tag)) {
        await this.withdraw(repo, claim.tag, claim.cid, manifest);
        throw new AssetError(
          `${this.url}: cannot ${what}: the registry did not list tag ${claim.tag} ${settle / 1000} s after writing it; concurrent writers cannot be made safe on it (raise ?settle= or write from one job at a time with --unsafe-publish)`,
        );
      }
      if (rivalClaims(after, slot, claim.cid).length === 0 && !committed(after, slot)) return { slot, claim };
      await this.withdraw(repo, claim.tag, claim.cid, manifest);
      if (exact !== undefined) {
        if (committed(after, slot)) return undefined;
        throw this.beingWritten(exact);
      }
      await backoff();
    }
    throw new AssetError(`cannot ${what} in ${this.url}: no free slot after ${MAX_ROUNDS} rounds (too many concurrent writers); retry`);
  }

  /** `--unsafe-publish`: the next version whose tag is absent, written without claims (one publisher at a time). */
  private async commitUnsafely(
    repo: string,
    name: string,
    scheme: Scheme,
    request: PublishRequest,
    manifest: Buffer,
    digest: string,
    signing: Signing | undefined,
  ): Promise<string | undefined> {
    const state = await this.listTags(repo);
    if (request.version !== undefined && state.tags.has(request.version)) return undefined;
    const version = request.version ?? this.nextFree(state, scheme, request);
    await this.commit(repo, name, version, manifest, digest, signing);
    return version;
  }

  /** The next version of the series after the committed ones, skipping slots whose claims were abandoned. */
  private nextFree(state: TagState, scheme: Scheme, request: PublishRequest): string {
    // Newest first, as Scheme.next reads a list (tags come ASCIIbetically).
    const committed = sortNewestFirst(scheme, state.versions).filter((v) => scheme.isVersion(v));
    const now = Date.now();
    let candidate = scheme.next(committed, request.series, request.bump);
    while (rivalClaims(state, candidate).some((c) => isAbandoned(c, now))) candidate = scheme.after(candidate, request.series, request.bump);
    this.checkVersionTag(candidate);
    return candidate;
  }

  /**
   * Writes tag `version` (absent, checked) and reads it back: it must name this manifest. No second read `settle`
   * later: under L(settle) no rival can commit this slot (docs/oci.md §5.2), and where L fails a rival's commit can
   * come after any fixed wait, so waiting would cost every publish `settle` to report one case in a window. With
   * `signing`, the version's signature is tagged first (a committed version never lacks the one it was published
   * with), and removed again if the commit fails.
   */
  private async commit(repo: string, name: string, version: string, manifest: Buffer, digest: string, signing?: Signing): Promise<void> {
    const spec = `${name}:${version}`;
    const before = await this.client.headManifest(repo, version);
    if (before) throw new AssetError(`${spec} appeared in ${this.url} meanwhile (${before.digest}): another publisher or tool wrote it; nothing was committed`);
    const signature = await signing?.(version);
    if (signature) await this.putSignature(repo, version, signature, { digest, size: manifest.length });
    try {
      await this.writeVersionTag(repo, spec, version, manifest, digest);
    } catch (err) {
      if (signature) await this.client.deleteManifest(repo, signatureTag(version)).catch(() => undefined);
      throw err;
    }
  }

  /** The commit's write: tag `version` on the manifest, read back. */
  private async writeVersionTag(repo: string, spec: string, version: string, manifest: Buffer, digest: string): Promise<void> {
    await this.client.putManifest(repo, version, manifest, MANIFEST_MEDIA_TYPE);
    const now = await this.client.headManifest(repo, version);
    if (now?.digest !== digest) {
      throw new AssetError(
        `${spec} was committed twice in ${this.url}: tag ${version} names ${now?.digest ?? "nothing"}, not this publish's ${digest}; the registry does not list fresh tags within ?settle=: raise it`,
      );
    }
  }

  /** Tags a version's signature `_s.<version>`: its one layer, the version's manifest its subject (artifact.ts). */
  private async putSignature(repo: string, version: string, signature: Buffer, subject: { digest: string; size: number }): Promise<void> {
    await this.putBlobOnce(repo, EMPTY_BLOB);
    await this.putBlobOnce(repo, signature);
    await this.client.putManifest(repo, signatureTag(version), signatureManifestBytes(signature, subject), MANIFEST_MEDIA_TYPE);
  }

  /** Removes a tag (claim or hold); where tags cannot be deleted, a claim gets its withdrawal marker instead. */
  private async withdraw(repo: string, tag: string, cid: string | undefined, manifest: Buffer): Promise<void> {
    try {
      await this.client.deleteManifest(repo, tag);
    } catch (err) {
      if (!(err instanceof StoreError && err.code === "unsupported")) throw err;
      if (cid !== undefined) await this.client.putManifest(repo, withdrawalMarker(cid), manifest, MANIFEST_MEDIA_TYPE);
    }
  }

  private beingWritten(spec: string): AssetError {
    return new AssetError(`${spec} is being published to ${this.url} by another run; nothing was changed`);
  }
}

/** The blobs a file is stored as: its parts, or itself. */
function blobsOf(layer: LayerFile): BlobPart[] {
  return layer.parts ?? [{ digest: layer.digest, size: layer.size, offset: 0 }];
}

function unpublished(version: string, digest: string): PublishOutcome {
  return { version, digest, published: false, uploaded: { files: 0, bytes: 0 }, copied: { files: 0, bytes: 0 } };
}
