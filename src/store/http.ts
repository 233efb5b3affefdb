// The read-only HTTP(S) store: the store layout served by any static web server (a public bucket's website
// endpoint, a CDN, nginx, Caddy). GET/HEAD only, with byte ranges; it cannot list and cannot write.
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { stallGuard } from "./stall-guard.ts";
import { StoreError, notFound, readDocumentBody, type ByteRange, type Store, type StoredObject } from "./store.ts";

export interface HttpStoreOptions {
  /** Bound on one try, from sending the request to the response headers (ms). */
  timeoutMs?: number;
  /** Bound on a pause of a response body while its reader is waiting for bytes (ms). */
  stallMs?: number;
  /** Tries per request for network errors, timeouts, 5xx and 429. */
  maxTries?: number;
  /** First backoff delay (ms); doubled each retry, with jitter, capped at maxDelayMs. */
  retryDelayMs?: number;
  maxDelayMs?: number;
}

const DEFAULTS: Required<HttpStoreOptions> = {
  timeoutMs: 30_000,
  stallMs: 60_000,
  maxTries: 4,
  retryDelayMs: 250,
  maxDelayMs: 4_000,
};

const RETRY_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

export function openHttpStore(uri: URL, options?: HttpStoreOptions): Store {
  return new HttpStore(uri, options);
}

export class HttpStore implements Store {
  readonly url: string;
  readonly writable = false;
  readonly listable = false;
  private readonly base: URL;
  private readonly authorization: string | undefined;
  private readonly opts: Required<HttpStoreOptions>;

  constructor(uri: URL, options?: HttpStoreOptions) {
    if (uri.protocol !== "http:" && uri.protocol !== "https:") {
      throw new StoreError("failed", `${uri.protocol}//${uri.host}: not an http(s) URL`);
    }
    this.opts = { ...DEFAULTS, ...options };
    const base = new URL(uri.href);
    // Credentials travel in an Authorization header, never in the URL (fetch refuses them there anyway).
    if (base.username || base.password) {
      const user = decodeURIComponent(base.username);
      const pass = decodeURIComponent(base.password);
      this.authorization = "Basic " + Buffer.from(`${user}:${pass}`).toString("base64");
    }
    base.username = "";
    base.password = "";
    base.hash = "";
    if (!base.pathname.endsWith("/")) base.pathname += "/";
    this.base = base;
    // A query string (a token, a signature) is sent with every request but never printed.
    const shown = new URL(base.href);
    shown.search = "";
    this.url = shown.href.replace(/\/$/, "");
  }

  /** The object's URL: each key segment percent-encoded (space, unicode, '+', '%', '?', '#', '&'...). */
  private urlOf(key: string): URL {
    const url = new URL(this.base.href);
    url.pathname = this.base.pathname + key.split("/").map(encodeSegment).join("/");
    return url;
  }

  async head(key: string): Promise<StoredObject | undefined> {
    const res = await this.request("HEAD", key);
    if (res.status === 405 || res.status === 501 || (res.ok && res.headers.get("content-length") === null)) {
      // No usable HEAD (some CDNs, chunked responses): ask for the first byte and read the total size.
      return this.headByRange(key);
    }
    if (isAbsent(res.status) || this.isFolder(res, key)) return undefined;
    this.check(res, key, "HEAD");
    const size = Number(res.headers.get("content-length"));
    return { key, size, etag: etagOf(res.headers) ?? `size:${size}` };
  }

  private async headByRange(key: string): Promise<StoredObject | undefined> {
    const res = await this.request("GET", key, { start: 0, end: 0 });
    try {
      if (isAbsent(res.status)) return undefined;
      if (res.status === 416) return { key, size: 0, etag: etagOf(res.headers) ?? "size:0" }; // empty object
      this.check(res, key, "GET");
      let size: number;
      if (res.status === 206) {
        const total = /\/(\d+)\s*$/.exec(res.headers.get("content-range") ?? "");
        if (!total) throw new StoreError("failed", `${this.url}: ${key}: the server sent no object size`);
        size = Number(total[1]);
      } else {
        size = (await this.body(res, key)).length;
      }
      return { key, size, etag: etagOf(res.headers) ?? `size:${size}` };
    } finally {
      await res.body?.cancel().catch(() => {});
    }
  }

  async read(key: string): Promise<{ data: Buffer; etag: string } | undefined> {
    const res = await this.request("GET", key);
    if (isAbsent(res.status) || this.isFolder(res, key)) return undefined;
    this.check(res, key, "GET");
    const declared = res.headers.get("content-length");
    const data = res.body ? await readDocumentBody(this.guard(res.body, key), this.url, key, declared === null ? undefined : Number(declared)) : Buffer.alloc(0);
    if (declared !== null && Number(declared) !== data.length) {
      throw new StoreError("unavailable", `${this.url}: ${key}: the response was cut short (${data.length} of ${declared} bytes); retry`);
    }
    return { data, etag: etagOf(res.headers) ?? "sha256:" + createHash("sha256").update(data).digest("hex") };
  }

  async openRead(key: string, range?: ByteRange): Promise<Readable> {
    const res = await this.request("GET", key, range);
    if (isAbsent(res.status) || this.isFolder(res, key)) throw notFound(this.url, key);
    this.check(res, key, "GET");
    if (range) {
      if (res.status !== 206) {
        await res.body?.cancel().catch(() => {});
        throw new StoreError(
          "unsupported",
          `${this.url}: the server ignored a byte-range request for ${key} (status ${res.status}, not 206): serve the store from a server that supports Range requests`,
        );
      }
      const got = /^bytes\s+(\d+)-(\d+)\//.exec(res.headers.get("content-range") ?? "");
      if (!got || Number(got[1]) !== range.start || Number(got[2]) !== range.end) {
        await res.body?.cancel().catch(() => {});
        throw new StoreError("failed", `${this.url}: ${key}: the server answered a different range than asked (${res.headers.get("content-range") ?? "none"})`);
      }
    }
    if (!res.body) return Readable.from([]);
    return this.guard(res.body, key);
  }

  private guard(body: NonNullable<Response["body"]>, key: string): Readable {
    return stallGuard(
      Readable.fromWeb(body as import("node:stream/web").ReadableStream),
      this.opts.stallMs,
      () => new StoreError("unavailable", `${this.url}: reading ${key} stalled for ${this.opts.stallMs / 1000} s; retry`),
      (err) => (err instanceof StoreError ? err : this.networkError(key, err)),
    );
  }

  async *list(_prefix: string): AsyncIterable<StoredObject> {
    throw new StoreError(
      "unsupported",
      `${this.url}: an HTTP store cannot list its objects; use the object store's own URI (s3://, gs://, az://, file://) to list`,
    );
  }

  async write(key: string): Promise<boolean> {
    throw this.readOnly(`write ${key}`);
  }

  async copy(sourceKey: string, destKey: string): Promise<void> {
    throw this.readOnly(`copy ${sourceKey} to ${destKey}`);
  }

  async delete(key: string): Promise<void> {
    throw this.readOnly(`delete ${key}`);
  }

  private readOnly(what: string): StoreError {
    return new StoreError(
      "read-only",
      `${this.url}: cannot ${what}: an HTTP store is read-only; publishing needs a writable store URI (s3://, gs://, az://, file://)`,
    );
  }

  private async body(res: Response, key: string): Promise<Buffer> {
    if (!res.body) return Buffer.alloc(0);
    const chunks: Buffer[] = [];
    for await (const chunk of this.guard(res.body, key)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /** One request with bounded retries (network errors, timeouts, 5xx, 429); returns the last response. */
  private async request(method: "GET" | "HEAD", key: string, range?: ByteRange): Promise<Response> {
    const url = this.urlOf(key);
    const headers: Record<string, string> = { "accept-encoding": "identity" };
    if (this.authorization) headers.authorization = this.authorization;
    if (range) headers.range = `bytes=${range.start}-${range.end}`;
    let lastError: unknown;
    for (let attempt = 1; ; attempt++) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(new TimeoutError()), this.opts.timeoutMs);
      let res: Response | undefined;
      try {
        res = await fetch(url, { method, headers, redirect: "follow", signal: controller.signal });
      } catch (err) {
        lastError = err;
      } finally {
        clearTimeout(timer);
      }
      const last = attempt >= this.opts.maxTries;
      if (res && (!RETRY_STATUS.has(res.status) || last)) {
        if (RETRY_STATUS.has(res.status)) {
          await res.body?.cancel().catch(() => {});
          throw new StoreError(
            "unavailable",
            `${this.url}: ${method} ${key} answered ${res.status} ${res.statusText} after ${attempt} tries: the server is failing or throttling; retry later`,
          );
        }
        return res;
      }
      if (!res && last) throw this.networkError(key, lastError, attempt);
      let delay = Math.min(this.opts.retryDelayMs * 2 ** (attempt - 1), this.opts.maxDelayMs);
      if (res) {
        const after = retryAfterMs(res.headers.get("retry-after"));
        if (after !== undefined) delay = Math.min(Math.max(delay, after), this.opts.maxDelayMs * 4);
        await res.body?.cancel().catch(() => {});
      }
      await sleep(delay * (0.75 + Math.random() * 0.5));
    }
  }

  /** A folder, not an object: the server redirected `key` to `key/` (to list it, or to an index page). */
  private isFolder(res: Response, key: string): boolean {
    if (!res.redirected || !res.url) return false;
    const folder = new URL(res.url).pathname.endsWith("/") && !this.urlOf(key).pathname.endsWith("/");
    if (folder) void res.body?.cancel().catch(() => {});
    return folder;
  }

  private check(res: Response, key: string, method: string): void {
    if (res.ok) return;
    void res.body?.cancel().catch(() => {});
    const what = `${method} ${key} answered ${res.status} ${res.statusText}`.trimEnd();
    if (res.status === 401 || res.status === 403) {
      throw new StoreError(
        "auth",
        `${this.url}: ${what}: access denied (a private bucket, wrong credentials in the URL, or a missing object on a server that hides missing keys behind 403); check the URL and its access rights`,
      );
    }
    throw new StoreError("failed", `${this.url}: ${what}`);
  }

  private networkError(key: string, err: unknown, tries?: number): StoreError {
    const after = tries ? ` after ${tries} tries` : "";
    if (err instanceof TimeoutError || (err as Error)?.name === "TimeoutError") {
      return new StoreError("unavailable", `${this.url}: ${key}: no answer within ${this.opts.timeoutMs / 1000} s${after}: check the server and network`, { cause: err });
    }
    const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
    const reason = cause?.code ?? cause?.message ?? (err as Error)?.message ?? String(err);
    return new StoreError("unavailable", `${this.url}: cannot reach the server for ${key} (${reason})${after}: check the URL, the network and that the server is up`, { cause: err });
  }
}

class TimeoutError extends Error {
  constructor() {
    super("timed out");
    this.name = "TimeoutError";
  }
}

function encodeSegment(segment: string): string {
  // encodeURIComponent leaves !'()* alone: servers decode them either way, but encode them for exactness.
  return encodeURIComponent(segment).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

function isAbsent(status: number): boolean {
  return status === 404 || status === 410;
}

function etagOf(headers: Headers): string | undefined {
  return headers.get("etag") ?? headers.get("last-modified") ?? undefined;
}

function retryAfterMs(value: string | null): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
