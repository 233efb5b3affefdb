// Google Cloud Storage: gs://bucket/prefix, through @google-cloud/storage.
//
// - Credentials: Application Default Credentials. Against an emulator (STORAGE_EMULATOR_HOST, or an
//   ?endpoint= that is plain http or on this machine) no credentials are used at all.
// - The etag this store exposes IS the object's generation, from head(), read() and list() alike, so
//   `ifMatch` maps to ifGenerationMatch=<generation> and `ifAbsent` to ifGenerationMatch=0.
// - The library's own retries are switched off: it decides per call whether to retry from shared mutable
//   state (storage.retryOptions.autoRetry is flipped during unconditional calls), and a conditional write it
//   retries after a lost response reports 412 for our own write. The retry layer retries instead, and when a
//   conditional write is refused after a try whose outcome we could not see, we read the object back and
//   compare its MD5 with our body before calling it a conflict.
import { createHash } from "node:crypto";
import { PassThrough, Readable, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { IdempotencyStrategy, Storage, type Bucket, type CreateWriteStreamOptions } from "@google-cloud/storage";
import { UsageError } from "../base/errors.ts";
import {
  StoreError,
  notFound,
  readDocumentBody,
  sourceOf,
  type Backend,
  type Body,
  type ByteRange,
  type Condition,
  type ListOptions,
  type SourceExpectation,
  type Store,
  type StoredObject,
  type WriteAttempt,
} from "./store.ts";
import type { TimeBudget } from "./tuning.ts";
import { parseLocation } from "./location.ts";

export interface GcsStoreOptions {
  /** File bodies larger than this use a resumable upload; smaller ones a single request. Default 8 MiB. */
  resumableThreshold?: number;
  /** The idle timeout bounds each request of the library (its own timeout option). */
  tuning: TimeBudget;
}

const RESUMABLE_THRESHOLD = 8 * 1024 * 1024;
const LIST_PAGE_SIZE = 1000;

/** Opens `gs://bucket/prefix[?endpoint=URL]`. */
export function openGcsStore(uri: URL, options: GcsStoreOptions): Backend {
  return new GcsStore(uri, options);
}

interface ObjectResource {
  name?: string;
  size?: string | number;
  generation?: string | number;
  md5Hash?: string;
  updated?: string;
}

export class GcsStore implements Backend {
  readonly url: string;
  readonly writable = true;
  readonly listable = true;
  readonly bucketName: string;
  /** Object-name prefix without leading or trailing slash ("" for the bucket root). */
  readonly prefix: string;
  private readonly endpoint: string | undefined;
  private readonly emulator: boolean;
  private readonly resumableThreshold: number;
  private readonly idleTimeoutMs: number;
  private readonly bucket: Bucket;
  /** Set once the bucket is known to exist, so a 404 afterwards means "no such object". */
  private bucketCheck: Promise<void> | undefined;

  constructor(uri: URL, options: GcsStoreOptions) {
    const location = parseLocation(uri);
    this.resumableThreshold = options.resumableThreshold ?? RESUMABLE_THRESHOLD;
    this.url = location.shown;
    this.bucketName = location.bucket;
    if (!/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/.test(this.bucketName)) {
      throw new UsageError(
        `bad store URI ${this.url}: ${JSON.stringify(this.bucketName)} is not a valid bucket name (write gs://<bucket>/<prefix>, bucket in lower case)`,
      );
    }
    this.prefix = location.prefix;

    const fromUri = uri.searchParams.get("endpoint");
    const fromEnv = process.env.STORAGE_EMULATOR_HOST;
    if (fromUri) {
      this.endpoint = normaliseEndpoint(fromUri, this.url, "?endpoint=");
      this.emulator = isEmulatorEndpoint(this.endpoint);
    } else if (fromEnv) {
      this.endpoint = normaliseEndpoint(fromEnv, this.url, "STORAGE_EMULATOR_HOST");
      this.emulator = true;
    } else {
      this.endpoint = undefined;
      this.emulator = false;
    }

    this.idleTimeoutMs = options.tuning.idleTimeoutMs;
    const storage = storageClient(this.endpoint, this.emulator, this.idleTimeoutMs);
    this.bucket = storage.bucket(this.bucketName);
  }

  private nameOf(key: string): string {
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  async head(key: string): Promise<StoredObject | undefined> {
    const file = this.bucket.file(this.nameOf(key));
    try {
      const [meta] = await file.getMetadata();
      return { key, size: Number(meta.size ?? 0), etag: String(meta.generation) };
    } catch (err) {
      if (statusOf(err) === 404) return this.absent(err);
      throw err;
    }
  }

  async read(key: string): Promise<{ data: Buffer; etag: string } | undefined> {
    const name = this.nameOf(key);
    let opened;
    try {
      opened = await this.openStream(name, { validate: true });
    } catch (err) {
      if (statusOf(err) === 404) return this.absent(err);
      throw err;
    }
    const data = await readDocumentBody(opened.stream);
    if (opened.generation) return { data, etag: opened.generation };
    // No x-goog-generation header (not seen in practice): ask for it, and read that exact generation again.
    const meta = await this.head(key);
    if (!meta) return undefined;
    const again = await this.openStream(name, { generation: meta.etag, validate: true });
    return { data: await readDocumentBody(again.stream), etag: meta.etag };
  }

  async openRead(key: string, range?: ByteRange): Promise<Readable> {
    try {
      return (await this.openStream(this.nameOf(key), range ? { range } : {})).stream;
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      await this.absent(err);
      throw notFound();
    }
  }

  /**
   * Starts a download and resolves once the response headers arrived (so a 404 rejects here); later errors
   * reach the returned stream (the layers classify them).
   * `validate` checks the whole object's CRC32C: worth it for small documents, which have no other check,
   * not for data streams, which the caller verifies by sha256 anyway (the JS CRC32C halves throughput).
   */
  private openStream(name: string, how: { range?: ByteRange; generation?: string; validate?: boolean }): Promise<{ stream: Readable; generation?: string }> {
    const file = how.generation ? this.bucket.file(name, { generation: Number(how.generation) }) : this.bucket.file(name);
    const source = file.createReadStream(
      how.range ? { start: how.range.start, end: how.range.end, validation: false } : { validation: how.validate ? "crc32c" : false },
    );
    const out = new PassThrough();
    return new Promise((resolve, reject) => {
      let opened = false;
      source.once("response", (res: { statusCode?: number; headers?: Record<string, string | string[] | undefined> }) => {
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) return; // the error event follows, with the body as its message
        opened = true;
        const gen = res.headers?.["x-goog-generation"];
        resolve({ stream: out, generation: typeof gen === "string" && gen ? gen : undefined });
      });
      source.on("error", (err) => {
        if (!opened) {
          opened = true; // settle once
          reject(err);
          out.destroy();
          return;
        }
        out.destroy(err);
      });
      out.on("close", () => {
        if (!source.destroyed) source.destroy();
      });
      source.pipe(out);
    });
  }

  async *list(prefix: string, options?: ListOptions): AsyncIterable<StoredObject> {
    const base = this.prefix ? `${this.prefix}/` : "";
    let pageToken: string | undefined;
    do {
      let page: { items?: ObjectResource[]; nextPageToken?: string };
      try {
        const [, , response] = await this.bucket.getFiles({
          prefix: base + prefix,
          maxResults: LIST_PAGE_SIZE,
          autoPaginate: false,
          ...(options?.shallow ? { delimiter: "/" } : {}),
          fields: "items(name,size,generation,updated),nextPageToken",
          ...(pageToken ? { pageToken } : {}),
        });
        page = (response ?? {}) as typeof page;
      } catch (err) {
        if (statusOf(err) === 404) throw this.bucketMissing(err);
        throw err;
      }
      for (const item of page.items ?? []) {
        const name = item.name ?? "";
        if (!name.startsWith(base) || name.endsWith("/")) continue; // folder placeholders are not objects
        const key = name.slice(base.length);
        if (key) yield { key, size: Number(item.size ?? 0), etag: String(item.generation), ...(item.updated ? { modified: new Date(item.updated) } : {}) };
      }
      pageToken = page.nextPageToken || undefined;
    } while (pageToken);
  }

  async write(key: string, body: Body, condition?: Condition, attempt?: WriteAttempt): Promise<boolean> {
    const name = this.nameOf(key);
    let generationMatch: number | undefined;
    if (condition && "ifAbsent" in condition) generationMatch = 0;
    else if (condition) {
      if (!/^[1-9][0-9]*$/.test(condition.ifMatch)) return false; // not a generation: cannot be current
      generationMatch = Number(condition.ifMatch);
    }
    try {
      await this.upload(name, body, generationMatch);
      return true;
    } catch (err) {
      const status = statusOf(err);
      // Refused: by another writer, or by our own earlier try whose response was lost.
      if (status === 412 && generationMatch !== undefined) return attempt?.retried ? await this.holdsBody(name, body) : false;
      if (status === 404) throw this.bucketMissing(err);
      throw err;
    }
  }

  /** One upload attempt; resolves when the object is committed and its MD5 checked. */
  private async upload(name: string, body: Body, generationMatch: number | undefined): Promise<void> {
    const file = this.bucket.file(name);
    const isBuffer = Buffer.isBuffer(body);
    const size = isBuffer ? body.length : body.size;
    const md5 = createHash("md5");
    const options: CreateWriteStreamOptions = {
      // Not for another store's stream: a resumable upload whose source fails leaves its request open (the
      // library aborts it only on its own errors), keeping the process alive; a single request ends with it.
      resumable: !isBuffer && !("open" in body) && size > this.resumableThreshold,
      validation: false, // we check MD5 ourselves: on a mismatch the library would delete the object unconditionally
      metadata: isBuffer ? { md5Hash: createHash("md5").update(body).digest("base64") } : {},
      // A single-request upload gets its time to send the body (at 64 KiB/s at least) on top of the time to answer.
      timeout: this.idleTimeoutMs + Math.ceil(size / 65_536) * 1000,
      ...(generationMatch !== undefined ? { preconditionOpts: { ifGenerationMatch: generationMatch } } : {}),
    };
    const sink = file.createWriteStream(options);
    const hashing = new Transform({
      transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
        md5.update(chunk);
        done(null, chunk);
      },
    });
    const source = isBuffer ? Readable.from([body]) : await sourceOf(body).open();
    await pipeline(source, hashing, sink);
    const meta = file.metadata as ObjectResource;
    const ours = md5.digest("base64");
    if (meta.md5Hash && meta.md5Hash !== ours) {
      // Corrupted on the way: remove exactly the generation we just wrote, nothing newer.
      await file.delete({ ifGenerationMatch: Number(meta.generation) }).catch(() => undefined);
      throw new StoreError("unavailable", "arrived corrupted (MD5 mismatch) and was removed", { temporary: true });
    }
  }

  /** After a refused conditional write that may follow our own applied-but-unacknowledged write. */
  private async holdsBody(name: string, body: Body): Promise<boolean> {
    let meta: ObjectResource | undefined;
    try {
      meta = (await this.bucket.file(name).getMetadata())[0] as ObjectResource;
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
    }
    if (!meta?.md5Hash) return false;
    const md5 = createHash("md5");
    if (Buffer.isBuffer(body)) md5.update(body);
    else for await (const chunk of await sourceOf(body).open()) md5.update(chunk as Buffer);
    return md5.digest("base64") === meta.md5Hash;
  }

  /**
   * The rewrite API, which the library repeats with its rewrite token until objects of any size are done. With
   * `expected`, the rewrite copies exactly the generation `expected.etag` names (sourceGeneration, kept on every
   * repeat): false when that generation is gone (the object was replaced, on a bucket that keeps no old ones).
   */
  async copy(sourceKey: string, destKey: string, expected?: SourceExpectation): Promise<boolean> {
    return this.rewriteProven(this, sourceKey, destKey, expected);
  }

  /** A rewrite from another bucket (or prefix) behind the same endpoint, with the source store's credentials. */
  async copyFrom(source: Store, sourceKey: string, destKey: string, expected?: SourceExpectation): Promise<boolean> {
    if (!(source instanceof GcsStore) || source.endpoint !== this.endpoint) return false;
    try {
      return await this.rewriteProven(source, sourceKey, destKey, expected);
    } catch (err) {
      if (this.classify(err).code === "auth") return false; // these credentials cannot do both sides
      throw err;
    }
  }

  /** A rewrite; with `expected`, of exactly the generation its etag names (false when that generation is gone). */
  private rewriteProven(from: GcsStore, sourceKey: string, destKey: string, expected?: SourceExpectation): Promise<boolean> {
    if (!expected) return this.rewrite(from, sourceKey, destKey);
    if (!expected.etag || !/^[1-9][0-9]*$/.test(expected.etag)) return Promise.resolve(false); // GCS proves a source by its generation only
    return this.rewrite(from, sourceKey, destKey, Number(expected.etag));
  }

  private async rewrite(from: GcsStore, sourceKey: string, destKey: string, generation?: number): Promise<boolean> {
    const source = from.bucket.file(from.nameOf(sourceKey), generation === undefined ? {} : { generation });
    try {
      await source.copy(this.bucket.file(this.nameOf(destKey)));
      return true;
    } catch (err) {
      if (statusOf(err) !== 404) throw err;
      await from.absent(err);
      if (generation !== undefined) return false;
      throw notFound();
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.bucket.file(this.nameOf(key)).delete();
    } catch (err) {
      if (statusOf(err) === 404) await this.absent(err);
      else throw err;
    }
  }

  // ---- missing objects vs. a missing bucket ----

  /**
   * An object op got 404: the object is absent, unless the bucket is. GCS says which in the message;
   * fake-gcs-server does not, so the bucket is looked up once (then remembered while it exists).
   */
  private async absent(err: unknown): Promise<undefined> {
    if (/bucket does not exist/i.test(messageOf(err))) throw this.bucketMissing(err);
    this.bucketCheck ??= this.checkBucket().catch((e: unknown) => {
      this.bucketCheck = undefined;
      throw e;
    });
    await this.bucketCheck;
    return undefined;
  }

  private async checkBucket(): Promise<void> {
    try {
      await this.bucket.getMetadata();
    } catch (err) {
      const status = statusOf(err);
      if (status === 404) throw this.bucketMissing(err);
      if (status !== 401 && status !== 403) throw err; // may read objects without storage.buckets.get: assume it exists
    }
  }

  private bucketMissing(err: unknown): StoreError {
    return new StoreError(
      "not-found",
      `bucket ${this.bucketName} does not exist${this.endpoint ? ` at ${this.endpoint}` : ""}: create it or fix the store URL`,
      { cause: err },
    );
  }

  // ---- errors ----

  /** What a library error is, in one line saying what to do (the layers add the store, operation and key). */
  classify(err: unknown): StoreError {
    if (err instanceof StoreError) return err;
    const status = statusOf(err);
    const reason = oneLine(messageOf(err));
    const where = this.endpoint ?? "storage.googleapis.com";
    if (isMissingCredentials(err)) {
      return new StoreError(
        "auth",
        "no Google Cloud credentials found: run 'gcloud auth application-default login', set GOOGLE_APPLICATION_CREDENTIALS to a key file, or use workload identity",
        { cause: err },
      );
    }
    if (status === 401 || isRejectedCredentials(err)) {
      return new StoreError(
        "auth",
        "the Google Cloud credentials were rejected: refresh them ('gcloud auth application-default login') or check GOOGLE_APPLICATION_CREDENTIALS",
        { cause: err },
      );
    }
    if (status === 403) {
      return new StoreError(
        "auth",
        `permission denied on bucket ${this.bucketName}: grant the credentials' principal roles/storage.objectAdmin (or objectViewer to read) on it`,
        { cause: err },
      );
    }
    if (status === 429) {
      return new StoreError("unavailable", `rate limited by ${where} (HTTP 429): retry later or lower the parallelism`, {
        cause: err,
        temporary: true,
        ...retryAfterOf(err),
      });
    }
    if (isTemporary(err)) {
      return new StoreError("unavailable", `${where} unavailable (${status ? `HTTP ${status}` : reason}): check the network and the endpoint, then retry`, {
        cause: err,
        temporary: true,
        ...retryAfterOf(err),
      });
    }
    return new StoreError("failed", `${status ? `HTTP ${status}: ` : ""}${reason}`, { cause: err });
  }

  secrets(): readonly string[] {
    return [];
  }
}

// ---- helpers ----

function normaliseEndpoint(value: string, url: string, source: string): string {
  let text = value.trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    // host:port, as emulator conventions write it (the Go and Python clients assume http then).
    const host = text.split("/")[0]!.replace(/:\d+$/, "");
    text = `${isLoopback(host) || source === "STORAGE_EMULATOR_HOST" ? "http" : "https"}://${text}`;
  }
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw new UsageError(`bad store URI ${url}: ${source} ${JSON.stringify(value)} is not a URL: write e.g. http://127.0.0.1:4443`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new UsageError(`bad store URI ${url}: ${source} must be an http(s) URL, got ${parsed.protocol}`);
  }
  parsed.username = "";
  parsed.password = "";
  // The library appends /storage/v1 and /upload/storage/v1 itself.
  const path = parsed.pathname.replace(/\/+$/, "").replace(/\/storage\/v1$/, "");
  return `${parsed.protocol}//${parsed.host}${path}`;
}

function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h.endsWith(".localhost") || h === "::1" || /^127\./.test(h);
}

function isEmulatorEndpoint(endpoint: string): boolean {
  const u = new URL(endpoint);
  return u.protocol === "http:" || isLoopback(u.hostname);
}

// One client per configuration, so stores over the same endpoint share credentials and connections.
const clients = new Map<string, Storage>();

function storageClient(endpoint: string | undefined, emulator: boolean, timeout: number): Storage {
  const id = JSON.stringify([endpoint, emulator, timeout]);
  let client = clients.get(id);
  if (!client) {
    client = new Storage({
      ...(endpoint ? { apiEndpoint: endpoint } : {}),
      ...(emulator ? { projectId: "test" } : {}),
      // A custom https endpoint that is not an emulator (private service connect, a proxy) needs real auth.
      useAuthWithCustomEndpoint: !emulator,
      // Each request: no answer (or, uploading, no progress) for the idle timeout fails it.
      timeout,
      // Retries are the retry layer's (see the top of this file).
      retryOptions: { autoRetry: false, idempotencyStrategy: IdempotencyStrategy.RetryNever },
    });
    // The library reads STORAGE_EMULATOR_HOST itself and mishandles it: JSON API calls go to the raw value,
    // without /storage/v1 (404 on fake-gcs-server), or nowhere without a scheme. The endpoint is resolved by now.
    if (endpoint) client.baseUrl = `${endpoint}/storage/v1`;
    clients.set(id, client);
  }
  return client;
}

/** HTTP status of a library error: ApiError.code (number), GaxiosError.response.status, or a status field. */
function statusOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; status?: unknown; response?: { status?: unknown } } | undefined;
  if (typeof e?.code === "number") return e.code;
  if (typeof e?.response?.status === "number") return e.response.status;
  if (typeof e?.status === "number") return e.status;
  if (typeof e?.code === "string" && /^\d{3}$/.test(e.code)) return Number(e.code);
  return undefined;
}

function codeOf(err: unknown): string {
  const e = err as { code?: unknown; errno?: unknown; type?: unknown; cause?: { code?: unknown } } | undefined;
  if (typeof e?.code === "string") return e.code.toUpperCase();
  if (typeof e?.cause?.code === "string") return e.cause.code.toUpperCase();
  if (e?.type === "request-timeout") return "ETIMEDOUT";
  return "";
}

const TEMPORARY_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const NETWORK_FAILURES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "ECONNRESET",
  "ETIMEDOUT",
  "ESOCKETTIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "ECONNABORTED",
  "ERR_STREAM_PREMATURE_CLOSE",
  "UND_ERR_SOCKET",
]);

/** Whether a failure is worth another try: throttling, 5xx, timeouts, and the network. */
function isTemporary(err: unknown): boolean {
  const status = statusOf(err);
  if (status !== undefined) return TEMPORARY_STATUS.has(status);
  if (NETWORK_FAILURES.has(codeOf(err))) return true;
  return /socket hang up|network timeout|timed out|premature close|connection closure|aborted/i.test(messageOf(err));
}

function retryAfterOf(err: unknown): { retryAfterMs?: number } {
  const headers = (err as { response?: { headers?: Record<string, string> | { get?: (name: string) => string | null } } })?.response?.headers;
  const value = typeof headers?.get === "function" ? headers.get("retry-after") : (headers as Record<string, string> | undefined)?.["retry-after"];
  const seconds = Number(value);
  return value && Number.isFinite(seconds) ? { retryAfterMs: seconds * 1000 } : {};
}

function isMissingCredentials(err: unknown): boolean {
  return /could not load the default credentials|unable to detect a project id/i.test(messageOf(err));
}

function isRejectedCredentials(err: unknown): boolean {
  return /invalid_grant|invalid_client|unauthorized_client|invalid jwt/i.test(messageOf(err));
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err && typeof (err as { message?: unknown }).message === "string") return (err as { message: string }).message;
  return String(err);
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > 240 ? `${flat.slice(0, 237)}...` : flat || "unknown error";
}
