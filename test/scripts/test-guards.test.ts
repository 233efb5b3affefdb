// The tests' guards against a process that outlives its tests. The two proxies (test/helpers/fault-proxy.ts, scripts/request-counter.ts) end an upstream exchange whose
// client left before its answer ended: left open, its socket kept a test file's process alive after its tests, and
// the suite waited for it until CI's time limit. The upstream here is a plain HTTP server on 127.0.0.1 that answers
// half a body and never the rest, and reads request bodies; a connection it still holds is what would leak. And the
// exit guard every test file runs under (test/helpers/exit-guard.ts) fails a file held alive, naming what holds it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import http from "node:http";
import type net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { startRequestCounter } from "../../scripts/request-counter.ts";
import { FaultProxy } from "../helpers/fault-proxy.ts";
import { waitFor } from "../helpers/wait-for.ts";

/** An upstream whose GETs send half their body and stall, whose PUTs read their body and answer when it ends. */
async function stallingUpstream(): Promise<{ url: string; open: () => number; stop: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    if (req.method === "PUT") {
      req.resume();
      req.on("end", () => res.end("stored"));
      return;
    }
    res.writeHead(200, { "content-length": "1048576" });
    res.write(Buffer.alloc(512 * 1024));
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    open: () => sockets.size,
    stop: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A GET whose client leaves after the first bytes of the body. */
async function readHeadersAndLeave(url: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const req = http.get(`${url}/object`, { agent: false }, (res) => {
      res.once("data", () => {
        req.destroy();
        resolve();
      });
    });
    req.on("error", (err) => (req.destroyed ? undefined : reject(err)));
  });
}

/** A PUT whose client sends part of its body, then leaves. */
async function sendHalfAndLeave(url: string): Promise<void> {
  const req = http.request(`${url}/upload`, { method: "PUT", agent: false, headers: { "content-length": "1048576" } });
  req.on("error", () => undefined);
  req.write(Buffer.alloc(256 * 1024));
  await new Promise((resolve) => setTimeout(resolve, 200));
  req.destroy();
}

const proxies = {
  "fault proxy": async (upstream: string) => {
    const proxy = await FaultProxy.start(upstream);
    return { url: proxy.url, stop: () => proxy.stop() };
  },
  "request counter": async (upstream: string) => {
    const counter = await startRequestCounter(upstream);
    return { url: counter.url, stop: () => counter.stop() };
  },
};

for (const [name, start] of Object.entries(proxies)) {
  describe(`the ${name} ends the upstream exchange of a client that left`, () => {
    let upstream: Awaited<ReturnType<typeof stallingUpstream>>;
    let proxy: { url: string; stop: () => Promise<void> };
    before(async () => {
      upstream = await stallingUpstream();
      proxy = await start(upstream.url);
    });
    after(async () => {
      await proxy.stop();
      await upstream.stop();
    });

    it("mid-answer: the upstream connection is closed", async () => {
      await readHeadersAndLeave(proxy.url);
      await waitFor("the upstream connection to close", 5000, async () => upstream.open() === 0);
    });

    it("mid-upload: the upstream connection is closed", async () => {
      await sendHalfAndLeave(proxy.url);
      await waitFor("the upstream connection to close", 5000, async () => upstream.open() === 0);
    });
  });
}

describe("the fault proxy's hold", () => {
  it("ends the exchange of a client that left while held, and stop() ends what is in flight", async () => {
    const upstream = await stallingUpstream();
    const proxy = await FaultProxy.start(upstream.url);
    try {
      let release = (): void => undefined;
      proxy.inject({ times: 1, when: (req) => req.method === "PUT", fault: { kind: "hold", until: () => new Promise<void>((r) => (release = r)) } });
      await sendHalfAndLeave(proxy.url);
      release();
      // Whether the proxy saw the client go before the release (then it forwards nothing) or only once it reads on
      // (then it cuts the forwarded upload), no connection to the upstream stays.
      await new Promise((resolve) => setTimeout(resolve, 200));
      await waitFor("the upstream connection to close", 5000, async () => upstream.open() === 0);

      // An answer still arriving when the proxy stops: stop() closes its upstream connection.
      const reading = http.get(`${proxy.url}/object`, { agent: false });
      reading.on("error", () => undefined);
      await waitFor("the upstream to be read", 5000, async () => upstream.open() === 1);
      await proxy.stop();
      await waitFor("the upstream connection to close", 5000, async () => upstream.open() === 0);
    } finally {
      await proxy.stop();
      await upstream.stop();
    }
  });
});

describe("the exit guard of test files", () => {
  it("fails a file whose process outlives its tests, naming what holds it; a clean file passes", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "exit-guard-"));
    writeFileSync(
      path.join(dir, "leaks.test.ts"),
      'import net from "node:net";\nimport { it } from "node:test";\nit("leaves a server listening", () => { net.createServer().listen(0, "127.0.0.1"); });\n',
    );
    writeFileSync(path.join(dir, "clean.test.ts"), 'import { it } from "node:test";\nit("ends", () => {});\n');
    const guard = pathToFileURL(path.resolve("test/helpers/exit-guard.ts")).href;
    const { NODE_TEST_CONTEXT: _, ...env } = process.env; // a runner of its own, not a child of this one
    const run = (file: string) =>
      spawnSync(process.execPath, ["--test", "--import", guard, file], {
        cwd: dir,
        encoding: "utf8",
        env: { ...env, ASSETKIT_TEST_EXIT_GRACE_MS: "300" },
        timeout: 60_000,
      });
    const leaking = run("leaks.test.ts");
    assert.equal(leaking.status, 1, leaking.stdout);
    assert.match(leaking.stdout, /exit guard: every test of this file ended 0\.3 s ago, and the process is still held by: .*TCPServerWrap/);
    const clean = run("clean.test.ts");
    assert.equal(clean.status, 0, clean.stdout);
  });
});
