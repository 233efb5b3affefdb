// The read-only HTTP(S) store: the store layout served by any static web server (a public bucket's website
// endpoint, a CDN, nginx, Caddy). GET/HEAD only, with byte ranges; it cannot list and cannot write. One request
// (http-client.ts) per call: retries, timeouts and the stall guard belong to the store layers.
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { headerOf, httpRequest, type HttpResponse } from "./http-client.ts";
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
    // Credentials travel in an Authorization header, never in the URL.
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
    if (res.status === 405 || res.status === 501 || (ok(res) && headerOf(res, "content-length") === undefined)) {
      // No usable HEAD (some CDNs, chunked responses): ask for the first byte and read the total size.
      return this.headByRange(key);
    }
    if (this.isAbsent(res) || this.isFolder(res, key)) return undefined;
    this.check(res, "HEAD");
    const size = Number(headerOf(res, "content-length"));
    const contentType = headerOf(res, "content-type");
    return { key, size, etag: etagOf(res) ?? `size:${size}`, ...(contentType ? { contentType } : {}) };
  }

  private async headByRange(key: string): Promise<StoredObject | undefined> {
    const res = await this.request("GET", key, { start: 0, end: 0 });
    try {
      if (this.isAbsent(res)) return undefined;
      if (res.status === 416) return { key, size: 0, etag: etagOf(res) ?? "size:0" }; // empty object
      this.check(res, "GET");
      let size: number;
      if (res.status === 206) {
        const total = /\/(\d+)\s*$/.exec(headerOf(res, "content-range") ?? "");
        if (!total) throw new StoreError("failed", "the server sent no object size");
        size = Number(total[1]);
      } else {
        size = 0; // a server that ignores ranges: the whole body, counted as it passes
        for await (const chunk of res.body) size += (chunk as Buffer).length;
      }
      return { key, size, etag: etagOf(res) ?? `size:${size}` };
    } finally {
      res.body.destroy();
    }
  }

  async read(key: string): Promise<{ data: Buffer; etag: string } | undefined> {
    const res = await this.request("GET", key);
    if (this.isAbsent(res) || this.isFolder(res, key)) return undefined;
    this.check(res, "GET");
    const declared = headerOf(res, "content-length");
    const data = await readDocumentBody(res.body, declared === undefined ? undefined : Number(declared));
    if (declared !== undefined && Number(declared) !== data.length) {
      throw new StoreError("unavailable", `the response was cut short (${data.length} of ${declared} bytes)`, { temporary: true });
    }
    return { data, etag: etagOf(res) ?? "sha256:" + createHash("sha256").update(data).digest("hex") };
  }

  async openRead(key: string, range?: ByteRange): Promise<Readable> {
    const res = await this.request("GET", key, range);
    if (this.isAbsent(res) || this.isFolder(res, key)) throw notFound();
    this.check(res, "GET");
    if (range) {
      if (res.status !== 206) {
        res.body.destroy();
        throw new StoreError(
          "unsupported",
          `the server ignored a byte-range request (status ${res.status}, not 206): serve the store from a server that supports Range requests`,
        );
      }
      const got = /^bytes\s+(\d+)-(\d+)\//.exec(headerOf(res, "content-range") ?? "");
      if (!got || Number(got[1]) !== range.start || Number(got[2]) !== range.end) {
        res.body.destroy();
        throw new StoreError("failed", `the server answered a different range than asked (${headerOf(res, "content-range") ?? "none"})`);
      }
    }
    return res.body;
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

  /** One request; a failing or throttling answer is a temporary StoreError (the retry layer tries again). */
  private async request(method: "GET" | "HEAD", key: string, range?: ByteRange): Promise<HttpResponse> {
    const headers: Record<string, string> = { "accept-encoding": "identity" };
    if (this.authorization) headers.authorization = this.authorization;
    if (range) headers.range = `bytes=${range.start}-${range.end}`;
    const signal = operationSignal();
    const res = await httpRequest(this.urlOf(key), { method, headers, ...(signal ? { signal } : {}) });
    if (RETRY_STATUS.has(res.status)) {
      res.body.destroy();
      const retryAfterMs = retryAfter(headerOf(res, "retry-after"));
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

  /** No object there (its answer's body discarded). */
  private isAbsent(res: HttpResponse): boolean {
    const absent = res.status === 404 || res.status === 410;
    if (absent) res.body.destroy();
    return absent;
  }

  /** A folder, not an object: the server redirected `key` to `key/` (to list it, or to an index page). */
  private isFolder(res: HttpResponse, key: string): boolean {
    if (!res.redirected) return false;
    const folder = res.url.pathname.endsWith("/") && !this.urlOf(key).pathname.endsWith("/");
    if (folder) res.body.destroy();
    return folder;
  }

  private check(res: HttpResponse, method: string): void {
    if (ok(res)) return;
    res.body.destroy();
    const what = `${method} answered ${res.status} ${res.statusText}`.trimEnd();
    if (res.status === 401 || res.status === 403) {
      throw new StoreError(
        "auth",
        `${what}: access denied (a private bucket, wrong credentials in the URL, or a missing object on a server that hides missing keys behind 403); check the URL and its access rights`,
      );
    }
    throw new StoreError("failed", what);
  }

  /** Request failures: the network (refused, reset, unknown host), all temporary. */
  classify(err: unknown): StoreError {
    if (err instanceof StoreError) return err;
    const reason = (err as { code?: string })?.code ?? (err as Error)?.message ?? String(err);
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

function ok(res: HttpResponse): boolean {
  return res.status >= 200 && res.status <= 299;
}

function readOnly(): StoreError {
  return new StoreError("read-only", "an HTTP store is read-only; publishing needs a writable store URI (s3://, gs://, az://, file://)");
}

function encodeSegment(segment: string): string {
  // encodeURIComponent leaves !'()* alone: servers decode them either way, but encode them for exactness.
  return encodeURIComponent(segment).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

function etagOf(res: HttpResponse): string | undefined {
  return headerOf(res, "etag") ?? headerOf(res, "last-modified");
}

/** A Retry-After header (seconds or an HTTP date) in ms, or undefined without a usable one. */
export function retryAfter(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}
