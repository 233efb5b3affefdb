// A minimal HTTP/1.1 client for object GETs and small PUTs, over kept-alive net/tls sockets that read into one buffer.
// Written by hand because Node's http client (and undici) parse every 64 KiB socket read and copy the body into a
// new Buffer per read, with stream events around each: reading a 2 GiB object from local MinIO that way cost 1.2 s
// of user CPU, against 0.1 s for a socket reading into a buffer it keeps (the `onread` option); no library reads an
// HTTP body that way. A consumer that copies each chunk at once takes the views directly (chunk-body.ts): fetching
// a 2 GiB file from local MinIO went from ~3.9 s user + ~3.2 s system CPU to ~3.1 + ~1.7. Request bodies are sent
// the same way round: a range of a local file is read into a few buffers used in turn (sendFileRange). Its scope is
// deliberately small: a body in memory or from a file, a response with a Content-Length (anything else but an empty
// answer is handed back without a body, for the caller to ask another way), no redirects, no proxies.
import { closeSync, openSync, readSync } from "node:fs";
import net from "node:net";
import { Readable } from "node:stream";
import type tls from "node:tls";
import { TAKE_CHUNKS, type ChunkTaking, type TakeChunk } from "./chunk-body.ts";

export interface RequestOptions {
  signal?: AbortSignal;
  /** A request body: bytes in memory (a small PUT), or a range of a local file, streamed. */
  body?: Buffer | FileRange;
  /**
   * Hand back an answer that is not 2xx with its body too (when its length is known), for the caller to read the
   * error it names; without this it comes back without one and its connection is closed.
   */
  errorBody?: boolean;
}

/** Bytes `start`…`end` (inclusive) of a local file. */
export interface FileRange {
  file: string;
  start: number;
  end: number;
}

export interface Http1Response {
  status: number;
  /** The response body when the status is 2xx (or `errorBody` was asked) and the length is known; otherwise the connection was closed. An answer to HEAD has an empty one. */
  body?: Readable & ChunkTaking;
  /** Its length (with a body). */
  length?: number;
  /** The ETag header, as sent (quotes included). */
  etag?: string;
  /** The Retry-After header (of a throttling or failing answer). */
  retryAfter?: string;
  /** The Location and Range headers (an upload session's URL and the bytes it holds). */
  location?: string;
  range?: string;
}

export interface Http1ClientOptions {
  /** Connections kept open per origin when idle. */
  maxIdle: number;
  connectionTimeoutMs: number;
  /**
   * A request that gets no answer for this long fails, and an idle kept-alive connection is closed after it. A body
   * being read has no timer here: the store layers' stall guard watches it (and knows a slow reader from a stall).
   */
  socketTimeoutMs: number;
}

/** One socket's bytes go to whoever reads its current response. */
type Reader = (bytes: Buffer) => boolean;

class Connection {
  readonly socket: net.Socket;
  readonly origin: string;
  reader: Reader | undefined;
  /** The error a failure in the current request or response reports. */
  fail: ((err: Error) => void) | undefined;

  constructor(url: URL, options: Http1ClientOptions, buffer: Buffer) {
    this.origin = url.origin;
    const onread = { buffer, callback: (n: number, buf: Buffer) => this.read(buf.subarray(0, n)) };
    const port = Number(url.port) || (url.protocol === "https:" ? 443 : 80);
    const host = url.hostname.replace(/^\[|\]$/g, "");
    // tls.connect takes `onread` as net.connect does (Node ≥ 15.3), though @types/node does not list it.
    const secure: tls.ConnectionOptions & { onread: typeof onread } = {
      host,
      port,
      servername: net.isIP(host) ? undefined : host,
      ALPNProtocols: ["http/1.1"],
      onread,
    };
    // tls loads on the first https connection: a plain-http endpoint (MinIO, a local registry) never pays for it.
    this.socket = url.protocol === "https:" ? (process.getBuiltinModule("node:tls") as typeof tls).connect(secure) : net.connect({ host, port, onread });
    this.socket.setNoDelay(true);
    this.socket.on("error", (err) => this.fail?.(err));
    this.socket.on("end", () => this.fail?.(reset("the server closed the connection")));
    this.socket.on("close", () => this.fail?.(reset("the connection closed")));
    this.socket.on("timeout", () => this.socket.destroy(timeout("socket timeout")));
    this.socket.setTimeout(options.socketTimeoutMs);
  }

  private read(bytes: Buffer): boolean {
    if (!this.reader) {
      this.socket.destroy(); // bytes nobody asked for: the connection is no longer in step
      return false;
    }
    return this.reader(bytes);
  }
}

export class Http1Client {
  private readonly options: Http1ClientOptions;
  private readonly idle = new Map<string, Connection[]>();

  constructor(options: Http1ClientOptions) {
    this.options = options;
  }

  /**
   * `method` `target` (path and query, as sent) at `origin`'s server; `headers` must include host (and content-length
   * with a body). Rejects on network failures (the caller's retry decides).
   */
  async request(method: Method, origin: URL, target: string, headers: Record<string, string>, options: RequestOptions = {}): Promise<Http1Response> {
    let head = `${method} ${target} HTTP/1.1\r\n`;
    for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
    head += "\r\n";
    const pooled = this.take(origin.origin);
    const empty = method === "HEAD";
    try {
      return await this.exchange(pooled ?? (await this.connect(origin)), head, empty, options);
    } catch (err) {
      // A kept-alive connection the server closed meanwhile fails before any answer: once more on a new one (the
      // requests as used here may be repeated: reads, unconditional writes of the same bytes, and upload steps,
      // whose registry refuses a repeated chunk by its range). Not when the body's own file failed.
      const { beforeResponse, bodyFailed } = err as { beforeResponse?: boolean; bodyFailed?: boolean };
      if (!pooled || !beforeResponse || bodyFailed || options.signal?.aborted) throw err;
      return this.exchange(await this.connect(origin), head, empty, options);
    }
  }

  private take(origin: string): Connection | undefined {
    const list = this.idle.get(origin);
    for (let c = list?.pop(); c; c = list?.pop()) {
      if (c.socket.destroyed) continue;
      c.socket.ref();
      return c;
    }
    return undefined;
  }

  private connect(url: URL): Promise<Connection> {
    const c = new Connection(url, this.options, Buffer.allocUnsafeSlow(READ_BYTES));
    c.socket.once("close", () => {
      const list = this.idle.get(c.origin);
      const at = list?.indexOf(c) ?? -1;
      if (at >= 0) list!.splice(at, 1);
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => c.socket.destroy(timeout("connection timeout")), this.options.connectionTimeoutMs);
      c.fail = (err) => {
        clearTimeout(timer);
        c.socket.destroy();
        reject(err);
      };
      c.socket.once(url.protocol === "https:" ? "secureConnect" : "connect", () => {
        clearTimeout(timer);
        c.fail = undefined;
        resolve(c);
      });
    });
  }

  /** One request and its answer's head; `empty`: the answer has no body whatever its headers say (HEAD). */
  private exchange(c: Connection, head: string, empty: boolean, { signal, body: payload, errorBody }: RequestOptions): Promise<Http1Response> {
    return new Promise((resolve, reject) => {
      let partial: Buffer | undefined;
      let heard = false;
      const abort = (): void => void c.socket.destroy(signal!.reason as Error);
      signal?.addEventListener("abort", abort, { once: true });
      const done = (): void => signal?.removeEventListener("abort", abort);
      c.fail = (err) => {
        done();
        c.socket.destroy();
        reject(Object.assign(err, { beforeResponse: !heard }));
      };
      c.reader = (bytes) => {
        heard = true;
        // A head that arrives in one read (the usual case) is parsed in place, without copying the read buffer.
        const data = partial ? Buffer.concat([partial, bytes]) : bytes;
        const end = data.indexOf("\r\n\r\n");
        if (end < 0) {
          partial = partial ? data : Buffer.from(bytes);
          if (partial.length > MAX_HEADER_BYTES) c.fail!(reset(`a response header longer than ${MAX_HEADER_BYTES} bytes`));
          return true;
        }
        const parsed = parseHead(data.subarray(0, end).toString("latin1"));
        const rest = data.subarray(end + 4);
        if (!parsed) {
          c.fail!(reset("a response that is not HTTP/1.1"));
          return false;
        }
        const { status, keepAlive, etag, retryAfter, location, range } = parsed;
        const length = empty || status === 204 || status === 304 ? 0 : parsed.length;
        const headers = {
          ...(etag !== undefined ? { etag } : {}),
          ...(retryAfter !== undefined ? { retryAfter } : {}),
          ...(location !== undefined ? { location } : {}),
          ...(range !== undefined ? { range } : {}),
        };
        const failing = status < 200 || status > 299;
        if ((failing && !errorBody) || length === undefined) {
          // Not a body this client reads: the caller asks another way; the connection is not reused.
          done();
          c.reader = undefined;
          c.fail = undefined;
          c.socket.destroy();
          resolve({ status, ...(retryAfter !== undefined ? { retryAfter } : {}) });
          return false;
        }
        // A failing answer to a request with a body may have come before all of it was sent: the connection is not reused.
        const reusable = keepAlive && !(failing && payload);
        resolve({ status, ...headers, body: this.body(c, length, reusable, rest, done), length: empty ? (parsed.length ?? 0) : length });
        return !c.socket.isPaused();
      };
      if (!payload) return void c.socket.write(head);
      if (!Buffer.isBuffer(payload)) {
        // A file that cannot be read (gone, shorter than said) fails the request with its own error, before any answer.
        sendFileRange(c.socket, head, payload).catch((err: Error) => {
          if (c.fail) c.fail(Object.assign(err, { bodyFailed: true }));
          else c.socket.destroy(); // answered meanwhile: what was sent is not what was meant
        });
        return;
      }
      c.socket.cork(); // head and body in one write
      c.socket.write(head);
      c.socket.write(payload);
      c.socket.uncork();
    });
  }

  /**
   * The body: by TAKE_CHUNKS, views of the connection's read buffer, the socket paused while a chunk's promise is
   * pending; as a stream, each read copied out in pieces. The socket waits for the first demand either way.
   */
  private body(c: Connection, length: number, keepAlive: boolean, first: Buffer, done: () => void): Readable & ChunkTaking {
    let left = length;
    // `first` may be a view of the read buffer: it stays as it is while the socket is paused, as it is until the
    // first demand.
    let unread: Buffer | undefined = first.length > 0 ? first : undefined;
    let take: TakeChunk | undefined;
    let taking: { resolve: () => void; reject: (err: Error) => void } | undefined;
    let last: Promise<void> | undefined;
    c.socket.pause();
    c.socket.setTimeout(0);
    const start = (): void => {
      const bytes = unread;
      unread = undefined;
      if (bytes) {
        if (deliver(bytes)) c.socket.resume();
      } else if (left === 0) end();
      else c.socket.resume();
    };
    const body = Object.assign(
      new Readable({
        highWaterMark: CHUNK_BYTES,
        read: () => (unread || left === 0 ? start() : void c.socket.resume()),
        destroy: (err, cb) => {
          done();
          if (left > 0) c.socket.destroy(); // an unread rest: the connection is out of step
          taking?.reject(err ?? reset("the response body was closed before its end"));
          cb(err);
        },
      }),
      {
        [TAKE_CHUNKS]: (consumer: TakeChunk) =>
          new Promise<void>((resolve, reject) => {
            take = consumer;
            taking = { resolve, reject };
            start();
          }),
      },
    );
    /** The response is read to its end: the connection goes back to the pool. */
    const finish = (): void => {
      c.reader = undefined;
      c.fail = undefined;
      done();
      if (keepAlive) this.release(c);
      else c.socket.destroy();
    };
    /** The consumer hears of the end. */
    const end = (): void => {
      if (!taking) return void body.push(null);
      const { resolve, reject } = taking;
      taking = undefined; // settled: a later destroy (every consumer's last step) has nothing to reject
      if (last) last.then(resolve, reject);
      else resolve();
    };
    /** Hands bytes on; false when the consumer wants no more for now (the socket then pauses). */
    const deliver = (bytes: Buffer): boolean => {
      if (bytes.length > left) {
        c.fail!(reset(`the server sent more than the ${length} bytes of its Content-Length`));
        return false;
      }
      left -= bytes.length;
      let more = true;
      if (take) {
        try {
          const next = take(bytes);
          if (next) {
            more = false;
            last = next;
            next.then(
              () => void (left > 0 && c.socket.resume()),
              (err: Error) => body.destroy(err),
            );
          }
        } catch (err) {
          body.destroy(err as Error);
          return false;
        }
      } else {
        for (let at = 0; at < bytes.length; at += CHUNK_BYTES) more = body.push(Buffer.from(bytes.subarray(at, at + CHUNK_BYTES)));
      }
      if (left === 0) {
        finish();
        end();
        return true;
      }
      return more;
    };
    if (length === 0) {
      // Nothing to read (a PUT's answer): the connection is free at once, unless more bytes came than were answered.
      if (first.length > 0) keepAlive = false;
      finish();
      return body;
    }
    c.fail = (err) => {
      done();
      c.socket.destroy();
      body.destroy(err);
    };
    c.reader = (bytes) => {
      const more = deliver(bytes);
      if (!more) c.socket.pause();
      return more;
    };
    return body;
  }

  private release(c: Connection): void {
    const list = this.idle.get(c.origin) ?? [];
    if (list.length >= this.options.maxIdle || c.socket.destroyed) return void c.socket.destroy();
    c.socket.unref(); // an idle connection never keeps the process alive
    c.socket.resume(); // reading, so that a close by the server is seen while it waits
    c.socket.setTimeout(this.options.socketTimeoutMs);
    list.push(c);
    this.idle.set(c.origin, list);
  }
}

type Method = "GET" | "HEAD" | "PUT" | "POST" | "PATCH";

/**
 * Sends the request's head and then a file's range, read into FILE_BUFFERS buffers in turn (at most), each reused
 * once the socket has taken its bytes. Against a stream of the file's 64 KiB reads piped into Node's http client
 * (fresh buffers, stream events per chunk), sending 1 GiB to a local sink cost 1.0 s of CPU instead of 3.3 s. The
 * reads are synchronous, as the S3 store's small files: from the page cache they cost less than the thread pool's
 * round trips (publishing 2,000 × 64 KiB, opening and reading through fs/promises took ~3 s of the event loop's
 * profile). Stops when the connection is gone (an answer came early, or it failed: the request reports that).
 */
async function sendFileRange(socket: net.Socket, head: string, { file, start, end }: FileRange): Promise<void> {
  const fd = openSync(file, "r");
  try {
    const sent: Promise<void>[] = [];
    let pendingHead: string | undefined = head;
    for (let at = start; at <= end && !socket.destroyed;) {
      if (sent.length >= FILE_BUFFERS) await sent.shift();
      const buffer = spareBuffers.pop() ?? Buffer.allocUnsafeSlow(FILE_READ_BYTES);
      const n = readSync(fd, buffer, 0, Math.min(FILE_READ_BYTES, end - at + 1), at);
      if (n === 0) {
        spareBuffers.push(buffer);
        throw new Error(`${file} ends before byte ${end + 1}: it changed while it was sent`);
      }
      at += n;
      sent.push(
        new Promise((resolve) => {
          socket.cork(); // the head goes out with the first bytes
          if (pendingHead !== undefined) socket.write(pendingHead);
          pendingHead = undefined;
          // Called on failure too (the connection reports it); the buffer is free again either way.
          socket.write(buffer.subarray(0, n), () => {
            if (spareBuffers.length < SPARE_BUFFERS) spareBuffers.push(buffer);
            resolve();
          });
          socket.uncork();
        }),
      );
    }
    await Promise.all(sent);
  } finally {
    closeSync(fd);
  }
}

/** Read buffers of file bodies no longer in use, for the next ones: a fresh one per small file was garbage at once. */
const spareBuffers: Buffer[] = [];

interface Head {
  status: number;
  length: number | undefined;
  keepAlive: boolean;
  etag: string | undefined;
  retryAfter: string | undefined;
  location: string | undefined;
  range: string | undefined;
}

/**
 * The status line and the few headers this client reads, found by scanning the lines in place: splitting the head
 * and lower-casing every header name (MinIO sends ~15) cost ~11 µs a response, ~20 ms of a 2,000-file fetch. Only a
 * name that starts like a wanted one is cut out and lower-cased.
 */
function parseHead(text: string): Head | undefined {
  const status = /^HTTP\/1\.([01]) (\d{3})/.exec(text);
  if (!status) return undefined;
  let length: number | undefined;
  let etag: string | undefined;
  let retryAfter: string | undefined;
  let location: string | undefined;
  let range: string | undefined;
  let chunked = false;
  let keepAlive = status[1] === "1";
  for (let start = text.indexOf("\r\n") + 2; start > 1 && start < text.length;) {
    const next = text.indexOf("\r\n", start);
    const end = next < 0 ? text.length : next;
    const colon = text.indexOf(":", start);
    if (colon > start && colon < end && WANTED_FIRST.has(text.charCodeAt(start) | 0x20)) {
      const name = text.slice(start, colon).trim().toLowerCase();
      const value = text.slice(colon + 1, end).trim();
      if (name === "content-length") length = /^\d+$/.test(value) ? Number(value) : Number.NaN;
      else if (name === "transfer-encoding") chunked = true;
      else if (name === "etag") etag = value;
      else if (name === "retry-after") retryAfter = value;
      else if (name === "location") location = value;
      else if (name === "range") range = value;
      else if (name === "connection") keepAlive = /keep-alive/i.test(value) || (keepAlive && !/close/i.test(value));
    }
    start = end + 2;
  }
  // Chunked or unknown lengths, and malformed ones, are not read here.
  if (chunked || (length !== undefined && !Number.isSafeInteger(length))) length = undefined;
  return { status: Number(status[2]), length, keepAlive, etag, retryAfter, location, range };
}

/** The first letters (lower case) of the headers parseHead reads: content-length, connection, transfer-encoding, etag, retry-after, location, range. */
const WANTED_FIRST = new Set([..."cterl"].map((c) => c.charCodeAt(0)));

function reset(message: string): Error {
  return Object.assign(new Error(message), { code: "ECONNRESET" });
}

function timeout(message: string): Error {
  return Object.assign(new Error(message), { code: "ETIMEDOUT" });
}

/** Bytes per socket read: 4 × Node's 64 KiB (1 MiB read no faster and cost 60 MiB more peak RSS at 16 connections). */
const READ_BYTES = 256 * 1024;
/** A body read as a stream is copied out in pieces this size: small enough for the allocator to reuse memory. */
const CHUNK_BYTES = 64 * 1024;
const MAX_HEADER_BYTES = 64 * 1024;
/**
 * A file body is read this many bytes at a time, into this many buffers at most per request (sendFileRange). With
 * 16 parts in flight, 3 × 1 MiB a request peaked at 134-153 MiB publishing 2 GiB to MinIO; 2 × 256 KiB at 89-94 MiB,
 * for the same time and CPU (6 alternated rounds).
 */
const FILE_READ_BYTES = 256 * 1024;
const FILE_BUFFERS = 2;
/** Spare read buffers kept for later requests (a publish sends ASSETKIT_CONCURRENCY files at a time, 16 by default). */
const SPARE_BUFFERS = 16;
