// The S3 store (AWS S3, MinIO and other S3-compatible servers): `s3://bucket/prefix[?endpoint=URL][&region=R]`.
// Credentials and region come from the SDK's default chain (env, shared config/profile, SSO, web identity for
// GitHub OIDC, instance roles); the region defaults to us-east-1. Conditional writes use If-None-Match: * and
// If-Match: <etag> on PutObject and CompleteMultipartUpload. File bodies are streamed from disk: small ones in one
// PutObject, large ones as a multipart upload whose parts are streamed from file ranges (hand-signed PUTs where the
// store wants no checksums: signed.ts), with a bounded number of parts in flight across every file of the store, so
// memory stays small whatever the sizes. Retries belong to the store layers (the SDK's are off: maxAttempts 1); this
// file classifies the SDK's errors and keeps the protocol code.
import { createHash } from "node:crypto";
import { closeSync, openSync, readSync } from "node:fs";
import type { Readable } from "node:stream";
import type { CompletedPart, S3Client, S3ClientConfig } from "@aws-sdk/client-s3";
import { UsageError } from "../../base/errors.ts";
import { retrying } from "../layers/retry.ts";
import { abortOption, operationSignal } from "../layers/timeout.ts";
import { Limiter } from "../limiter.ts";
import { redactUri } from "../redact.ts";
import { SignedRequests, sdkSigningSetup, staticSigningSetup, type SigningSetup } from "./signed.ts";
import {
  StoreError,
  notFound,
  readDocumentBody,
  sourceOf,
  type Backend,
  type Body,
  type ByteRange,
  type Condition,
  type IncompleteUpload,
  type IncompleteUploads,
  type ListOptions,
  type ObjectSource,
  type SourceExpectation,
  type Store,
  type StoredObject,
  type WriteAttempt,
} from "../store.ts";
import type { Tuning } from "../tuning.ts";
import { parseEndpoint, parseLocation } from "../location.ts";

const MiB = 1024 * 1024;
/** File bodies from this size on are uploaded in parts. */
export const MULTIPART_THRESHOLD = 16 * MiB;
const MAX_PARTS = 10_000;
/** The largest object CopyObject copies in one request; larger ones are copied part by part (UploadPartCopy). */
const MAX_COPY_OBJECT = 5 * 1024 * MiB;
const COPY_PART_SIZE = 512 * MiB;
const DEFAULT_REGION = "us-east-1";
/** Bodies up to this size are read whole into memory and sent in one hand-signed PUT (ASSETKIT_CONCURRENCY of them at most). */
const SIGNED_PUT_MAX_BYTES = 1024 * 1024;

export interface S3StoreOptions {
  /** Environment to read instead of process.env (tests): AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN,
   * AWS_REGION, AWS_ENDPOINT_URL(_S3), S3_ENDPOINT. Without it the SDK's default chain reads process.env itself. */
  env?: Record<string, string | undefined>;
  /** Part size, parts in flight, and the time budgets (the socket idle timeout, the parts' retries). */
  tuning: Tuning;
  /** Explicit credentials (tests); production uses the SDK's default provider chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/**
 * Opens `s3://bucket/prefix`; `?endpoint=` names an S3-compatible server, `?region=` overrides the region,
 * `?profile=` takes this store's credentials from a profile of the shared AWS config (two stores, two roles).
 */
export function openS3Store(uri: URL, options: S3StoreOptions): Backend {
  return new S3Store(uri, options);
}

type Status = "written" | "refused";

interface Sdk {
  api: typeof import("./sdk.ts");
  client: S3Client;
}

export class S3Store implements Backend, IncompleteUploads {
  readonly url: string;
  readonly writable = true;
  readonly listable = true;
  readonly bucket: string;
  /** "" or the key prefix ending in "/". */
  readonly prefix: string;
  /** The SDK's client, made when a request first needs it (sdk.ts says why). */
  private sdkClient: Promise<Sdk> | undefined;
  private readonly sdkConfig: S3ClientConfig;
  /** The fast paths of openRead and small writes: hand-signed requests outside the SDK (see signed.ts). */
  private readonly signed: SignedRequests;
  /** Where requests go, for messages: the custom endpoint or "AWS S3". */
  private readonly where: string;
  /** `?profile=`: this store's credentials come from that shared-config profile, whatever the environment says. */
  private readonly profile: string | undefined;
  private readonly credentials: string[];
  private readonly tuning: Tuning;
  /** Parts (uploaded or copied) in flight across every file of this store. */
  private readonly parts: Limiter;
  /** Set once the bucket is known to exist, so a bare 404 to HEAD afterwards means "no such object". */
  private bucketCheck: Promise<void> | undefined;

  constructor(uri: URL, options: S3StoreOptions) {
    const location = parseLocation(uri);
    const rawEndpoint = uri.searchParams.get("endpoint");
    const endpoint = rawEndpoint ? parseEndpoint(rawEndpoint, location.shown) : undefined;
    this.url = location.shown;
    this.bucket = location.bucket;
    if (!this.bucket) throw new UsageError(`bad store URI ${this.url}: no bucket; write the store as s3://BUCKET/prefix`);
    this.prefix = location.prefix ? `${location.prefix}/` : "";
    this.tuning = options.tuning;

    const env = options.env ?? process.env;
    // Endpoint: ?endpoint=, else the SDK's standard AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (the SDK reads them from
    // process.env itself, so we pass them on only when given another env), else modelkit's S3_ENDPOINT.
    const ignoreConfigured = /^true$/i.test(env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS ?? "");
    const sdkEndpoint = ignoreConfigured ? undefined : env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
    let explicit: string | undefined;
    if (endpoint) explicit = rawEndpoint!.replace(/\/+$/, "");
    else if (sdkEndpoint) explicit = options.env ? sdkEndpoint : undefined;
    else explicit = env.S3_ENDPOINT || undefined;
    const custom = Boolean(explicit || sdkEndpoint);
    this.where = custom ? `endpoint ${redactUri(explicit ?? sdkEndpoint!)}` : "AWS S3";

    const envCredentials =
      env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
        ? {
            accessKeyId: env.AWS_ACCESS_KEY_ID,
            secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
            ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
          }
        : undefined;
    // Given another env (tests), its credentials are passed on; process.env's the SDK's chain reads itself.
    const credentials = options.credentials ?? (options.env ? envCredentials : undefined);
    this.credentials = [
      credentials?.accessKeyId,
      credentials?.secretAccessKey,
      credentials?.sessionToken,
      env.AWS_ACCESS_KEY_ID,
      env.AWS_SECRET_ACCESS_KEY,
      env.AWS_SESSION_TOKEN,
    ].filter((s): s is string => Boolean(s && s.length >= 4));

    this.profile = uri.searchParams.get("profile") || undefined;
    const region = uri.searchParams.get("region") || (options.env ? options.env.AWS_REGION || options.env.AWS_DEFAULT_REGION : undefined);
    const config: S3ClientConfig = {
      region: region || defaultRegion(),
      maxAttempts: 1, // the retry layer's
      // A request (or a body being read) that moves no byte for the idle timeout fails, uploads included.
      requestHandler: { connectionTimeout: this.tuning.idleTimeoutMs, socketTimeout: this.tuning.idleTimeoutMs },
      followRegionRedirects: true,
      logger: QUIET_LOGGER,
      ...(explicit ? { endpoint: explicit } : {}),
      ...(credentials && !this.profile ? { credentials } : {}),
      ...(this.profile ? { profile: this.profile } : {}),
      // S3-compatible servers: path-style URLs (no bucket DNS names) and no default CRC32 checksums (FACTS).
      ...(custom ? { forcePathStyle: true, requestChecksumCalculation: "WHEN_REQUIRED", responseChecksumValidation: "WHEN_REQUIRED" } : {}),
    };
    this.sdkConfig = config;
    // Part bodies are file streams, which SigV4 sends as UNSIGNED-PAYLOAD: no second sha256 of what the
    // publisher hashed already (a Buffer body would be hashed in full for the signature).
    this.parts = new Limiter(this.tuning.concurrency);

    // The hand-signed requests sign without the SDK when everything they need is given here as the SDK would take
    // it: a custom endpoint (path-style, no FIPS or dual-stack rules), the region, and credentials that are explicit
    // or first in the SDK's chain (the environment's, unless a profile is named); otherwise they ask the SDK.
    const signingEndpoint = explicit ?? sdkEndpoint;
    const signingRegion = region || (options.env ? undefined : env.AWS_REGION);
    const signingCredentials = this.profile ? undefined : (credentials ?? (env.AWS_PROFILE ? undefined : envCredentials));
    const routed = [env.AWS_USE_FIPS_ENDPOINT, env.AWS_USE_DUALSTACK_ENDPOINT].some((v) => /^true$/i.test(v ?? ""));
    const setup: () => Promise<SigningSetup> =
      signingEndpoint && signingRegion && signingCredentials && !routed
        ? async () => staticSigningSetup(signingEndpoint, this.bucket, signingRegion, signingCredentials)
        : async () => sdkSigningSetup((await this.sdk()).client, this.bucket, signingEndpoint);
    this.signed = new SignedRequests(setup, {
      // Idle connections kept: at least the requests the transfer engine keeps in flight; 50 is the SDK's default.
      maxIdle: Math.max(50, this.tuning.concurrency),
      connectionTimeoutMs: this.tuning.idleTimeoutMs,
      socketTimeoutMs: this.tuning.idleTimeoutMs,
    });
  }

  /** The SDK and its client, loaded and made on first use. */
  private sdk(): Promise<Sdk> {
    return (this.sdkClient ??= import("./sdk.ts").then((api) => ({ api, client: new api.S3Client(this.sdkConfig) })));
  }

  /** Whether this store has loaded the SDK: a fetch from a custom endpoint with credentials in the environment does not. */
  get sdkLoaded(): boolean {
    return this.sdkClient !== undefined;
  }

  private keyOf(key: string): string {
    return this.prefix + key;
  }

  async head(key: string): Promise<StoredObject | undefined> {
    // Hand-signed first, as openRead; any answer but 200 and 404 is asked again through the SDK, which names it.
    const fast = await this.signed.head(this.keyOf(key), operationSignal());
    if (fast) return { key, ...fast };
    if (fast === null) return this.absent();
    const { client, api } = await this.sdk();
    try {
      const out = await client.send(new api.HeadObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key) }), abortOption());
      return { key, size: out.ContentLength ?? 0, etag: out.ETag ?? "" };
    } catch (err) {
      if (isMissingObject(err)) return this.absent();
      throw err;
    }
  }

  /** HEAD has no body: its 404 is the same for a missing bucket and a missing key, so the bucket is looked up once. */
  private async absent(): Promise<undefined> {
    this.bucketCheck ??= this.checkBucket().catch((err: unknown) => {
      this.bucketCheck = undefined;
      throw err;
    });
    await this.bucketCheck;
    return undefined;
  }

  /** Rejects when the bucket does not exist: hand-signed first, else through the SDK's HeadBucket. */
  private async checkBucket(): Promise<void> {
    const exists = await this.signed.bucketExists(operationSignal());
    if (exists === false) throw this.bucketMissing(new Error("HEAD bucket: 404"));
    if (exists) return;
    const { client, api } = await this.sdk();
    try {
      await client.send(new api.HeadBucketCommand({ Bucket: this.bucket }), abortOption());
    } catch (err) {
      if (statusOf(err) === 404) throw this.bucketMissing(err);
      if (statusOf(err) !== 403) throw err; // may read objects without s3:ListBucket: assume it exists
    }
  }

  private bucketMissing(err: unknown): StoreError {
    return new StoreError("not-found", `bucket ${this.bucket} does not exist at ${this.where}; check the bucket name in the store URL, or create the bucket`, {
      cause: err,
    });
  }

  async read(key: string): Promise<{ data: Buffer; etag: string } | undefined> {
    // Hand-signed first, as openRead; a missing object (or any other answer) is asked again through the SDK.
    const fast = await this.signed.read(this.keyOf(key), operationSignal());
    if (fast) return { data: await readDocumentBody(fast.body, fast.length), etag: fast.etag };
    const { client, api } = await this.sdk();
    try {
      const out = await client.send(new api.GetObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key) }), abortOption());
      const data = out.Body ? await readDocumentBody(out.Body as Readable, out.ContentLength) : Buffer.alloc(0);
      return { data, etag: out.ETag ?? "" };
    } catch (err) {
      if (isMissingObject(err)) return undefined;
      throw err;
    }
  }

  async openRead(key: string, range?: ByteRange): Promise<Readable> {
    // The usual answer comes from a hand-signed GET (signed.ts: measured cheaper per request); anything else
    // answer (missing object, denied, throttled) is asked again through the SDK, which names it; a network failure is not.
    const fast = await this.signed.open(this.keyOf(key), range, operationSignal());
    if (fast) return fast;
    const { client, api } = await this.sdk();
    try {
      const out = await client.send(
        new api.GetObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key), ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }),
        abortOption(),
      );
      return out.Body as Readable;
    } catch (err) {
      if (isMissingObject(err)) throw notFound();
      throw err;
    }
  }

  async *list(prefix: string, options?: ListOptions): AsyncIterable<StoredObject> {
    const { client, api } = await this.sdk();
    let token: string | undefined;
    do {
      const page = await client.send(
        new api.ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.prefix + prefix,
          ...(options?.shallow ? { Delimiter: "/" } : {}),
          ...(token ? { ContinuationToken: token } : {}),
        }),
        abortOption(),
      );
      for (const object of page.Contents ?? []) {
        const full = object.Key ?? "";
        // Keys outside the prefix cannot come back; "folder/" markers made by consoles are not objects of ours.
        if (!full.startsWith(this.prefix) || full.endsWith("/")) continue;
        yield {
          key: full.slice(this.prefix.length),
          size: object.Size ?? 0,
          etag: object.ETag ?? "",
          ...(object.LastModified ? { modified: object.LastModified } : {}),
        };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async write(key: string, body: Body, condition?: Condition, attempt?: WriteAttempt): Promise<boolean> {
    const retried = attempt?.retried ?? false;
    const putBuffer = (data: Buffer): Promise<boolean> => this.put(key, data, data.length, condition, retried, async () => md5Etag(data));
    if (!("open" in body) && (Buffer.isBuffer(body) ? body.length : body.size) <= SIGNED_PUT_MAX_BYTES) {
      // The usual small write: one hand-signed PUT (signed.ts); any other answer, a refused condition too, is asked
      // again through the SDK (a second request only then: the usual conditional write, a new blob, is accepted).
      const signedPut = async (data: Buffer): Promise<boolean> =>
        (await this.signed.put(this.keyOf(key), data, operationSignal(), condition)) || putBuffer(data);
      if (Buffer.isBuffer(body)) return signedPut(body);
      const buffer = smallFileBuffers.pop() ?? Buffer.allocUnsafeSlow(SIGNED_PUT_MAX_BYTES);
      try {
        return await signedPut(readSmallFile(body.file, body.size, buffer));
      } finally {
        smallFileBuffers.push(buffer); // the request is over, sent or failed: the bytes are no longer read
      }
    }
    if (Buffer.isBuffer(body)) return putBuffer(body);
    const source = sourceOf(body);
    if (source.size < MULTIPART_THRESHOLD) {
      return this.put(key, await source.open(), source.size, condition, retried, () => sourceMd5Etag(source));
    }
    return this.writeMultipart(key, source, "file" in body ? body.file : undefined, condition, retried);
  }

  async copy(sourceKey: string, destKey: string, expected?: SourceExpectation): Promise<boolean> {
    if (expected && !expected.etag) return false; // S3 proves a source by its ETag only
    return this.serverCopy(this, sourceKey, destKey, expected?.etag);
  }

  /** CopyObject from another bucket (or prefix) behind the same endpoint, with this store's credentials. */
  async copyFrom(source: Store, sourceKey: string, destKey: string, expected?: SourceExpectation): Promise<boolean> {
    if (!(source instanceof S3Store) || source.where !== this.where || source.profile !== this.profile) return false;
    if (expected && !expected.etag) return false; // S3 proves a source by its ETag only
    try {
      return await this.serverCopy(source, sourceKey, destKey, expected?.etag);
    } catch (err) {
      if (this.classify(err).code === "auth") return false; // our credentials may not read the source
      throw err;
    }
  }

  /**
   * CopyObject, or UploadPartCopy over 5 GiB; with `sourceEtag`, every request is conditional on it
   * (CopySourceIfMatch): false, and nothing written, when the source changed or is gone.
   */
  private async serverCopy(from: S3Store, sourceKey: string, destKey: string, sourceEtag?: string): Promise<boolean> {
    const CopySource = encodeURIComponent(`${from.bucket}/${from.keyOf(sourceKey)}`);
    const condition = sourceEtag === undefined ? {} : { CopySourceIfMatch: sourceEtag };
    const { client, api } = await this.sdk();
    try {
      await client.send(new api.CopyObjectCommand({ Bucket: this.bucket, Key: this.keyOf(destKey), CopySource, ...condition }), abortOption());
      return true;
    } catch (err) {
      if (sourceEtag !== undefined && (isMissingObject(err) || isPreconditionFailed(err))) return false;
      if (isMissingObject(err)) throw notFound();
      const source = statusOf(err) === 400 ? await from.head(sourceKey) : undefined;
      if (!source || source.size <= MAX_COPY_OBJECT) throw err;
      if (sourceEtag !== undefined && unquote(source.etag) !== unquote(sourceEtag)) return false;
      return this.copyInParts(CopySource, condition, destKey, source.size);
    }
  }

  /** Objects over 5 GiB: a multipart upload whose parts are ranges of the source, copied by the server. */
  private async copyInParts(CopySource: string, condition: { CopySourceIfMatch?: string }, destKey: string, size: number): Promise<boolean> {
    const Key = this.keyOf(destKey);
    const { client, api } = await this.sdk();
    let uploadId: string | undefined;
    let completed = false;
    try {
      uploadId = (await client.send(new api.CreateMultipartUploadCommand({ Bucket: this.bucket, Key }))).UploadId;
      if (!uploadId) throw new Error("CreateMultipartUpload returned no UploadId");
      const UploadId = uploadId;
      const count = Math.ceil(size / COPY_PART_SIZE);
      const parts = await Promise.all(
        Array.from({ length: count }, (_, index) =>
          this.parts.run(async (): Promise<CompletedPart> => {
            const start = index * COPY_PART_SIZE;
            const end = Math.min(size, start + COPY_PART_SIZE) - 1;
            const out = await this.retryPart(() =>
              client.send(
                new api.UploadPartCopyCommand({
                  Bucket: this.bucket,
                  Key,
                  UploadId,
                  PartNumber: index + 1,
                  CopySource,
                  CopySourceRange: `bytes=${start}-${end}`,
                  ...condition,
                }),
              ),
            );
            if (!out.CopyPartResult?.ETag) throw new Error(`UploadPartCopy ${index + 1} returned no ETag`);
            return { PartNumber: index + 1, ETag: out.CopyPartResult.ETag };
          }),
        ),
      );
      await client.send(new api.CompleteMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId, MultipartUpload: { Parts: parts } }));
      completed = true;
      return true;
    } catch (err) {
      // A part refused by CopySourceIfMatch: the source changed while its parts were copied (the upload is aborted).
      const raw = err instanceof StoreError ? err.cause : err; // as the parts' retries classified it
      if (condition.CopySourceIfMatch !== undefined && (isMissingObject(raw) || isPreconditionFailed(raw))) return false;
      throw err;
    } finally {
      if (uploadId && !completed) {
        await client.send(new api.AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId: uploadId })).catch(() => {});
      }
    }
  }

  async delete(key: string): Promise<void> {
    const { client, api } = await this.sdk();
    try {
      await client.send(new api.DeleteObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key) }), abortOption());
    } catch (err) {
      if (isMissingObject(err)) return;
      throw err;
    }
  }

  /**
   * Multipart uploads never completed under `prefix`, with the bytes of their parts. The whole bucket's list is
   * read and filtered here: MinIO matches ListMultipartUploads' Prefix only as an exact key.
   */
  async *incompleteUploads(prefix: string): AsyncIterable<IncompleteUpload> {
    const { client, api } = await this.sdk();
    let markers: { KeyMarker?: string; UploadIdMarker?: string } = {};
    for (;;) {
      let page;
      try {
        page = await client.send(new api.ListMultipartUploadsCommand({ Bucket: this.bucket, ...markers }));
      } catch (err) {
        throw this.classify(err);
      }
      for (const upload of page.Uploads ?? []) {
        const full = upload.Key ?? "";
        if (!upload.UploadId || !full.startsWith(this.prefix + prefix)) continue;
        const key = full.slice(this.prefix.length);
        yield { key, id: upload.UploadId, started: upload.Initiated ?? new Date(0), size: await this.partBytes(full, upload.UploadId) };
      }
      if (!page.IsTruncated) return;
      markers = { KeyMarker: page.NextKeyMarker, UploadIdMarker: page.NextUploadIdMarker };
    }
  }

  private async partBytes(Key: string, UploadId: string): Promise<number> {
    const { client, api } = await this.sdk();
    let bytes = 0;
    let PartNumberMarker: string | undefined;
    do {
      const page = await client
        .send(new api.ListPartsCommand({ Bucket: this.bucket, Key, UploadId, ...(PartNumberMarker ? { PartNumberMarker } : {}) }))
        .catch((err: unknown) => {
          if (errorName(err) === "NoSuchUpload") return undefined; // completed or aborted meanwhile
          throw this.classify(err);
        });
      for (const part of page?.Parts ?? []) bytes += part.Size ?? 0;
      PartNumberMarker = page?.IsTruncated ? page.NextPartNumberMarker : undefined;
    } while (PartNumberMarker);
    return bytes;
  }

  async abortUpload(upload: IncompleteUpload): Promise<void> {
    const { client, api } = await this.sdk();
    try {
      await client.send(new api.AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.keyOf(upload.key), UploadId: upload.id }));
    } catch (err) {
      if (errorName(err) === "NoSuchUpload") return;
      throw this.classify(err);
    }
  }

  /** One PutObject; a 409 ConditionalRequestConflict (a concurrent conditional write) is temporary: the layer retries. */
  private async put(
    key: string,
    body: Buffer | Readable,
    size: number,
    condition: Condition | undefined,
    retried: boolean,
    expectedEtag: () => Promise<string>,
  ): Promise<boolean> {
    const { client, api } = await this.sdk();
    try {
      await client.send(
        new api.PutObjectCommand({ Bucket: this.bucket, Key: this.keyOf(key), Body: body, ContentLength: size, ...conditionHeaders(condition) }),
        {
          abortSignal: AbortSignal.any([abortOnError(body), ...(operationSignal() ? [operationSignal()!] : [])]),
        },
      );
      this.bucketCheck ??= Promise.resolve(); // a written object shows the bucket exists: a later HEAD's 404 means the key
      return true;
    } catch (err) {
      if (!Buffer.isBuffer(body)) body.destroy();
      const status = await this.conditionOutcome(key, err, condition, retried, expectedEtag);
      if (status) return status === "written";
      throw err;
    }
  }

  /**
   * What a failed conditional write means: "refused" (the condition does not hold), "written" (an earlier attempt
   * whose response was lost did land: the object now holds exactly our bytes), or undefined (a failure).
   */
  private async conditionOutcome(
    key: string,
    err: unknown,
    condition: Condition | undefined,
    retried: boolean,
    expectedEtag: () => Promise<string>,
  ): Promise<Status | undefined> {
    if (!condition) return undefined;
    const refused = isPreconditionFailed(err) || ("ifMatch" in condition && isMissingObject(err));
    if (!refused) return undefined;
    if (retried) {
      const current = await this.head(key).catch(() => undefined);
      if (current && unquote(current.etag) === unquote(await expectedEtag())) return "written";
    }
    return "refused";
  }

  /** `local`: the local file `file` reads, when it is one (its parts are then sent hand-signed where they can be). */
  private async writeMultipart(
    key: string,
    file: ObjectSource,
    local: string | undefined,
    condition: Condition | undefined,
    retried: boolean,
  ): Promise<boolean> {
    // Cheap early refusal before sending gigabytes (not after a try whose outcome we did not see: it may be ours);
    // CompleteMultipartUpload's condition stays the real check.
    if (condition && !retried) {
      const current = await this.head(key);
      if ("ifAbsent" in condition ? current : current?.etag !== condition.ifMatch) return false;
    }
    return (await this.multipartOnce(key, file, local, condition, retried)) === "written";
  }

  private async multipartOnce(
    key: string,
    file: ObjectSource,
    local: string | undefined,
    condition: Condition | undefined,
    retriedWrite: boolean,
  ): Promise<Status> {
    const Key = this.keyOf(key);
    const partSize = Math.max(this.tuning.partSize, Math.ceil(file.size / MAX_PARTS / MiB) * MiB);
    const count = Math.max(1, Math.ceil(file.size / partSize));
    // With the SDK's default checksums (AWS), the upload declares CRC32 and completion lists each part's checksum.
    const { client, api } = await this.sdk();
    const withChecksums = (await client.config.requestChecksumCalculation()) === "WHEN_SUPPORTED";
    let uploadId: string | undefined;
    let completed = false;
    try {
      const created = await client.send(
        new api.CreateMultipartUploadCommand({ Bucket: this.bucket, Key, ...(withChecksums ? { ChecksumAlgorithm: "CRC32" } : {}) }),
        abortOption(),
      );
      uploadId = created.UploadId;
      if (!uploadId) throw new Error("CreateMultipartUpload returned no UploadId");
      const parts = await this.uploadParts(file, local, uploadId, Key, file.size, partSize, count);
      try {
        await client.send(
          new api.CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts },
            ...conditionHeaders(condition),
          }),
          abortOption(),
        );
        completed = true;
        return "written";
      } catch (err) {
        // An upload whose earlier try's completion landed unseen is a new upload now, refused by its condition
        // (412): same file, same part size, so the same multipart etag: compare before calling it a conflict.
        const status = await this.conditionOutcome(key, err, condition, retriedWrite, async () => multipartEtag(parts));
        if (status === "written") completed = true;
        if (status) return status;
        throw err;
      }
    } finally {
      if (uploadId && !completed) {
        // Best effort: an upload left open keeps its parts (and their cost) until a lifecycle rule removes them.
        await client.send(new api.AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId: uploadId })).catch(() => {});
      }
    }
  }

  /**
   * Uploads the parts, each streamed from its range of the source, as the store-wide part pool allows; a part is
   * tried again from the source after a temporary failure (by the layers' policy: the SDK cannot retry a stream);
   * the first failure for good stops all, and is persistent, so the write is not tried again on top.
   */
  private async uploadParts(
    source: ObjectSource,
    local: string | undefined,
    uploadId: string,
    Key: string,
    size: number,
    partSize: number,
    count: number,
  ): Promise<CompletedPart[]> {
    const { client, api } = await this.sdk();
    const abort = new AbortController();
    const uploadPart = async (index: number): Promise<CompletedPart> => {
      const start = index * partSize;
      const length = Math.min(partSize, size - start);
      return this.retryPart(async () => {
        abort.signal.throwIfAborted();
        if (local !== undefined) {
          const etag = await this.signed.uploadPart(Key, uploadId, index + 1, { file: local, start, end: start + length - 1 }, abort.signal);
          if (etag) return { PartNumber: index + 1, ETag: etag };
        }
        let body: Readable | undefined;
        try {
          body = await source.open({ start, end: start + length - 1 });
          const out = await client.send(
            new api.UploadPartCommand({ Bucket: this.bucket, Key, UploadId: uploadId, PartNumber: index + 1, Body: body, ContentLength: length }),
            { abortSignal: AbortSignal.any([abort.signal, abortOnError(body)]) },
          );
          if (!out.ETag) throw new Error(`UploadPart ${index + 1} returned no ETag`);
          return { PartNumber: index + 1, ETag: out.ETag, ...(out.ChecksumCRC32 ? { ChecksumCRC32: out.ChecksumCRC32 } : {}) };
        } finally {
          body?.destroy();
        }
      });
    };
    const stop = (): void => abort.abort();
    operationSignal()?.addEventListener("abort", stop, { once: true });
    try {
      return await Promise.all(Array.from({ length: count }, (_, index) => this.parts.run(() => uploadPart(index))));
    } finally {
      operationSignal()?.removeEventListener("abort", stop);
      abort.abort();
    }
  }

  /** One part of a multipart upload or copy, under the layers' retry policy. */
  private retryPart<T>(send: () => Promise<T>): Promise<T> {
    return retrying(this.tuning, send, (err) => (err instanceof StoreError ? err : this.classify(err)));
  }

  /** What an SDK error is, in one line saying what to do (the layers add the store, operation and key). */
  classify(err: unknown): StoreError {
    if (err instanceof StoreError) return err;
    const name = errorName(err);
    const status = statusOf(err);
    // HEAD errors have no body: the SDK names them "Unknown" (or after the status); the status says more.
    const shownName = name === "Unknown" || name === "UnknownError" || name === String(status) ? "" : name;
    const tag = [shownName, status ? `HTTP ${status}` : ""].filter(Boolean).join(", ");
    let code: StoreError["code"];
    let message: string;
    if (name === "CredentialsProviderError" || /could not load credentials/i.test(messageOf(err))) {
      code = "auth";
      message = `no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a role (GitHub: aws-actions/configure-aws-credentials)`;
    } else if (status === 401 || status === 403 || AUTH_ERRORS.has(name)) {
      code = "auth";
      message = `access denied (${tag}); check the AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the role) and that they may use bucket ${this.bucket}`;
    } else if (name === "NoSuchBucket") {
      return this.bucketMissing(err);
    } else if (isConflict(err)) {
      code = "unavailable";
      message = `concurrent conditional writes conflict (${tag})`;
    } else if (isUnavailable(err)) {
      code = "unavailable";
      const network = networkCode(err);
      message =
        network || !status
          ? `cannot reach ${this.where} (${network || tag || "no answer"}); check the endpoint and the network, then retry`
          : `${this.where} is throttling or failing (${tag}); retry later`;
    } else if (status === 501 || name === "NotImplemented") {
      code = "unsupported";
      message = `the server does not support this request (${tag}): ${oneLine(messageOf(err))}`;
    } else {
      code = "failed";
      message = `${tag ? `${tag}: ` : ""}${oneLine(messageOf(err))}`;
    }
    const temporary = code === "unavailable";
    const retryAfterMs = temporary ? retryAfterOf(err) : undefined;
    return new StoreError(code, message, { cause: err, temporary, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
  }

  secrets(): readonly string[] {
    return this.credentials;
  }
}

const AUTH_ERRORS = new Set([
  "AccessDenied",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "ExpiredToken",
  "InvalidToken",
  "TokenRefreshRequired",
  "AllAccessDisabled",
  "AccountProblem",
  "InvalidClientTokenId",
  "UnrecognizedClientException",
]);
const THROTTLING_ERRORS = new Set(["SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException", "RequestThrottled"]);
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ECONNABORTED",
  "UND_ERR_SOCKET",
]);

const QUIET_LOGGER = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/** The SDK's default region chain (AWS_REGION, the profile's region), then AWS_DEFAULT_REGION, then us-east-1. */
function defaultRegion(): () => Promise<string> {
  let cached: Promise<string> | undefined;
  return () =>
    (cached ??= (async () => {
      const { S3Client } = await import("./sdk.ts");
      const probe = new S3Client({ logger: QUIET_LOGGER });
      try {
        return await probe.config.region();
      } catch {
        return process.env.AWS_DEFAULT_REGION || DEFAULT_REGION; // boto3's and the CLI's variable
      } finally {
        probe.destroy();
      }
    })());
}

/**
 * A signal that aborts the request when its streamed body fails: the SDK pipes a stream body into the request
 * without listening for its errors, so a body that fails half-way (a source refusing wrong bytes) would leave the
 * request waiting for the rest until the socket timeout, with the error uncaught.
 */
function abortOnError(body: Buffer | Readable): AbortSignal {
  const controller = new AbortController();
  if (!Buffer.isBuffer(body)) body.once("error", (err) => controller.abort(err));
  return controller.signal;
}

function conditionHeaders(condition: Condition | undefined): { IfNoneMatch?: string; IfMatch?: string } {
  if (!condition) return {};
  return "ifAbsent" in condition ? { IfNoneMatch: "*" } : { IfMatch: condition.ifMatch };
}

function errorName(err: unknown): string {
  return (err as { name?: string } | undefined)?.name ?? "";
}

function messageOf(err: unknown): string {
  return (err as { message?: string } | undefined)?.message || String(err);
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode;
}

/** A Retry-After header on a throttling answer, in ms. */
function retryAfterOf(err: unknown): number | undefined {
  const value = (err as { $response?: { headers?: Record<string, string | undefined> } } | undefined)?.$response?.headers?.["retry-after"];
  const seconds = value === undefined ? NaN : Number(value);
  return Number.isFinite(seconds) ? seconds * 1000 : undefined;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

function isPreconditionFailed(err: unknown): boolean {
  return errorName(err) === "PreconditionFailed" || statusOf(err) === 412;
}

function isConflict(err: unknown): boolean {
  return errorName(err) === "ConditionalRequestConflict" || statusOf(err) === 409;
}

/** 404 for the object (NoSuchKey, or HEAD's bodiless NotFound), not for the bucket. */
function isMissingObject(err: unknown): boolean {
  const name = errorName(err);
  if (name === "NoSuchBucket") return false;
  return name === "NoSuchKey" || name === "NotFound" || statusOf(err) === 404;
}

function networkCode(err: unknown): string | undefined {
  const seen = new Set<unknown>();
  const visit = (e: unknown): string | undefined => {
    if (!e || typeof e !== "object" || seen.has(e)) return undefined;
    seen.add(e);
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && (NETWORK_CODES.has(code) || /^E[A-Z]+$/.test(code))) return code;
    for (const inner of (e as { errors?: unknown[] }).errors ?? []) {
      const found = visit(inner);
      if (found) return found;
    }
    return visit((e as { cause?: unknown }).cause);
  };
  return visit(err);
}

function isUnavailable(err: unknown): boolean {
  const name = errorName(err);
  const status = statusOf(err);
  if (THROTTLING_ERRORS.has(name) || name === "TimeoutError" || name === "RequestTimeout") return true;
  if (status === 429 || (status !== undefined && status >= 500 && status !== 501)) return true;
  const code = networkCode(err);
  return code !== undefined && NETWORK_CODES.has(code);
}

function unquote(etag: string): string {
  return etag.replace(/^W\//, "").replace(/^"|"$/g, "");
}

/**
 * A small file's bytes in one synchronous read, into `buffer`: the thread pool's round trips (open, stat, read,
 * close, each a hand-off and a wake-up) cost more CPU than reading a page-cached file of a few pages.
 */
function readSmallFile(file: string, size: number, buffer: Buffer): Buffer {
  const fd = openSync(file, "r");
  try {
    const read = readSync(fd, buffer, 0, buffer.length, 0);
    if (read !== size) throw new Error(`${file} is ${read} bytes now, ${size} when publishing started: it changed`);
    return buffer.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}

/**
 * Buffers for small files being written, reused: one per write in flight at most. A fresh buffer per file was
 * garbage the moment it was sent, and publishing 200 × 1 MiB files peaked over 200 MiB before V8 collected it.
 */
const smallFileBuffers: Buffer[] = [];

function md5Etag(data: Buffer): string {
  return `"${createHash("md5").update(data).digest("hex")}"`;
}

async function sourceMd5Etag(source: ObjectSource): Promise<string> {
  const hash = createHash("md5");
  for await (const chunk of await source.open()) hash.update(chunk as Buffer);
  return `"${hash.digest("hex")}"`;
}

/** S3's (and MinIO's) ETag of a completed multipart upload: md5 of the parts' binary md5s, dash, part count. */
function multipartEtag(parts: CompletedPart[]): string {
  const hash = createHash("md5");
  for (const part of parts) hash.update(Buffer.from(unquote(part.ETag ?? ""), "hex"));
  return `"${hash.digest("hex")}-${parts.length}"`;
}
