// The one fault-injection proxy of the tests: an HTTP proxy in front of a real server (MinIO, fake-gcs-server,
// Azurite, Caddy) that forwards requests untouched (headers included, so signatures stay valid) and, when told,
// breaks the next matching ones: answers an error status, resets a body mid-way, stalls, loses a response, holds a
// request back, or sends bodies slowly (a download still running when the test acts on it).
// Also the small shared helpers of store tests: a closed port, and a StoreError assertion.
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { Transform } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { StoreError, type StoreErrorCode } from "../../src/store/store.ts";

export type Fault =
  /** Answer this status (with headers and body) instead of forwarding. */
  | { kind: "status"; status: number; headers?: Record<string, string>; body?: string }
  /** Forward, then cut the connection after the response headers and part of the body. */
  | { kind: "reset" }
  /** Accept the request and never answer: an idle endpoint. */
  | { kind: "stall" }
  /** Forward, pass the response headers, then send nothing more (a body that stalls). */
  | { kind: "stall-body" }
  /** Forward the request (the server applies it), then close the connection without the answer. */
  | { kind: "drop-response" }
  /** Run `meanwhile` (another writer, say), then close the connection without forwarding the request. */
  | { kind: "drop-request"; meanwhile?: () => Promise<unknown> }
  /** Forward, sending the response body at this rate. */
  | { kind: "throttle"; bytesPerSecond: number }
  /** Forward once `until` settles (the request, body included, waits here meanwhile). */
  | { kind: "hold"; until: () => Promise<unknown> };

export interface Injection {
  fault: Fault;
  /** How many matching requests meet the fault (default: every one). */
  times?: number;
  /** Which requests (default: all). */
  when?: (req: http.IncomingMessage) => boolean;
}

export class FaultProxy {
  readonly url: string;
  /** Every request, as "METHOD path". */
  readonly seen: string[] = [];
  /** Requests that met a fault, as "METHOD path". */
  readonly faulted: string[] = [];
  private readonly server: http.Server;
  private readonly upstream: URL;
  private readonly sockets = new Set<net.Socket>();
  /** Exchanges with the upstream in flight: each one's socket would keep this process alive after its test. */
  private readonly exchanges = new Set<http.ClientRequest>();
  private injections: Injection[] = [];

  private constructor(server: http.Server, upstream: URL) {
    this.server = server;
    this.upstream = upstream;
    this.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  }

  /** A proxy forwarding to `upstream` (its origin), listening on a free 127.0.0.1 port. */
  static async start(upstream: string): Promise<FaultProxy> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const proxy = new FaultProxy(server, new URL(upstream));
    server.on("connection", (socket) => {
      proxy.sockets.add(socket);
      socket.once("close", () => proxy.sockets.delete(socket));
    });
    server.on("request", (req, res) => proxy.handle(req, res));
    return proxy;
  }

  /** From now on, matching requests meet `fault` (`times` of them, or all). */
  inject(injection: Injection): void {
    this.injections.push({ ...injection });
  }

  /** Closes the proxy, every connection to it and every exchange with the upstream still in flight. */
  async stop(): Promise<void> {
    for (const exchange of this.exchanges) exchange.destroy();
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private take(req: http.IncomingMessage): Fault | undefined {
    const injection = this.injections.find((i) => (i.times === undefined || i.times > 0) && (!i.when || i.when(req)));
    if (!injection) return undefined;
    if (injection.times !== undefined) injection.times--;
    this.faulted.push(`${req.method} ${req.url}`);
    return injection.fault;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.seen.push(`${req.method} ${req.url}`);
    const fault = this.take(req);
    if (fault?.kind === "drop-request") {
      req.resume();
      void (fault.meanwhile?.() ?? Promise.resolve()).finally(() => req.socket.destroy());
      return;
    }
    if (fault?.kind === "stall") {
      req.resume();
      return;
    }
    if (fault?.kind === "status") {
      req.resume();
      req.once("end", () => {
        res.writeHead(fault.status, { "content-type": "application/xml", ...fault.headers });
        res.end(fault.body ?? "");
      });
      return;
    }
    if (fault?.kind === "hold") {
      void fault.until().finally(() => {
        if (!res.destroyed) this.forward(req, res); // a client gone meanwhile has nothing to forward
      });
      return;
    }
    this.forward(req, res, fault);
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse, fault?: Fault): void {
    const upstream = http.request(
      { host: this.upstream.hostname, port: this.upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        if (fault?.kind === "drop-response") {
          answer.resume();
          req.socket.destroy();
          return;
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (fault?.kind === "stall-body") {
          res.flushHeaders();
          answer.resume(); // the body is read and dropped: the upstream request ends cleanly, the client waits
          return;
        }
        if (fault?.kind === "throttle") {
          res.once("close", () => answer.destroy()); // a client that goes away ends the upstream response too
          answer.on("error", () => res.destroy());
          answer
            .pipe(throttled(fault.bytesPerSecond))
            .on("error", () => res.destroy())
            .pipe(res);
          return;
        }
        if (fault?.kind === "reset") {
          answer.once("data", (chunk: Buffer) => {
            res.write(chunk.subarray(0, Math.max(1, chunk.length >> 1)));
            answer.destroy();
            setTimeout(() => req.socket.destroy(), 20);
          });
          return;
        }
        answer.pipe(res);
      },
    );
    this.exchanges.add(upstream);
    upstream.once("close", () => this.exchanges.delete(upstream));
    // A client gone before its answer ended (a read stopped early, an aborted upload, a fault that cut it) ends the
    // upstream exchange too: a half-read answer or a half-sent body otherwise kept its socket, and this process, alive.
    res.once("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    upstream.on("error", () => req.socket.destroy());
    req.pipe(upstream);
  }
}

/** A pass-through that lets `bytesPerSecond` through, in 16 KiB steps. */
function throttled(bytesPerSecond: number): Transform {
  const step = 16_384;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      void (async () => {
        for (let at = 0; at < chunk.length; at += step) {
          this.push(chunk.subarray(at, at + step));
          await sleep((step / bytesPerSecond) * 1000);
        }
        done();
      })();
    },
  });
}

/** A 127.0.0.1 port with nothing listening: connecting to it is refused. */
export async function closedPort(): Promise<number> {
  const server = net.createServer().listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** An assert.rejects/throws predicate: a StoreError with this code, whose message passes `check` (a RegExp or a function). */
export function isStoreError(code: StoreErrorCode, check?: RegExp | string | ((message: string) => void)): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected a StoreError, got ${String((err as Error)?.stack ?? err)}`);
    assert.equal(err.code, code, err.message);
    if (typeof check === "string") assert.ok(err.message.includes(check), err.message);
    else if (check instanceof RegExp) assert.match(err.message, check);
    else check?.(err.message);
    return true;
  };
}
