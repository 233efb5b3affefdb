// A counting reverse proxy in front of a test server (MinIO): every request a client makes passes through it
// unchanged (the Host header too, so S3 signatures still verify) and is counted by method and kind. Used to
// prove "zero requests to the store" claims by measurement (benchmark, end-to-end runs), never by assumption; it
// also measures how many requests are in flight at once, and can answer 503 in the server's place (settings tests).
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface RequestRecord {
  method: string;
  /** Path and query as the client sent them. */
  url: string;
  /** Bytes of the request body (what the client sent: uploads). */
  bytes: number;
  /** The Range header of a ranged read, as sent. */
  range?: string;
  /** Answered 503 by the counter itself (failNext), not forwarded. */
  failed?: boolean;
  /** When it arrived: performance.now() of the counter's process. */
  at: number;
}

export interface RequestCounter {
  /** Base URL of the proxy, e.g. http://127.0.0.1:41234: point the client's endpoint here. */
  url: string;
  /** Every request since start or the last reset(), in arrival order. */
  requests(): RequestRecord[];
  /** GETs and HEADs of objects (not bucket listings, whose query has list-type or prefix). */
  objectReads(): number;
  /** Request-body bytes of every request: what was uploaded. */
  bytesSent(): number;
  /** The most requests in flight at once (arrived, response not yet finished) since start or the last reset(). */
  maxInFlight(): number;
  /** Answers 503 Service Unavailable, without forwarding, to the next `count` requests that `match` accepts. */
  failNext(count: number, match: (r: RequestRecord) => boolean): void;
  reset(): void;
  stop(): Promise<void>;
}

export async function startRequestCounter(target: string, port = 0): Promise<RequestCounter> {
  const upstream = new URL(target);
  let seen: RequestRecord[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let failures: { count: number; match: (r: RequestRecord) => boolean } | undefined;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const record: RequestRecord = {
      method: req.method ?? "GET",
      url: req.url ?? "/",
      bytes: 0,
      ...(req.headers.range ? { range: req.headers.range } : {}),
      at: performance.now(),
    };
    seen.push(record);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    res.on("close", () => inFlight--);
    if (failures && failures.count > 0 && failures.match(record)) {
      failures.count--;
      record.failed = true;
      req.resume();
      res.writeHead(503, { "content-type": "text/plain", "retry-after": "0" }).end("request counter: injected 503");
      return;
    }
    req.on("data", (chunk: Buffer) => {
      record.bytes += chunk.length;
    });
    const forward = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.rawHeaders as unknown as Record<string, string>);
      answer.pipe(res);
    });
    // The client went away before its answer ended (a read stopped early, an upload aborted): the upstream exchange
    // goes too. Left alone, a half-read answer or a half-sent body kept a socket to the target, and the process
    // running this counter, alive after its test.
    res.on("close", () => {
      if (!res.writableFinished) forward.destroy();
    });
    forward.on("error", (err) => {
      if (res.destroyed) return; // the client is gone (and why this exchange was destroyed)
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
      res.end(`request counter: upstream ${target} failed: ${err.message}`);
    });
    req.pipe(forward);
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    requests: () => [...seen],
    objectReads: () =>
      seen.filter(
        (r) =>
          (r.method === "GET" || r.method === "HEAD") &&
          !/[?&](list-type|prefix|location|uploads)=/.test(r.url) &&
          r.url.split("?")[0]!.split("/").filter(Boolean).length > 1,
      ).length,
    bytesSent: () => seen.reduce((sum, r) => sum + r.bytes, 0),
    maxInFlight: () => maxInFlight,
    failNext: (count, match) => {
      failures = { count, match };
    },
    reset: () => {
      seen = [];
      maxInFlight = inFlight;
      failures = undefined;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// Standalone: `node scripts/request-counter.ts <target-url> [port]` proxies until killed and prints the
// requests it saw on SIGTERM/SIGINT as JSON on stdout (used by the end-to-end runs, where act owns the client).
if (import.meta.url === `file://${process.argv[1]}`) {
  const [target, port] = process.argv.slice(2);
  if (!target) {
    process.stderr.write("usage: node scripts/request-counter.ts <target-url> [port]\n");
    process.exit(2);
  }
  const counter = await startRequestCounter(target, port ? Number(port) : 0);
  process.stderr.write(`${counter.url}\n`);
  const finish = async (): Promise<void> => {
    process.stdout.write(JSON.stringify({ requests: counter.requests(), objectReads: counter.objectReads(), bytesSent: counter.bytesSent() }) + "\n");
    await counter.stop();
    process.exit(0);
  };
  process.on("SIGTERM", () => void finish());
  process.on("SIGINT", () => void finish());
}
