// Assets in an OCI registry (docs/oci.md): asset `<name>` = repository `<namespace>/<name>`, version = a tag on one
// manifest (artifact.ts), the tag list = the version index. Publishing takes a version by the claim rule of §5.1,
// since registries have no conditional write: claim tag, settle, list, win only when no rival claim is listed.
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { AssetError, UsageError } from "../../base/errors.ts";
import { mapSettling } from "../../base/map-settling.ts";
import type { OciClient } from "../../store/oci/client.ts";
import type { OciLocation } from "../../store/oci/open.ts";
import { readDocumentBody, StoreError, type ByteRange, MAX_DOCUMENT_BYTES } from "../../store/store.ts";
import type { TransferProgress, TransferSettings } from "../../transfer/engine.ts";
import type { AssetRegistry, CopyVersionOutcome, PublishOutcome, PublishRequest, Resolved } from "../asset-registry.ts";
import type { AliasEntry, ChannelMoveOutcome } from "../channels.ts";
import { LATEST } from "../channels.ts";
import { buildMeta, expectedMetaSize, hashedInput, metaSizeProblem, parseMeta, sameContent, type HashingInput, type VersionMeta } from "../manifest.ts";
import { checkAssetName } from "../paths.ts";
import { formatSpec, selectorText, type AssetSpec } from "../spec.ts";
import type { VersionIndex } from "../version-index.ts";
import { detectScheme, sortNewestFirst, SCHEMES, type Scheme, type SchemeName } from "../versioning.ts";
import {
  configBlob,
  DIGEST_ANNOTATION,
  MANIFEST_MEDIA_TYPE,
  MAX_MANIFEST_BYTES,
  manifestBytes,
  manifestSizeBound,
  metaOfConfig,
  parseManifest,
  sha256Digest,
  type ImageManifest,
  type LayerFile,
} from "./artifact.ts";
import { holdTag, isAbandoned, newClaim, readTags, rivalClaims, versionTagProblem, withdrawalMarker, type TagState } from "./tags.ts";

/** A repository path component (distribution spec), for each '/'-segment of an asset name. */
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
/** `<registry>/<namespace>/<name>` may not be longer (distribution's limit). */
const MAX_REPOSITORY_REFERENCE = 255;
/** Claim rounds before a publisher gives up (measured: ≤ 36 rounds for 16 publishers, docs/oci.md §5.3). */
const MAX_ROUNDS = 200;
/** The backoff's exponent stops growing here: waits stay within 64 × (settle + a listing's round trip). */
const MAX_BACKOFF_EXPONENT = 6;

export interface OciLayoutOptions {
  /** The scheme a new asset takes. */
  versioning: SchemeName;
  /** One publisher at a time: no claims, the version tag is written once it is seen absent. */
  unsafePublish?: boolean;
  settings: TransferSettings;
}

/** A version's manifest as read: its digest and content. */
interface StoredManifest {
  digest: string;
  manifest: ImageManifest;
}

export class OciLayout implements AssetRegistry {
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

  /** The version tags, joined: a watcher's poll is one tag listing. */
  async revision(spec: AssetSpec): Promise<string> {
    if (spec.selector.kind === "alias" && spec.selector.alias !== LATEST) throw this.noChannels();
    return (await this.listTags(this.repository(spec.name))).versions.sort().join(",") || "absent";
  }

  async assets(): Promise<string[]> {
    const prefix = `${this.location.namespace}/`;
    const names: string[] = [];
    try {
      for await (const repo of this.client.listRepositories()) if (repo.startsWith(prefix)) names.push(repo.slice(prefix.length));
    } catch (err) {
      if (err instanceof StoreError && (err.code === "not-found" || err.code === "auth" || err.code === "unsupported")) {
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
    const body = await this.client.openBlob(repo, manifest.config.digest);
    const data = await readDocumentBody(body, manifest.config.size);
    if (sha256Digest(data) !== manifest.config.digest) throw new AssetError(`${where} is damaged: its bytes do not have digest ${manifest.config.digest}`);
    return parseMeta(metaOfConfig(data, where), where);
  }

  async signature(): Promise<Buffer | undefined> {
    return undefined; // signatures are not stored on OCI registries yet: every version reads as unsigned
  }

  async resolve(spec: AssetSpec): Promise<Resolved> {
    const { name, version } = await this.resolveVersion(spec);
    return { name, version, meta: await this.meta(name, version) };
  }

  async resolveDigest(spec: AssetSpec): Promise<{ name: string; version: string; digest: string | null }> {
    const { name, version } = await this.resolveVersion(spec);
    return { name, version, digest: await this.digestOf(name, version) };
  }

  /** The asset digest from the version's manifest annotation: one manifest GET, no config read. */
  async digestOf(name: string, version: string): Promise<string | null> {
    return (await this.manifestOf(name, version)).manifest.annotations?.[DIGEST_ANNOTATION] ?? null;
  }

  /** A file's layer blob (a single-file asset's is the one layer); the engine verifies what it reads against the meta. */
  async openFile(name: string, version: string, relPath: string, range?: ByteRange): Promise<Readable> {
    const { manifest } = await this.manifestOf(name, version);
    const layer =
      relPath === "" && manifest.layers.length === 1
        ? manifest.layers[0]
        : manifest.layers.find((l) => l.annotations?.["org.opencontainers.image.title"] === relPath);
    if (!layer) throw new AssetError(`${name}:${version} in ${this.url} has no layer titled ${JSON.stringify(relPath)}`);
    return this.client.openBlob(this.repository(name), layer.digest, range);
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
    if (spec.selector.kind === "alias" && spec.selector.alias !== LATEST) throw this.noChannels();
    const version = index.scheme.pick(spec.selector.kind === "alias" ? { kind: "latest" } : spec.selector, index.versions);
    if (!version) throw new AssetError(`${what}: no matching version in ${this.url} (latest: ${index.versions.slice(0, 5).join(", ")})`);
    return { name: spec.name, version };
  }

  private manifestOf(name: string, version: string): Promise<StoredManifest> {
    const key = `${name}:${version}`;
    let read = this.manifests.get(key);
    if (!read) {
      const repo = this.repository(name);
      read = this.client.getManifest(repo, version).then((got) => {
        if (!got) throw new AssetError(`${name}:${version} does not exist in ${this.url}`);
        return { digest: got.digest, manifest: parseManifest(got.data, `${repo}:${version} in ${this.url}`) };
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
    return { versions, scheme, digests: {}, ...(foreign ? { foreign } : {}) };
  }

  // ── publishing ──

  /**
   * Uploads the files as blobs (those the repository holds already are skipped), then the config and the manifest
   * under a hold tag, then takes a version by the claim rule and commits it with one tag PUT.
   */
  async publish(request: PublishRequest): Promise<PublishOutcome> {
    const { name } = request;
    const repo = this.repository(name);
    const input = "digest" in request.input ? hashedInput(request.input) : request.input;
    if (request.sign) throw new UsageError(`signing is not supported on ${this.url} yet: publish without a signing key`);
    if (input.files.some((f) => f.copyTo)) throw new UsageError(`files copied from another store cannot be published to ${this.url} yet`);
    if (request.version !== undefined) this.checkVersionTag(request.version);
    const metaProblem = metaSizeProblem(expectedMetaSize(input, request), input.files.length, MAX_DOCUMENT_BYTES);
    if (metaProblem) throw new UsageError(`cannot publish ${name}: ${metaProblem}`);
    const bound = manifestSizeBound(
      name,
      input.files.map((f) => f.path),
    );
    if (bound > MAX_MANIFEST_BYTES) throw this.manifestTooLarge(name, input.files.length, bound);

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

    const tally = await this.uploadFiles(repo, input, request.onProgress);
    const prepared = await input.prepared;
    const layers: LayerFile[] = prepared.files.map((f) => ({ path: f.path, size: f.size, digest: `sha256:${f.sha256}` }));
    const meta = buildMeta(prepared, request, new Map(layers.map((l) => [l.path, l.digest])));
    const config = configBlob(name, meta, layers);
    if (!(await this.client.blobExists(repo, sha256Digest(config)))) await this.client.uploadBlob(repo, sha256Digest(config), config);
    const manifest = manifestBytes(name, meta, config, layers, request.source);
    if (manifest.length > MAX_MANIFEST_BYTES) throw this.manifestTooLarge(name, layers.length, manifest.length);

    // Tagged from the start, so it is never an untagged manifest while this publisher lives (gc finds holds).
    const hold = holdTag();
    const digest = await this.client.putManifest(repo, hold, manifest, MANIFEST_MEDIA_TYPE);
    try {
      const version = this.options.unsafePublish
        ? await this.commitUnsafely(repo, name, scheme, request, manifest, digest)
        : await this.claimAndCommit(repo, name, scheme, request, manifest, digest);
      if (version === undefined) return this.alreadyThere(name, request.version!, prepared.digest);
      this.forget(name);
      return { version, digest: prepared.digest, published: true, ...tally };
    } finally {
      // A hold left behind only tags a manifest that exists anyway: it must not hide why the publish ended.
      await this.withdraw(repo, hold, undefined, manifest).catch(() => undefined);
    }
  }

  copyVersion(source: AssetRegistry): Promise<CopyVersionOutcome> {
    throw new UsageError(`promote --to ${this.url} (from ${source.url}) is not supported on OCI registries yet`);
  }

  // ── channels: not on OCI registries yet (docs/oci.md §5.4) ──

  async aliases(): Promise<{ table: Record<string, AliasEntry> }> {
    return { table: {} }; // no channel can have been made here yet
  }

  promote(): Promise<{ previous?: string; changed: boolean }> {
    throw this.noChannels();
  }

  rollback(): Promise<ChannelMoveOutcome> {
    throw this.noChannels();
  }

  private noChannels(): UsageError {
    return new UsageError(`channels are not supported on ${this.url} yet: name a version (name:1.2.3, name:1, name)`);
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

  /** Each file as a blob whose digest is its sha256, once hashed; a blob the repository holds already is not sent. */
  private async uploadFiles(
    repo: string,
    input: HashingInput,
    onProgress?: (progress: TransferProgress) => void,
  ): Promise<Pick<PublishOutcome, "uploaded" | "copied">> {
    const uploaded = { files: 0, bytes: 0 };
    const copied = { files: 0, bytes: 0 };
    const progress: TransferProgress = { bytes: 0, totalBytes: input.size, files: 0, totalFiles: input.files.length };
    await mapSettling(
      input.files,
      async (file) => {
        const digest = `sha256:${(await input.hashes.get(file.path)!).sha256}`;
        const present = await this.client.blobExists(repo, digest);
        if (!present) await this.client.uploadBlob(repo, digest, { file: file.source, size: file.size });
        const tally = present ? copied : uploaded;
        tally.files++;
        tally.bytes += file.size;
        progress.files++;
        progress.bytes += file.size;
        onProgress?.(progress);
      },
      this.options.settings.concurrency,
    );
    return { uploaded, copied };
  }

  /**
   * The claim rule (docs/oci.md §5.1): pick the candidate, wait while a live rival claims it, claim it, wait
   * `settle`, list again; win only when the own claim is listed and no rival claim nor the version tag is. The
   * winning claim stays as the version's receipt; losers withdraw theirs and go again. Undefined: `--version V`
   * was committed by someone else meanwhile (the caller compares digests).
   */
  private async claimAndCommit(
    repo: string,
    name: string,
    scheme: Scheme,
    request: PublishRequest,
    manifest: Buffer,
    digest: string,
  ): Promise<string | undefined> {
    const settle = this.location.settleMs;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const listedAt = Date.now();
      const state = await this.listTags(repo);
      const roundTrip = Date.now() - listedAt;
      const backoff = () => sleep(Math.random() * (settle + roundTrip + 10) * 2 ** Math.min(round, MAX_BACKOFF_EXPONENT));
      if (request.version !== undefined && state.tags.has(request.version)) return undefined;
      const candidate = request.version ?? this.nextFree(state, scheme, request);
      const now = Date.now();
      if (rivalClaims(state, candidate).some((c) => !isAbandoned(c, now))) {
        if (request.version !== undefined) throw this.beingPublished(name, request.version);
        await backoff();
        continue;
      }
      const claim = newClaim(candidate, now);
      await this.client.putManifest(repo, claim.tag, manifest, MANIFEST_MEDIA_TYPE);
      await sleep(settle);
      const after = await this.listTags(repo);
      if (!after.tags.has(claim.tag)) {
        await this.withdraw(repo, claim.tag, claim.cid, manifest);
        throw new AssetError(
          `${this.url}: cannot publish ${name}: the registry did not list tag ${claim.tag} ${settle / 1000} s after writing it; concurrent publishing cannot be made safe on it (raise ?settle= or publish from one job at a time with --unsafe-publish)`,
        );
      }
      if (rivalClaims(after, candidate, claim.cid).length === 0 && !after.tags.has(candidate)) {
        await this.commit(repo, name, candidate, manifest, digest);
        return candidate;
      }
      await this.withdraw(repo, claim.tag, claim.cid, manifest);
      if (request.version !== undefined) {
        if (after.tags.has(request.version)) return undefined;
        throw this.beingPublished(name, request.version);
      }
      await backoff();
    }
    throw new AssetError(`could not claim a version of ${name} in ${this.url} after ${MAX_ROUNDS} rounds: too many concurrent publishers; retry`);
  }

  /** `--unsafe-publish`: the next version whose tag is absent, written without claims (one publisher at a time). */
  private async commitUnsafely(
    repo: string,
    name: string,
    scheme: Scheme,
    request: PublishRequest,
    manifest: Buffer,
    digest: string,
  ): Promise<string | undefined> {
    const state = await this.listTags(repo);
    if (request.version !== undefined && state.tags.has(request.version)) return undefined;
    const version = request.version ?? this.nextFree(state, scheme, request);
    await this.commit(repo, name, version, manifest, digest);
    return version;
  }

  /** The next version of the series after the committed ones, skipping slots whose claims were abandoned. */
  private nextFree(state: TagState, scheme: Scheme, request: PublishRequest): string {
    const committed = state.versions.filter((v) => scheme.isVersion(v));
    const now = Date.now();
    let candidate = scheme.next(committed, request.series, request.bump);
    while (rivalClaims(state, candidate).some((c) => isAbandoned(c, now))) candidate = scheme.after(candidate, request.series, request.bump);
    this.checkVersionTag(candidate);
    return candidate;
  }

  /** Writes tag `version` (absent, checked), then checks it names this manifest now and `settle` later. */
  private async commit(repo: string, name: string, version: string, manifest: Buffer, digest: string): Promise<void> {
    const spec = `${name}:${version}`;
    const before = await this.client.headManifest(repo, version);
    if (before) throw new AssetError(`${spec} appeared in ${this.url} meanwhile (${before.digest}): another publisher or tool wrote it; nothing was committed`);
    await this.client.putManifest(repo, version, manifest, MANIFEST_MEDIA_TYPE);
    for (const wait of [0, this.location.settleMs]) {
      await sleep(wait);
      const now = await this.client.headManifest(repo, version);
      if (now?.digest !== digest) {
        throw new AssetError(
          `${spec} was committed twice in ${this.url}: tag ${version} names ${now?.digest ?? "nothing"}, not this publish's ${digest}; the registry does not list fresh tags within ?settle=: raise it`,
        );
      }
    }
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

  private beingPublished(name: string, version: string): AssetError {
    return new AssetError(`${name}:${version} is being published to ${this.url} by another run; nothing was changed`);
  }
}

function unpublished(version: string, digest: string): PublishOutcome {
  return { version, digest, published: false, uploaded: { files: 0, bytes: 0 }, copied: { files: 0, bytes: 0 } };
}
