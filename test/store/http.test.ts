// The read-only HTTP store against a scripted local server: encoding, ranges, retries, redirects, credentials kept
// out of url and messages. (The conformance suites cover it against a real static server, faults included.)
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { text } from "node:stream/consumers";
import { after, before, describe, it } from "node:test";
import { openHttpStore } from "../../src/store/http.ts";
import { DEFAULT_TUNING } from "../../src/store/tuning.ts";
import { inLayers } from "../conformance/factory.ts";
import { isStoreError } from "../helpers/fault-proxy.ts";

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

let server: http.Server;
let base: string;
let handler: Handler = (_req, res) => res.writeHead(404).end();
const seen: { method: string; url: string; headers: http.IncomingHttpHeaders }[] = [];

before(async () => {
  server = http.createServer((req, res) => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers });
    handler(req, res);
  });
  server.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

function serve(h: Handler): void {
  seen.length = 0;
  handler = h;
}

/** The store at `url` in the layers, with 4 tries. */
function open(url: string) {
  return inLayers(openHttpStore(new URL(url)), { ...DEFAULT_TUNING, retries: 3, idleTimeoutMs: 2_000 });
}

describe("http store", () => {
  it("percent-encodes each key segment and serves etag, size and ranges", async () => {
    serve((req, res) => {
      const range = req.headers.range;
      if (range === "bytes=2-4") res.writeHead(206, { "content-range": "bytes 2-4/10", "content-length": 3, etag: '"e1"' }).end("234");
      else res.writeHead(200, { "content-length": 10, etag: '"e1"' }).end(req.method === "HEAD" ? undefined : "0123456789");
    });
    const store = open(`${base}/root/pre%20fix/`);
    assert.equal(store.url, `${base}/root/pre%20fix`);
    const got = await store.read("dir/with space/ünï + 100%.txt");
    assert.equal(got?.data.toString(), "0123456789");
    assert.equal(got?.etag, '"e1"');
    assert.equal(seen[0]!.url, "/root/pre%20fix/dir/with%20space/%C3%BCn%C3%AF%20%2B%20100%25.txt");
    assert.equal(seen[0]!.headers["accept-encoding"], "identity");
    await store.read("q?x=1#frag&y");
    assert.equal(seen[1]!.url, "/root/pre%20fix/q%3Fx%3D1%23frag%26y");
    assert.deepEqual(await store.head("a"), { key: "a", size: 10, etag: '"e1"' });
    assert.equal(await text(await store.openRead("a", { start: 2, end: 4 })), "234");
  });

  it("requires 206 for a range: a server that ignores Range is 'unsupported'", async () => {
    serve((_req, res) => res.writeHead(200, { "content-length": 10 }).end("0123456789"));
    const store = open(base);
    await assert.rejects(
      store.openRead("a", { start: 2, end: 4 }),
      isStoreError("unsupported", (m) => assert.match(m, /Range/)),
    );
  });

  it("reads 404 (and 410) as absent; openRead rejects with not-found", async () => {
    serve((_req, res) => res.writeHead(404).end("nope"));
    const store = open(base);
    assert.equal(await store.read("x"), undefined);
    assert.equal(await store.head("x"), undefined);
    await assert.rejects(store.openRead("x"), isStoreError("not-found"));
  });

  it("retries 5xx and 429 with backoff, then succeeds; gives up as 'unavailable'", async () => {
    let calls = 0;
    serve((_req, res) => {
      calls++;
      if (calls === 1) res.writeHead(503).end();
      else if (calls === 2) res.writeHead(429, { "retry-after": "0" }).end();
      else res.writeHead(200, { "content-length": 2 }).end("ok");
    });
    const store = open(base);
    assert.equal((await store.read("x"))?.data.toString(), "ok");
    assert.equal(calls, 3);
    serve((_req, res) => res.writeHead(500).end());
    await assert.rejects(
      store.read("x"),
      isStoreError("unavailable", (m) => assert.match(m, /500/)),
    );
    assert.equal(seen.length, 4, "ASSETKIT_RETRIES 3: four tries");
  });

  it("sends URL credentials as Basic auth and never shows them; 401/403 are 'auth'", async () => {
    serve((req, res) => {
      if (req.headers.authorization === "Basic " + Buffer.from("bob:s3cr%t").toString("base64")) res.writeHead(200, { "content-length": 1 }).end("y");
      else res.writeHead(401).end();
    });
    const good = open(`http://bob:s3cr%25t@${base.slice(7)}/p`);
    assert.ok(!good.url.includes("s3cr") && !good.url.includes("bob"), good.url);
    assert.equal((await good.read("x"))?.data.toString(), "y");
    const bad = open(`http://bob:wrongpass@${base.slice(7)}/p?token=hush`);
    assert.ok(!bad.url.includes("wrongpass") && !bad.url.includes("hush"), bad.url);
    await assert.rejects(
      bad.read("x"),
      isStoreError("auth", (m) => assert.ok(!m.includes("wrongpass") && !m.includes("hush"), m)),
    );
    assert.equal(seen.at(-1)!.url, "/p/x?token=hush", "the query string is sent with every request");
  });

  it("follows redirects", async () => {
    serve((req, res) => {
      if (req.url === "/old/x") res.writeHead(302, { location: "/new/x" }).end();
      else if (req.url === "/new/x") res.writeHead(200, { "content-length": 3, "last-modified": "Tue, 01 Jan 2030 00:00:00 GMT" }).end("new");
      else res.writeHead(404).end();
    });
    const got = await open(`${base}/old`).read("x");
    assert.equal(got?.data.toString(), "new");
    assert.equal(got?.etag, "Tue, 01 Jan 2030 00:00:00 GMT", "Last-Modified stands in for a missing ETag");
  });

  it("does not take a folder (redirected to key/, served as a listing) for an object", async () => {
    serve((req, res) => {
      if (req.url === "/dir") res.writeHead(301, { location: "/dir/" }).end();
      else res.writeHead(200, { "content-type": "text/html", "content-length": 7 }).end("listing");
    });
    const store = open(base);
    assert.equal(await store.head("dir"), undefined);
    assert.equal(await store.read("dir"), undefined);
    await assert.rejects(store.openRead("dir"), isStoreError("not-found"));
  });

  it("falls back to a one-byte GET where HEAD is refused", async () => {
    serve((req, res) => {
      if (req.method === "HEAD") res.writeHead(405).end();
      else res.writeHead(206, { "content-range": "bytes 0-0/42", "content-length": 1, etag: '"z"' }).end("a");
    });
    assert.deepEqual(await open(base).head("k"), { key: "k", size: 42, etag: '"z"' });
  });

  it("is read-only and cannot list", async () => {
    const store = open(base);
    assert.equal(store.writable, false);
    assert.equal(store.listable, false);
    await assert.rejects(
      store.write("x", Buffer.from("x")),
      isStoreError("read-only", (m) => assert.match(m, /writable store URI/)),
    );
    await assert.rejects(store.delete("x"), isStoreError("read-only"));
    await assert.rejects(async () => {
      for await (const _ of store.list("")) void _;
    }, isStoreError("unsupported"));
  });
});
