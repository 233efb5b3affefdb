// The OCI registry client against two real CNCF distribution registries (scripts/test-servers.ts): A with deletes,
// B without (405). Blobs (monolithic, chunked, resumed, mounted, ranged), manifests by tag and digest, tag paging
// and deletes, error classification, and a redirecting shim (FaultProxy asking for Basic credentials, then answering
// blob GETs with a 307 to another port) that must not receive the registry's Authorization on the other host.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { setTimeout as sleep } from "node:timers/promises";
import { before, describe, it } from "node:test";
import { OciClient, type OciClientOptions } from "../../../src/store/oci/client.ts";
import { StoreError, type ByteRange, type ObjectSource } from "../../../src/store/store.ts";
import { uniquePrefix } from "../../conformance/factory.ts";
import { closedPort, FaultProxy, isStoreError } from "../../helpers/fault-proxy.ts";

const REGISTRY_A = process.env.ASSETKIT_TEST_OCI_A;
const REGISTRY_B = process.env.ASSETKIT_TEST_OCI_B;
const unavailable = !REGISTRY_A || !REGISTRY_B ? "no OCI registries (ASSETKIT_TEST_OCI_A/_B): run under node scripts/test.ts" : undefined;
if (unavailable && process.env.ASSETKIT_TEST_ALL_STORES === "1") throw new Error(unavailable);

const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";
const BUDGET = { retries: 3, idleTimeoutMs: 5_000, timeoutMs: 20_000 };

function client(registry: string, options: Partial<OciClientOptions> = {}): OciClient {
  return new OciClient(new URL(registry), { budget: BUDGET, ...options });
}

function sha256(data: Buffer): string {
  return "sha256:" + createHash("sha256").update(data).digest("hex");
}

/** Distinct bytes per call, so no test finds a blob another one stored. */
function bytes(size: number): Buffer {
  const seed = createHash("sha256").update(uniquePrefix()).digest();
  return Buffer.from(Array.from({ length: size }, (_, i) => seed[i % 32]! ^ (i & 0xff)));
}

/** A manifest naming `layers` (already in the repository) and the empty config, which it pushes too. */
async function manifestOf(oci: OciClient, repo: string, layers: Buffer[], note = ""): Promise<Buffer> {
  const config = Buffer.from("{}");
  await oci.uploadBlob(repo, sha256(config), config);
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      artifactType: "application/vnd.assetkit.test.v1",
      config: { mediaType: "application/vnd.oci.empty.v1+json", digest: sha256(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: "application/octet-stream", digest: sha256(l), size: l.length })),
      annotations: { note },
    }),
  );
}

async function readBlob(oci: OciClient, repo: string, digest: string, range?: ByteRange): Promise<Buffer> {
  return buffer(await oci.openBlob(repo, digest, range));
}

describe("OCI client", { skip: unavailable }, () => {
  let a: OciClient;
  before(() => {
    a = client(REGISTRY_A!);
  });

  it("uploads a blob in one PUT, sees it exist, reads it whole and by range", async () => {
    const repo = `${uniquePrefix()}/mono`;
    const data = bytes(5000);
    const digest = sha256(data);
    assert.equal(await a.blobExists(repo, digest), undefined);
    assert.equal(await a.uploadBlob(repo, digest, data), "uploaded");
    assert.deepEqual(await a.blobExists(repo, digest), { digest, size: 5000 });
    assert.deepEqual(await readBlob(a, repo, digest), data);
    assert.deepEqual(await readBlob(a, repo, digest, { start: 100, end: 1099 }), data.subarray(100, 1100));
  });

  it("uploads in PATCH chunks above the chunk size", async () => {
    const proxy = await FaultProxy.start(REGISTRY_A!);
    try {
      const oci = client(proxy.url, { chunkBytes: 1000 });
      const repo = `${uniquePrefix()}/chunked`;
      const data = bytes(3500);
      assert.equal(await oci.uploadBlob(repo, sha256(data), data), "uploaded");
      assert.deepEqual(await readBlob(a, repo, sha256(data)), data);
      assert.equal(proxy.seen.filter((r) => r.startsWith("PATCH ")).length, 4);
    } finally {
      await proxy.stop();
    }
  });

  it("a lost answer to the closing PUT is not an error; a session the registry lost (404) restarts the blob", async () => {
    const proxy = await FaultProxy.start(REGISTRY_A!);
    try {
      const oci = client(proxy.url, { chunkBytes: 1000 });
      const closingPut = (req: http.IncomingMessage) => req.method === "PUT" && req.url!.includes("/blobs/uploads/");
      proxy.inject({ fault: { kind: "drop-response" }, times: 1, when: closingPut });
      const data = bytes(2500);
      const repo = `${uniquePrefix()}/lost`;
      assert.equal(await oci.uploadBlob(repo, sha256(data), data), "uploaded");
      assert.deepEqual(await readBlob(a, repo, sha256(data)), data);

      const patch = (req: http.IncomingMessage) => req.method === "PATCH";
      const unknown = '{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN","message":"blob upload unknown to registry"}]}';
      proxy.inject({ fault: { kind: "status", status: 404, body: unknown }, times: 1, when: patch });
      const other = bytes(2500);
      const posts = proxy.seen.filter((r) => r.startsWith("POST ")).length;
      assert.equal(await oci.uploadBlob(repo, sha256(other), other), "uploaded");
      assert.deepEqual(await readBlob(a, repo, sha256(other)), other);
      assert.equal(proxy.seen.filter((r) => r.startsWith("POST ")).length - posts, 2, "one session, lost, then a new one");
    } finally {
      await proxy.stop();
    }
  });

  it("resumes a broken chunk from the bytes the registry reports, not from the chunk's start", async () => {
    const repo = `${uniquePrefix()}/resumed`;
    const data = bytes(3000);
    const opened: ByteRange[] = [];
    let broken = false;
    // The second chunk's first read sends 600 bytes, then fails (a source store's connection dropping).
    const source: ObjectSource = {
      size: data.length,
      open: async (range) => {
        opened.push(range!);
        const part = data.subarray(range!.start, range!.end + 1);
        if (range!.start !== 1000 || broken) return Readable.from([part], { objectMode: false });
        broken = true;
        return Readable.from(
          (async function* () {
            yield part.subarray(0, 600);
            await sleep(50);
            throw new StoreError("unavailable", "source cut", { temporary: true });
          })(),
          { objectMode: false },
        );
      },
    };
    const oci = client(REGISTRY_A!, { chunkBytes: 1000 });
    assert.equal(await oci.uploadBlob(repo, sha256(data), source), "uploaded");
    assert.deepEqual(await readBlob(a, repo, sha256(data)), data);
    const resumed = opened[2]!;
    assert.ok(resumed.start > 1000 && resumed.start <= 1600 && resumed.end === 1999, `resumed at ${JSON.stringify(opened)}`);
  });

  it("mounts a blob another repository holds (201), and uploads one it does not (202)", async () => {
    const prefix = uniquePrefix();
    const data = bytes(2000);
    await a.uploadBlob(`${prefix}/from`, sha256(data), data);
    assert.equal(await a.uploadBlob(`${prefix}/to`, sha256(data), data, { mountFrom: `${prefix}/from` }), "mounted");
    assert.deepEqual(await readBlob(a, `${prefix}/to`, sha256(data)), data);
    const other = bytes(1500);
    assert.equal(await a.uploadBlob(`${prefix}/to`, sha256(other), other, { mountFrom: `${prefix}/from` }), "uploaded");
    assert.deepEqual(await readBlob(a, `${prefix}/to`, sha256(other)), other);
  });

  it("puts, gets and heads manifests by tag and by digest; a tag delete leaves the manifest", async () => {
    const repo = `${uniquePrefix()}/manifests`;
    const layer = bytes(300);
    await a.uploadBlob(repo, sha256(layer), layer);
    const manifest = await manifestOf(a, repo, [layer], "one");
    const digest = await a.putManifest(repo, "1.0.0", manifest, MANIFEST_TYPE);
    assert.equal(digest, sha256(manifest));
    assert.deepEqual(await a.getManifest(repo, "1.0.0"), { digest, size: manifest.length, mediaType: MANIFEST_TYPE, data: manifest });
    assert.deepEqual(await a.getManifest(repo, digest), { digest, size: manifest.length, mediaType: MANIFEST_TYPE, data: manifest });
    assert.deepEqual(await a.headManifest(repo, "1.0.0"), { digest, size: manifest.length, mediaType: MANIFEST_TYPE });

    const second = await manifestOf(a, repo, [layer], "two");
    const secondDigest = await a.putManifest(repo, sha256(second), second, MANIFEST_TYPE);
    assert.equal((await a.headManifest(repo, secondDigest))?.digest, secondDigest);
    await a.putManifest(repo, "production", second, MANIFEST_TYPE);
    assert.equal((await a.headManifest(repo, "production"))?.digest, secondDigest);

    await a.deleteManifest(repo, "production");
    assert.equal(await a.headManifest(repo, "production"), undefined);
    assert.equal((await a.headManifest(repo, secondDigest))?.digest, secondDigest);
    await a.deleteManifest(repo, "production"); // absent: not an error
    await a.deleteManifest(repo, secondDigest);
    assert.equal(await a.getManifest(repo, secondDigest), undefined);
  });

  it("lists tags page by page (n and Link), ASCIIbetically; a missing repository has none", async () => {
    const proxy = await FaultProxy.start(REGISTRY_A!);
    try {
      const oci = client(proxy.url);
      const repo = `${uniquePrefix()}/tags`;
      const layer = bytes(10);
      await oci.uploadBlob(repo, sha256(layer), layer);
      const manifest = await manifestOf(oci, repo, [layer]);
      const tags = ["b", "A", "_c.1", "a", "1.2.0", "1.10.0", "Z"];
      for (const tag of tags) await oci.putManifest(repo, tag, manifest, MANIFEST_TYPE);
      const listed: string[] = [];
      for await (const tag of oci.listTags(repo, 3)) listed.push(tag);
      assert.deepEqual(listed, ["1.10.0", "1.2.0", "A", "Z", "_c.1", "a", "b"]);
      assert.equal(proxy.seen.filter((r) => r.startsWith("GET ") && r.includes("/tags/list")).length, 3);
      const none: string[] = [];
      for await (const tag of oci.listTags(`${uniquePrefix()}/absent`)) none.push(tag);
      assert.deepEqual(none, []);
    } finally {
      await proxy.stop();
    }
  });

  it("registry B (deletes disabled): a tag or manifest delete is 'unsupported' (405), the tag stays", async () => {
    const b = client(REGISTRY_B!);
    const repo = `${uniquePrefix()}/nodelete`;
    const layer = bytes(20);
    await b.uploadBlob(repo, sha256(layer), layer);
    const manifest = await manifestOf(b, repo, [layer]);
    const digest = await b.putManifest(repo, "1", manifest, MANIFEST_TYPE);
    await assert.rejects(b.deleteManifest(repo, "1"), isStoreError("unsupported", /cannot delete manifest .*nodelete:1: DELETE answered 405/));
    await assert.rejects(b.deleteManifest(repo, digest), isStoreError("unsupported", /405/));
    assert.equal((await b.headManifest(repo, "1"))?.digest, digest);
  });

  it("classifies failures: absent blob and manifest, a wrong digest, a manifest naming a missing blob", async () => {
    const repo = `${uniquePrefix()}/errors`;
    const missing = sha256(bytes(1));
    assert.equal(await a.blobExists(repo, missing), undefined);
    await assert.rejects(a.openBlob(repo, missing), isStoreError("not-found", /BLOB_UNKNOWN/));
    assert.equal(await a.getManifest(repo, "nope"), undefined);
    assert.equal(await a.headManifest(repo, missing), undefined);
    const data = bytes(100);
    await assert.rejects(a.uploadBlob(repo, sha256(bytes(100)), data), isStoreError("failed", /PUT answered 400 DIGEST_INVALID/));
    const chunked = client(REGISTRY_A!, { chunkBytes: 40 });
    await assert.rejects(chunked.uploadBlob(repo, missing, data), isStoreError("failed", /DIGEST_INVALID/));
    const layer = bytes(50);
    const manifest = await manifestOf(a, repo, [layer]); // the layer itself never uploaded
    await assert.rejects(a.putManifest(repo, "1", manifest, MANIFEST_TYPE), isStoreError("failed", /PUT answered 400 MANIFEST_BLOB_UNKNOWN/));
  });

  it("retries 429 (after its Retry-After) and 5xx; gives up as 'unavailable'; a refused connection is 'unavailable'", async () => {
    const proxy = await FaultProxy.start(REGISTRY_A!);
    try {
      const oci = client(proxy.url);
      const repo = `${uniquePrefix()}/faults`;
      const data = bytes(64);
      await oci.uploadBlob(repo, sha256(data), data);
      const blobGet = (req: http.IncomingMessage) => req.method === "GET" && req.url!.includes("/blobs/sha256:");
      proxy.inject({ fault: { kind: "status", status: 429, headers: { "retry-after": "1" } }, times: 1, when: blobGet });
      proxy.inject({ fault: { kind: "status", status: 503 }, times: 1, when: blobGet });
      const started = Date.now();
      assert.deepEqual(await readBlob(oci, repo, sha256(data)), data);
      assert.ok(Date.now() - started >= 1000, "waited for Retry-After");
      assert.equal(proxy.faulted.length, 2);
      proxy.inject({ fault: { kind: "status", status: 502, body: '{"errors":[{"code":"UNKNOWN","message":"upstream down"}]}' }, when: blobGet });
      const once = client(proxy.url, { budget: { ...BUDGET, retries: 1 } });
      await assert.rejects(once.openBlob(repo, sha256(data)), isStoreError("unavailable", /502 UNKNOWN: upstream down.*gave up after 2 tries/));
    } finally {
      await proxy.stop();
    }
    const nowhere = client(`http://127.0.0.1:${await closedPort()}`, { budget: { ...BUDGET, retries: 0 } });
    await assert.rejects(nowhere.blobExists("x/y", sha256(Buffer.from("x"))), isStoreError("unavailable", /ECONNREFUSED/));
  });

  it("answers a Basic challenge; follows a blob GET's redirect to another host with Range, without the registry's Authorization; 200 to a range is unsupported", async () => {
    const repo = `${uniquePrefix()}/redirected`;
    const data = bytes(4000);
    await a.uploadBlob(repo, sha256(data), data);
    // The other host: serves the blob's bytes (from registry A, ranges included) and records what it was sent.
    const received: http.IncomingHttpHeaders[] = [];
    let honourRange = true;
    const blobHost = http.createServer((req, res) => {
      received.push(req.headers);
      const range = honourRange && req.headers.range ? { range: req.headers.range } : {};
      const upstream = http.get(`${REGISTRY_A}/v2/${repo}/blobs/${sha256(data)}`, { headers: range }, (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      });
      // A reader that hangs up (the unwanted whole blob) ends the upstream read too: no paused socket left open.
      res.once("close", () => upstream.destroy());
    });
    await new Promise<void>((resolve) => blobHost.listen(0, "127.0.0.1", resolve));
    const proxy = await FaultProxy.start(REGISTRY_A!);
    try {
      const sentToRegistry: (string | undefined)[] = [];
      const location = `http://127.0.0.1:${(blobHost.address() as AddressInfo).port}/signed/blob?sig=1`;
      const blobGet = (req: http.IncomingMessage): boolean => req.method === "GET" && req.url!.includes("/blobs/sha256:");
      // The registry asks for Basic credentials first (as one with htpasswd auth does), then redirects blob GETs.
      proxy.inject({
        fault: { kind: "status", status: 401, headers: { "www-authenticate": 'Basic realm="assetkit-test"' } },
        when: (req) => {
          if (blobGet(req)) sentToRegistry.push(req.headers.authorization);
          return blobGet(req) && !req.headers.authorization;
        },
      });
      proxy.inject({ fault: { kind: "status", status: 307, headers: { location } }, when: blobGet });
      const password = "test-password-not-a-secret";
      const oci = client(proxy.url, { credentials: async () => ({ username: "assetkit", password, source: "test" }) });
      assert.deepEqual(await readBlob(oci, repo, sha256(data), { start: 10, end: 2009 }), data.subarray(10, 2010));
      assert.deepEqual(await readBlob(oci, repo, sha256(data)), data);
      const basic = `Basic ${Buffer.from(`assetkit:${password}`).toString("base64")}`;
      assert.deepEqual(sentToRegistry, [undefined, basic, basic]);
      assert.equal(received.length, 2);
      assert.equal(received[0]!.range, "bytes=10-2009");
      assert.ok(
        received.every((h) => h.authorization === undefined),
        "Authorization reached the other host",
      );
      honourRange = false; // a host without range support: said, not read whole as if it were the range
      await assert.rejects(oci.openBlob(repo, sha256(data), { start: 0, end: 9 }), isStoreError("unsupported", /200, not 206/));
    } finally {
      await proxy.stop();
      blobHost.closeAllConnections();
      await new Promise((resolve) => blobHost.close(resolve));
    }
  });

  it("reads blobs over the buffer-reading HTTP/1.1 client once the registry served one itself; a 429 there is waited out, then the general way again", async () => {
    const proxy = await FaultProxy.start(REGISTRY_A!);
    try {
      const oci = client(proxy.url);
      const repo = `${uniquePrefix()}/direct`;
      const data = bytes(5000);
      await oci.uploadBlob(repo, sha256(data), data);
      // Node's HTTP client sends `Connection: keep-alive`; the HTTP/1.1 client sends only the headers it is given.
      const connections: (string | undefined)[] = [];
      const blobGet = (req: http.IncomingMessage) => req.method === "GET" && req.url!.includes("/blobs/sha256:");
      proxy.inject({ fault: { kind: "status", status: 500 }, when: (req) => (blobGet(req) && connections.push(req.headers.connection), false) });
      assert.deepEqual(await readBlob(oci, repo, sha256(data)), data);
      assert.deepEqual(await readBlob(oci, repo, sha256(data), { start: 100, end: 199 }), data.subarray(100, 200));
      assert.deepEqual(await readBlob(oci, repo, sha256(data)), data);
      assert.deepEqual(connections, ["keep-alive", undefined, undefined]);

      proxy.inject({ fault: { kind: "status", status: 429, headers: { "retry-after": "1" } }, times: 1, when: blobGet });
      const started = Date.now();
      assert.deepEqual(await readBlob(oci, repo, sha256(data)), data);
      assert.ok(Date.now() - started >= 1000, "waited for Retry-After");
      assert.deepEqual(connections.slice(3), [undefined, "keep-alive"], "the 429 came to the direct read; the retry went the general way");
    } finally {
      await proxy.stop();
    }
  });

  it("reads started at once on a new client: one goes the general way, the others wait for its answer and read directly", async () => {
    const proxy = await FaultProxy.start(REGISTRY_A!);
    try {
      const repo = `${uniquePrefix()}/direct-at-once`;
      const data = bytes(64 * 1024);
      await client(proxy.url).uploadBlob(repo, sha256(data), data);
      const connections: (string | undefined)[] = [];
      const blobGet = (req: http.IncomingMessage) => req.method === "GET" && req.url!.includes("/blobs/sha256:");
      proxy.inject({ fault: { kind: "status", status: 500 }, when: (req) => (blobGet(req) && connections.push(req.headers.connection), false) });
      const oci = client(proxy.url);
      const ranges = Array.from({ length: 8 }, (_, i) => ({ start: i * 8192, end: i * 8192 + 8191 }));
      const read = await Promise.all(ranges.map((range) => readBlob(oci, repo, sha256(data), range)));
      assert.deepEqual(Buffer.concat(read), data);
      assert.deepEqual(connections, ["keep-alive", ...Array(7).fill(undefined)], "one general read (Node's client), seven direct");
    } finally {
      await proxy.stop();
    }
  });
});
