// Google Cloud Storage: gs://bucket/prefix, through @google-cloud/storage.
//
// - Credentials: Application Default Credentials. Against an emulator (STORAGE_EMULATOR_HOST, or an
//   ?endpoint= that is plain http or on this machine) no credentials are used at all.
// - The etag this store exposes IS the object's generation, from head(), read() and list() alike, so
//   `ifMatch` maps to ifGenerationMatch=<generation> and `ifAbsent` to ifGenerationMatch=0.
// - The library's own retries are switched off: it decides per call whether to retry from shared mutable
//   state (storage.retryOptions.autoRetry is flipped during unconditional calls), and a conditional write it
//   retries after a lost response reports 412 for our own write. We retry here, with a bounded budget, and
//   when a conditional write is refused after an attempt whose outcome we could not see, we read the object
//   back and compare its MD5 with our body before calling it a conflict.
import { createHash } from "node:crypto";
import { PassThrough, Readable, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { IdempotencyStrategy, Storage, type Bucket, type CreateWriteStreamOptions } from "@google-cloud/storage";
import { StoreError, notFound, readDocumentBody, sourceOf, type Body, type ByteRange, type Condition, type Store, type StoredObject } from "./store.ts";

export interface GcsStoreOptions {
  /** Retries after a transient failure (5xx, 408, 429, reset, timeout). Default 5. */
  retries?: number;
  /** Retries after a failure to connect at all (refused, unknown host). Default 2. */
  connectRetries?: number;
  /** First backoff delay; doubles each retry, with jitter, up to 8 s. Default 250 ms. */
  retryDelayMs?: number;
  /** Time allowed for a request to get its response headers. Default 60 s. */
  requestTimeoutMs?: number;
  /** An upload making no progress for this long is abandoned (and retried). Default 60 s. */
  idleTimeoutMs?: number;
  /** File bodies larger than this use a resumable upload; smaller ones a single request. Default 8 MiB. */
  resumableThreshold?: number;
}

const DEFAULTS: Required<GcsStoreOptions> = {
  retries: 5,
  connectRetries: 2,
  retryDelayMs: 250,
  requestTimeoutMs: 60_000,
  idleTimeoutMs: 60_000,
  resumableThreshold: 8 * 1024 * 1024,
};
const MAX_RETRY_DELAY_MS = 8_000;
const LIST_PAGE_SIZE = 1000;

/** Opens `gs://bucket/prefix[?endpoint=URL]`. */
export function openGcsStore(uri: URL, options?: GcsStoreOptions): Store {
  return new GcsStore(uri, options);
}

interface ObjectResource {
  name?: string;
  size?: string | number;
  generation?: string | number;
  md5Hash?: string;
  updated?: string;
}

export class GcsStore implements Store {
  readonly url: string;
  readonly writable = true;
  readonly listable = true;
  readonly bucketName: string;
  /** Object-name prefix without leading or trailing slash ("" for the bucket root). */
  readonly prefix: string;
  private readonly endpoint: string | undefined;
  private readonly emulator: boolean;
  private readonly options: Required<GcsStoreOptions>;
  private readonly bucket: Bucket;
  /** Set once the bucket is known to exist, so a 404 afterwards means "no such object". */
  private bucketCheck: Promise<void> | undefined;

  constructor(uri: URL, options?: GcsStoreOptions) {
    if (uri.protocol !== "gs:") throw new StoreError("failed", `${safeHref(uri)}: not a gs:// URL`);
    this.options = { ...DEFAULTS, ...options };
    this.url = safeHref(uri);
    this.bucketName = uri.hostname;
    if (!/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/.test(this.bucketName)) {
      throw new StoreError(
        "failed",
        `${this.url}: ${JSON.stringify(this.bucketName)} is not a valid bucket name (write gs://<bucket>/<prefix>, bucket in lower case)`,
      );
    }
    this.prefix = parsePrefix(uri, this.url);

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

    const storage = storageClient(this.endpoint, this.emulator, this.options.requestTimeoutMs);
    this.bucket = storage.bucket(this.bucketName);
  }

  private nameOf(key: string): string {
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  async head(key: string): Promise<StoredObject | undefined> {
    const file = this.bucket.file(this.nameOf(key));
    return this.retrying(`read ${key}`, async () => {
      try {
        const [meta] = await file.getMetadata();
        return { key, size: Number(meta.size ?? 0), etag: String(meta.generation) };
      } catch (err) {
        if (statusOf(err) === 404) return this.absent(err);
        throw err;
      }
    });
  }

  async read(key: string): Promise<{ data: Buffer; etag: string } | undefined> {
    const name = this.nameOf(key);
    return this.retrying(`read ${key}`, async () => {
      let opened;
      try {
        opened = await this.openStream(name, { raw: true, validate: true });
      } catch (err) {
        if (statusOf(err) === 404) return this.absent(err);
        throw err;
      }
      const data = await readDocumentBody(opened.stream, this.url, key);
      if (opened.generation) return { data, etag: opened.generation };
      // No x-goog-generation header (not seen in practice): ask for it, and read that exact generation again.
      const meta = await this.head(key);
      if (!meta) return undefined;
      const again = await this.openStream(name, { generation: meta.etag, raw: true, validate: true });
      return { data: await readDocumentBody(again.stream, this.url, key), etag: meta.etag };
    });
  }

  async openRead(key: string, range?: ByteRange): Promise<Readable> {
    const name = this.nameOf(key);
    return this.retrying(`read ${key}`, async () => {
      try {
        return (await this.openStream(name, range ? { range } : {})).stream;
      } catch (err) {
        if (statusOf(err) === 404) {
          await this.absent(err);
          throw notFound(this.url, key);
        }
        throw err;
      }
    });
  }

  /**
   * Starts a download and resolves once the response headers arrived (so a 404 rejects here); later errors
   * reach the returned stream as StoreErrors, or raw (`raw`) for callers that retry themselves.
   * `validate` checks the whole object's CRC32C: worth it for small documents, which have no other check,
   * not for data streams, which the caller verifies by sha256 anyway (the JS CRC32C halves throughput).
   */
  private openStream(
    name: string,
    how: { range?: ByteRange; generation?: string; raw?: boolean; validate?: boolean },
  ): Promise<{ stream: Readable; generation?: string }> {
    const key = this.prefix ? name.slice(this.prefix.length + 1) : name;
    const file = how.generation ? this.bucket.file(name, { generation: Number(how.generation) }) : this.bucket.file(name);
    const source = file.createReadStream(
      how.range ? { start: how.range.start, end: how.range.end, validation: false } : { validation: how.validate ? "crc32c" : false },
    );
    const out = new PassThrough();
    // A body that stops arriving while the reader waits for it is abandoned; a reader that is slow itself
    // (the source paused by backpressure) is not a stall.
    const idleMs = this.options.idleTimeoutMs;
    const watchdog = new Watchdog(idleMs, () => {
      if (source.isPaused()) watchdog.poke();
      else source.destroy(idleTimeout(idleMs, "download"));
    });
    source.on("data", () => watchdog.poke());
    source.once("end", () => watchdog.stop());
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
        watchdog.stop();
        if (!opened) {
          opened = true; // settle once
          reject(err);
          out.destroy();
          return;
        }
        out.destroy(how.raw ? err : this.toStoreError(err, `read ${key}`));
      });
      out.on("close", () => {
        watchdog.stop();
        if (!source.destroyed) source.destroy();
      });
      source.pipe(out);
    });
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    const base = this.prefix ? `${this.prefix}/` : "";
    let pageToken: string | undefined;
    do {
      const token = pageToken;
      const [items, next] = await this.retrying(`list ${prefix || "the store"}`, async () => {
        try {
          const [, , response] = await this.bucket.getFiles({
            prefix: base + prefix,
            maxResults: LIST_PAGE_SIZE,
            autoPaginate: false,
            fields: "items(name,size,generation,updated),nextPageToken",
            ...(token ? { pageToken: token } : {}),
          });
          const page = (response ?? {}) as { items?: ObjectResource[]; nextPageToken?: string };
          return [page.items ?? [], page.nextPageToken] as const;
        } catch (err) {
          if (statusOf(err) === 404) throw this.bucketMissing(err);
          throw err;
        }
      });
      for (const item of items) {
        const name = item.name ?? "";
        if (!name.startsWith(base) || name.endsWith("/")) continue; // folder placeholders are not objects
        const key = name.slice(base.length);
        if (key) yield { key, size: Number(item.size ?? 0), etag: String(item.generation), ...(item.updated ? { modified: new Date(item.updated) } : {}) };
      }
      pageToken = next || undefined;
    } while (pageToken);
  }

  async write(key: string, body: Body, condition?: Condition): Promise<boolean> {
    const name = this.nameOf(key);
    let generationMatch: number | undefined;
    if (condition && "ifAbsent" in condition) generationMatch = 0;
    else if (condition) {
      if (!/^[1-9][0-9]*$/.test(condition.ifMatch)) return false; // not a generation: cannot be current
      generationMatch = Number(condition.ifMatch);
    }
    const what = `write ${key}`;
    let uncertain = false; // an earlier attempt may have been applied without our seeing the response
    for (let attempt = 0; ; attempt++) {
      try {
        await this.upload(name, body, generationMatch);
        return true;
      } catch (err) {
        const status = statusOf(err);
        if (status === 412 && generationMatch !== undefined) {
          return uncertain ? await this.holdsBody(name, body, what) : false;
        }
        if (status === 404) throw this.bucketMissing(err);
        const kind = transience(err);
        if (kind && attempt < this.budget(kind)) {
          if (kind === "sent") uncertain = true;
          await this.backoff(attempt);
          continue;
        }
        throw this.toStoreError(err, what, attempt + 1);
      }
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
      resumable: !isBuffer && !("open" in body) && size > this.options.resumableThreshold,
      validation: false, // we check MD5 ourselves: on a mismatch the library would delete the object unconditionally
      metadata: isBuffer ? { md5Hash: createHash("md5").update(body).digest("base64") } : {},
      // A single-request upload gets its time to send the body on top of the time to answer.
      timeout: this.options.requestTimeoutMs + Math.ceil(size / 65_536) * 1000,
      ...(generationMatch !== undefined ? { preconditionOpts: { ifGenerationMatch: generationMatch } } : {}),
    };
    const sink = file.createWriteStream(options);
    const watchdog = new Watchdog(this.options.idleTimeoutMs, () => sink.destroy(idleTimeout(this.options.idleTimeoutMs, "upload")));
    sink.on("progress", () => watchdog.poke());
    const hashing = new Transform({
      transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
        md5.update(chunk);
        watchdog.poke();
        done(null, chunk);
      },
    });
    const source = isBuffer ? Readable.from([body]) : await sourceOf(body).open();
    try {
      await pipeline(source, hashing, sink);
    } finally {
      watchdog.stop();
    }
    const meta = file.metadata as ObjectResource;
    const ours = md5.digest("base64");
    if (meta.md5Hash && meta.md5Hash !== ours) {
      // Corrupted on the way: remove exactly the generation we just wrote, nothing newer.
      await file.delete({ ifGenerationMatch: Number(meta.generation) }).catch(() => undefined);
      throw new StoreError("failed", `${this.url}: ${name} arrived corrupted (MD5 mismatch) and was removed: retry`);
    }
  }

  /** After a refused conditional write that may follow our own applied-but-unacknowledged write. */
  private async holdsBody(name: string, body: Body, what: string): Promise<boolean> {
    const meta = await this.retrying(what, async () => {
      try {
        return (await this.bucket.file(name).getMetadata())[0] as ObjectResource;
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw err;
      }
    });
    if (!meta?.md5Hash) return false;
    const md5 = createHash("md5");
    if (Buffer.isBuffer(body)) md5.update(body);
    else for await (const chunk of await sourceOf(body).open()) md5.update(chunk as Buffer);
    return md5.digest("base64") === meta.md5Hash;
  }

  /** The rewrite API, which the library repeats with its rewrite token until objects of any size are done. */
  async copy(sourceKey: string, destKey: string): Promise<void> {
    await this.rewrite(this, sourceKey, destKey);
  }

  /** A rewrite from another bucket (or prefix) behind the same endpoint, with the source store's credentials. */
  async copyFrom(source: Store, sourceKey: string, destKey: string): Promise<boolean> {
    if (!(source instanceof GcsStore) || source.endpoint !== this.endpoint) return false;
    try {
      await this.rewrite(source, sourceKey, destKey);
      return true;
    } catch (err) {
      if (err instanceof StoreError && err.code === "auth") return false; // these credentials cannot do both sides
      throw err;
    }
  }

  private async rewrite(from: GcsStore, sourceKey: string, destKey: string): Promise<void> {
    const source = from.bucket.file(from.nameOf(sourceKey));
    await this.retrying(`copy ${from === this ? "" : from.url + " "}${sourceKey} to ${destKey}`, async () => {
      try {
        await source.copy(this.bucket.file(this.nameOf(destKey)));
      } catch (err) {
        if (statusOf(err) !== 404) throw err;
        await from.absent(err);
        throw notFound(from.url, sourceKey);
      }
    });
  }

  async delete(key: string): Promise<void> {
    const file = this.bucket.file(this.nameOf(key));
    await this.retrying(`delete ${key}`, async () => {
      try {
        await file.delete();
      } catch (err) {
        if (statusOf(err) === 404) return this.absent(err);
        throw err;
      }
    });
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
    await this.retrying("look up the bucket", async () => {
      try {
        await this.bucket.getMetadata();
      } catch (err) {
        const status = statusOf(err);
        if (status === 404) throw this.bucketMissing(err);
        if (status === 401 || status === 403) return; // may read objects without storage.buckets.get: assume it exists
        throw err;
      }
    });
  }

  private bucketMissing(err: unknown): StoreError {
    return new StoreError(
      "not-found",
      `${this.url}: bucket ${this.bucketName} does not exist${this.endpoint ? ` at ${this.endpoint}` : ""}: create it or fix the store URL`,
      { cause: sanitised(err) },
    );
  }

  // ---- retries and errors ----

  private budget(kind: "sent" | "unsent"): number {
    return kind === "unsent" ? this.options.connectRetries : this.options.retries;
  }

  private async backoff(attempt: number): Promise<void> {
    const ceiling = Math.min(MAX_RETRY_DELAY_MS, this.options.retryDelayMs * 2 ** attempt);
    await sleep(ceiling / 2 + Math.random() * (ceiling / 2));
  }

  /** Runs an idempotent operation with bounded retries; every failure leaves as a StoreError. */
  private async retrying<T>(what: string, op: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await op();
      } catch (err) {
        if (err instanceof StoreError) throw err;
        const kind = transience(err);
        if (kind && attempt < this.budget(kind)) {
          await this.backoff(attempt);
          continue;
        }
        throw this.toStoreError(err, what, attempt + 1);
      }
    }
  }

  private toStoreError(err: unknown, what: string, attempts?: number): StoreError {
    if (err instanceof StoreError) return err;
    const status = statusOf(err);
    const reason = oneLine(messageOf(err));
    const tries = attempts && attempts > 1 ? ` after ${attempts} attempts` : "";
    const cause = sanitised(err);
    const where = this.endpoint ?? "storage.googleapis.com";
    if (isMissingCredentials(err)) {
      return new StoreError(
        "auth",
        `${this.url}: cannot ${what}: no Google Cloud credentials found: run 'gcloud auth application-default login', set GOOGLE_APPLICATION_CREDENTIALS to a key file, or use workload identity`,
        { cause },
      );
    }
    if (status === 401 || isRejectedCredentials(err)) {
      return new StoreError(
        "auth",
        `${this.url}: cannot ${what}: the Google Cloud credentials were rejected: refresh them ('gcloud auth application-default login') or check GOOGLE_APPLICATION_CREDENTIALS`,
        { cause },
      );
    }
    if (status === 403) {
      return new StoreError(
        "auth",
        `${this.url}: cannot ${what}: permission denied on bucket ${this.bucketName}: grant the credentials' principal roles/storage.objectAdmin (or objectViewer to read) on it`,
        { cause },
      );
    }
    if (status === 429) {
      return new StoreError("unavailable", `${this.url}: cannot ${what}: rate limited by ${where} (HTTP 429)${tries}: retry later or lower the parallelism`, { cause });
    }
    if (transience(err)) {
      return new StoreError(
        "unavailable",
        `${this.url}: cannot ${what}: ${where} unavailable (${status ? `HTTP ${status}` : reason})${tries}: check the network and the endpoint, then retry`,
        { cause },
      );
    }
    return new StoreError("failed", `${this.url}: cannot ${what}: ${status ? `HTTP ${status}: ` : ""}${reason}`, { cause });
  }
}

// ---- helpers ----

/** The URI as written, minus any userinfo in it or in the endpoint parameter. */
function safeHref(uri: URL): string {
  return uri.href
    .replace(/^(gs:\/\/)[^@/?#]*@/i, "$1")
    .replace(/([?&]endpoint=[a-z][a-z0-9+.-]*(?::|%3A)(?:\/\/|%2F%2F))[^@&#/]*@/i, "$1");
}

function parsePrefix(uri: URL, url: string): string {
  const raw = uri.pathname.replace(/^\/+/, "").replace(/\/+$/, "");
  if (!raw) return "";
  const segments = raw.split("/").map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  if (segments.some((s) => s === "" || s === "." || s === "..")) {
    throw new StoreError("failed", `${url}: the prefix has an empty, '.' or '..' segment: write gs://<bucket>/<prefix>`);
  }
  return segments.join("/");
}

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
    throw new StoreError("failed", `${url}: ${source} ${JSON.stringify(value)} is not a URL: write e.g. http://127.0.0.1:4443`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new StoreError("failed", `${url}: ${source} must be an http(s) URL, got ${parsed.protocol}`);
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
    // The library reads STORAGE_EMULATOR_HOST itself, and mishandles it: JSON API calls go to the raw value
    // without /storage/v1 (404 on fake-gcs-server), a value without scheme breaks every call, and it wins
    // over apiEndpoint for JSON calls but not for uploads. The endpoint is resolved by now, so hide the
    // variable from the constructor (the only place that reads it for object operations).
    client = withoutEmulatorEnv(
      () =>
        new Storage({
          ...(endpoint ? { apiEndpoint: endpoint } : {}),
          ...(emulator ? { projectId: "test" } : {}),
          // A custom https endpoint that is not an emulator (private service connect, a proxy) needs real auth.
          useAuthWithCustomEndpoint: !emulator,
          timeout,
          // Retries are ours (see the top of this file).
          retryOptions: { autoRetry: false, idempotencyStrategy: IdempotencyStrategy.RetryNever },
        }),
    );
    clients.set(id, client);
  }
  return client;
}

function withoutEmulatorEnv<T>(make: () => T): T {
  const saved = process.env.STORAGE_EMULATOR_HOST;
  if (saved === undefined) return make();
  delete process.env.STORAGE_EMULATOR_HOST;
  try {
    return make();
  } finally {
    process.env.STORAGE_EMULATOR_HOST = saved;
  }
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

const CONNECT_FAILURES = new Set(["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL"]);
const IN_FLIGHT_FAILURES = new Set([
  "ECONNRESET",
  "ETIMEDOUT",
  "ESOCKETTIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "ECONNABORTED",
  "ERR_STREAM_PREMATURE_CLOSE",
  "UND_ERR_SOCKET",
  "ASSETKIT_IDLE_TIMEOUT",
]);

/**
 * Whether a failure is worth retrying: "unsent" when the request never reached the server (retried a
 * little), "sent" when it may have been applied (retried more; a conditional write then double-checks a 412).
 */
function transience(err: unknown): "sent" | "unsent" | undefined {
  const status = statusOf(err);
  if (status !== undefined && [408, 429, 500, 502, 503, 504].includes(status)) return "sent";
  if (status !== undefined) return undefined;
  const code = codeOf(err);
  if (CONNECT_FAILURES.has(code)) return "unsent";
  if (IN_FLIGHT_FAILURES.has(code)) return "sent";
  const message = messageOf(err).toLowerCase();
  if (/socket hang up|network timeout|timed out|premature close|connection closure/.test(message)) return "sent";
  return undefined;
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

/**
 * The library's errors carry the request configuration, Authorization header included: keep only what is
 * safe to print as a StoreError's cause.
 */
function sanitised(err: unknown): Error {
  const out = new Error(oneLine(messageOf(err)));
  out.name = (err as { name?: string })?.name ?? "Error";
  const status = statusOf(err);
  const code = codeOf(err);
  Object.assign(out, status !== undefined ? { status } : {}, code ? { code } : {});
  return out;
}

function idleTimeout(ms: number, what: "upload" | "download"): Error {
  return Object.assign(new Error(`no ${what} progress for ${(ms / 1000).toFixed(1)} s`), { code: "ASSETKIT_IDLE_TIMEOUT" });
}

/** Fires `onIdle` when poke() has not been called for `ms`. */
class Watchdog {
  private readonly timer: NodeJS.Timeout;
  constructor(ms: number, onIdle: () => void) {
    this.timer = setTimeout(onIdle, ms);
  }
  poke(): void {
    this.timer.refresh();
  }
  stop(): void {
    clearTimeout(this.timer);
  }
}
