// A reverse proxy that sends response bodies slowly (a fixed number of bytes per second): a download that is
// still running when the test acts on it. Requests pass unchanged (the Host header too, so S3 signatures hold).
import { createServer, request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { Transform } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";

export async function startThrottledProxy(target: string, bytesPerSecond: number): Promise<{ url: string; stop(): Promise<void> }> {
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    const forward = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.rawHeaders as unknown as Record<string, string>);
      const slow = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          void (async () => {
            for (let at = 0; at < chunk.length; at += 16_384) {
              this.push(chunk.subarray(at, at + 16_384));
              await sleep((16_384 / bytesPerSecond) * 1000);
            }
            done();
          })();
        },
      });
      // A client that goes away (the test's SIGTERM) ends the upstream response too.
      res.once("close", () => answer.destroy());
      slow.on("error", () => res.destroy());
      answer.on("error", () => slow.destroy());
      answer.pipe(slow).pipe(res);
    });
    forward.on("error", () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
