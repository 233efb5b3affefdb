// The read-only HTTP(S) store: the store layout served by any static web server (a public bucket's website
// endpoint, a CDN, nginx, Caddy). GET/HEAD only, with byte ranges; it cannot list and cannot write. One fetch() per
// request: retries, timeouts and the stall guard belong to the store layers.
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { operationSignal } from "./layers/timeout.ts";
import { StoreError, notFound, readDocumentBody, type Backend, type ByteRange, type StoredObject } from "./store.ts";

/** Answers worth another try (the retry layer decides how many), honouring their Retry-After. */
const RETRY_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

export function openHttpStore(uri: URL): Backend {
  return new HttpStore(uri);
}

export class HttpStore implements Backend {
  readonly url: string;
  readonly writable = false;
  readonly listable = false;
  private readonly base: URL;
  private readonly authorization: string | undefined;
  private readonly password: string | undefined;
  private readonly query: string[];

  constructor(uri: URL) {
    if (uri.protocol !== "http:" && uri.protocol !== "https:") {
      throw new StoreError("failed", `${uri.protocol}//${uri.host}: not an http(s) URL`);
    }
    const base = new URL(uri.href);
    // Credentials travel in an Authorization header, never in the URL (fetch refuses them there anyway).
    if (base.username || base.password) {
      const user = decodeURIComponent(base.username);
      const pass = decodeURIComponent(base.password);
      this.authorization = "Basic " + Buffer.from(`${user}:${pass}`).toString("base64");
      this.password = pass || undefined;
    }
    this.query = [...base.searchParams.values()];
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
    this.check(res, "HEAD");
    const size = Number(res.headers.get("content-length"));
    const contentType = res.headers.get("content-type");
    return { key, size, etag: etagOf(res.headers) ?? `size:${size}`, ...(contentType ? { contentType } : {}) };
  }

  private async headByRange(key: string): Promise<StoredObject | undefined> {
    const res = await this.request("GET", key, { start: 0, end: 0 });
    try {
      if (isAbsent(res.status)) return undefined;
      if (res.status === 416) return { key, size: 0, etag: etagOf(res.headers) ?? "size:0" }; // empty object
      this.check(res, "GET");
      let size: number;
      if (res.status === 206) {
        const total = /\/(\d+)\s*$/.exec(res.headers.get("content-range") ?? "");
        if (!total) throw new StoreError("failed", "the server sent no object size");
        size = Number(total[1]);
      } else {
        size = (await this.body(res)).length;
      }
      return { key, size, etag: etagOf(res.headers) ?? `size:${size}` };
    } finally {
      await res.body?.cancel().catch(() => {});
    }
  }

  async read(key: string): Promise<{ data: Buffer; etag: string } | undefined> {
    const res = await this.request("GET", key);
    if (isAbsent(res.status) || this.isFolder(res, key)) return undefined;
    this.check(res, "GET");
    const declared = res.headers.get("content-length");
    const data = res.body ? await readDocumentBody(webStream(res.body), declared === null ? undefined : Number(declared)) : Buffer.alloc(0);
    if (declared !== null && Number(declared) !== data.length) {
      throw new StoreError("unavailable", `the response was cut short (${data.length} of ${declared} bytes)`, { temporary: true });
    }
    return { data, etag: etagOf(res.headers) ?? "sha256:" + createHash("sha256").update(data).digest("hex") };
  }

  async openRead(key: string, range?: ByteRange): Promise<Readable> {
    const res = await this.request("GET", key, range);
    if (isAbsent(res.status) || this.isFolder(res, key)) throw notFound();
    this.check(res, "GET");
    if (range) {
      if (res.status !== 206) {
        await res.body?.cancel().catch(() => {});
        throw new StoreError(
          "unsupported",
          `the server ignored a byte-range request (status ${res.status}, not 206): serve the store from a server that supports Range requests`,
        );
      }
      const got = /^bytes\s+(\d+)-(\d+)\//.exec(res.headers.get("content-range") ?? "");
      if (!got || Number(got[1]) !== range.start || Number(got[2]) !== range.end) {
        await res.body?.cancel().catch(() => {});
        throw new StoreError("failed", `the server answered a different range than asked (${res.headers.get("content-range") ?? "none"})`);
      }
    }
    if (!res.body) return Readable.from([]);
    return webStream(res.body);
  }

  async *list(_prefix: string): AsyncIterable<StoredObject> {
    throw new StoreError("unsupported", "an HTTP store cannot list its objects; use the object store's own URI (s3://, gs://, az://, file://) to list");
  }

  async write(): Promise<boolean> {
    throw readOnly();
  }

  async copy(): Promise<boolean> {
    throw readOnly();
  }

  async delete(): Promise<void> {
    throw readOnly();
  }

  private async body(res: Response): Promise<Buffer> {
    if (!res.body) return Buffer.alloc(0);
    const chunks: Buffer[] = [];
    for await (const chunk of webStream(res.body)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /** One request; a failing or throttling answer is a temporary StoreError (the retry layer tries again). */
  private async request(method: "GET" | "HEAD", key: string, range?: ByteRange): Promise<Response> {
    const headers: Record<string, string> = { "accept-encoding": "identity" };
    if (this.authorization) headers.authorization = this.authorization;
    if (range) headers.range = `bytes=${range.start}-${range.end}`;
    const signal = operationSignal();
    const res = await fetch(this.urlOf(key), { method, headers, redirect: "follow", ...(signal ? { signal } : {}) });
    if (RETRY_STATUS.has(res.status)) {
      await res.body?.cancel().catch(() => {});
      const retryAfterMs = retryAfter(res.headers.get("retry-after"));
      throw new StoreError(
        "unavailable",
        `${method} answered ${res.status} ${res.statusText}: the server is failing or throttling; retry later`.replace(" :", ":"),
        {
          temporary: true,
          ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
        },
      );
    }
    return res;
  }

  /** A folder, not an object: the server redirected `key` to `key/` (to list it, or to an index page). */
  private isFolder(res: Response, key: string): boolean {
    if (!res.redirected || !res.url) return false;
    const folder = new URL(res.url).pathname.endsWith("/") && !this.urlOf(key).pathname.endsWith("/");
    if (folder) void res.body?.cancel().catch(() => {});
    return folder;
  }

  private check(res: Response, method: string): void {
    if (res.ok) return;
    void res.body?.cancel().catch(() => {});
    const what = `${method} answered ${res.status} ${res.statusText}`.trimEnd();
    if (res.status === 401 || res.status === 403) {
      throw new StoreError(
        "auth",
        `${what}: access denied (a private bucket, wrong credentials in the URL, or a missing object on a server that hides missing keys behind 403); check the URL and its access rights`,
      );
    }
    throw new StoreError("failed", what);
  }

  /** fetch() failures: the network (refused, reset, unknown host), all temporary. */
  classify(err: unknown): StoreError {
    if (err instanceof StoreError) return err;
    const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
    const reason = cause?.code ?? cause?.message ?? (err as Error)?.message ?? String(err);
    if ((err as Error)?.name === "AbortError") return new StoreError("unavailable", "the request was abandoned", { temporary: true, cause: err });
    return new StoreError("unavailable", `cannot reach the server (${reason}): check the URL, the network and that the server is up`, {
      temporary: true,
      cause: err,
    });
  }

  secrets(): readonly string[] {
    return [...this.query, ...(this.password ? [this.password] : [])];
  }
}

function webStream(body: NonNullable<Response["body"]>): Readable {
  return Readable.fromWeb(body as import("node:stream/web").ReadableStream);
}

function readOnly(): StoreError {
  return new StoreError("read-only", "an HTTP store is read-only; publishing needs a writable store URI (s3://, gs://, az://, file://)");
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

/** A Retry-After header (seconds or an HTTP date) in ms, or undefined without a usable one. */
export function retryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
