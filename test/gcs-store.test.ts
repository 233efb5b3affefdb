// GCS-only behaviour, against fake-gcs-server (ASSETKIT_TEST_GCS_ENDPOINT): large streamed bodies, resumable
// uploads under preconditions, lost responses, a missing bucket, unreachable and silent endpoints, and where
// the endpoint comes from.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { text } from "node:stream/consumers";
import { after, before, describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { openGcsStore, type GcsStoreOptions } from "../src/store/gcs.ts";
import { StoreError, type Store } from "../src/store/store.ts";
import { skipReason, uniquePrefix } from "./conformance/factory.ts";
import { ensureGcsTestBucket, gcsFactory, gcsTestBucket, gcsTestEndpoint } from "./conformance/factories/gcs.ts";

const MiB = 1024 * 1024;
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function storeAt(endpoint: string, options?: GcsStoreOptions, bucket = gcsTestBucket(), prefix = uniquePrefix()): Store {
  return openGcsStore(new URL(`gs://${bucket}/${prefix}?endpoint=${endpoint}`), options);
}

function isStoreError(code: string, mentions?: string) {
  return (err: unknown) => {
    assert.ok(err instanceof StoreError, `expected a StoreError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.ok(!err.message.includes("\n"), "one line");
    if (mentions) assert.ok(err.message.includes(mentions), `${JSON.stringify(err.message)} should mention ${mentions}`);
    return true;
  };
}

async function sha256Of(stream: AsyncIterable<unknown>): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A forwarding proxy in front of the emulator that records request URLs and can sabotage the next upload:
 * "drop-response" forwards it, then cuts the connection instead of answering; "drop-request" runs `meanwhile`
 * and cuts the connection without forwarding.
 */
class SabotageProxy {
  readonly seen: string[] = [];
  next: { mode: "drop-response" | "drop-request"; meanwhile?: () => Promise<unknown> } | undefined;
  private readonly server: http.Server;
  private readonly upstream: URL;

  constructor(upstream: string) {
    this.upstream = new URL(upstream);
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.seen.push(`${req.method} ${req.url}`);
    const sabotage = req.url?.startsWith("/upload/") ? this.next : undefined;
    if (sabotage) this.next = undefined;
    if (sabotage?.mode === "drop-request") {
      for await (const _ of req); // swallow the body
      await sabotage.meanwhile?.();
      req.socket.destroy();
      return;
    }
    const forward = http.request(
      { host: this.upstream.hostname, port: this.upstream.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        if (sabotage?.mode === "drop-response") {
          up.resume();
          up.on("end", () => req.socket.destroy());
          return;
        }
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    forward.on("error", () => req.socket.destroy());
    req.pipe(forward);
  }
}

describe("GCS store", { skip: skipReason(gcsFactory) }, () => {
  let dir: string;
  before(async () => {
    await ensureGcsTestBucket();
    dir = await mkdtemp(path.join(tmpdir(), "assetkit-gcs-"));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("streams a 40 MiB file body with ifAbsent (resumable upload) without holding it in memory", async () => {
    const file = path.join(dir, "big");
    const hash = createHash("sha256");
    const out = createWriteStream(file);
    for (let i = 0; i < 40; i++) {
      const chunk = randomBytes(MiB);
      hash.update(chunk);
      if (!out.write(chunk)) await new Promise((resolve) => out.once("drain", () => resolve(undefined)));
    }
    await new Promise((resolve, reject) => out.on("error", reject).end(() => resolve(undefined)));
    const digest = hash.digest("hex");
    const body = { file, size: 40 * MiB };

    const store = storeAt(gcsTestEndpoint()!);
    // Live memory (after a full GC at each sample), so garbage awaiting collection does not count.
    const live = () => {
      gc();
      const m = process.memoryUsage();
      return m.heapUsed + m.external + m.arrayBuffers;
    };
    const baseline = live();
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, live())), 100);
    try {
      assert.equal(await store.write("big/blob", body, { ifAbsent: true }), true);
    } finally {
      clearInterval(sampler);
    }
    assert.ok(peak - baseline < 24 * MiB, `the upload held ${((peak - baseline) / MiB).toFixed(1)} MiB`);

    assert.equal(await store.write("big/blob", body, { ifAbsent: true }), false);
    const head = await store.head("big/blob");
    assert.equal(head?.size, 40 * MiB);
    assert.equal(await sha256Of(await store.openRead("big/blob")), digest);
    const tail = await store.openRead("big/blob", { start: 40 * MiB - 10, end: 40 * MiB - 1 });
    const chunks: Buffer[] = [];
    for await (const chunk of tail) chunks.push(chunk as Buffer);
    assert.equal(Buffer.concat(chunks).length, 10);
  });

  it("honours preconditions atomically on resumable uploads (racing creators and compare-and-swap)", async () => {
    const proxy = new SabotageProxy(gcsTestEndpoint()!);
    const store = storeAt(await proxy.start(), { resumableThreshold: 0 });
    try {
      const files = await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          const file = path.join(dir, `racer-${i}`);
          await writeFile(file, `writer ${i}`);
          return { file, size: Buffer.byteLength(`writer ${i}`) };
        }),
      );
      const wins = await Promise.all(files.map((body) => store.write("race/claim", body, { ifAbsent: true })));
      assert.equal(wins.filter(Boolean).length, 1);
      assert.equal((await store.read("race/claim"))?.data.toString(), `writer ${wins.indexOf(true)}`);

      await writeFile(path.join(dir, "empty-list"), "[]");
      await store.write("race/list", { file: path.join(dir, "empty-list"), size: 2 });
      await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          for (;;) {
            const cur = await store.read("race/list");
            assert.ok(cur);
            const file = path.join(dir, `cas-${i}`);
            const next = JSON.stringify([...(JSON.parse(cur.data.toString()) as number[]), i]);
            await writeFile(file, next);
            if (await store.write("race/list", { file, size: Buffer.byteLength(next) }, { ifMatch: cur.etag })) return;
          }
        }),
      );
      const final = JSON.parse((await store.read("race/list"))!.data.toString()) as number[];
      assert.deepEqual(final.sort(), [0, 1, 2, 3, 4, 5, 6, 7]);
      assert.ok(proxy.seen.some((line) => line.includes("uploadType=resumable")), "uploads were resumable");
      assert.ok(!proxy.seen.some((line) => line.includes("uploadType=multipart")), "no single-request upload");
    } finally {
      await proxy.stop();
    }
  });

  it("exposes the generation as the etag, the same from head, read and list", async () => {
    const store = storeAt(gcsTestEndpoint()!);
    await store.write("g/x", Buffer.from("x"));
    const head = await store.head("g/x");
    const read = await store.read("g/x");
    const listed = [];
    for await (const item of store.list("g/")) listed.push(item);
    assert.match(head!.etag, /^[1-9][0-9]*$/);
    assert.equal(read!.etag, head!.etag);
    assert.deepEqual(listed.map(({ key, size, etag }) => ({ key, size, etag })), [{ key: "g/x", size: 1, etag: head!.etag }]);
    assert.equal(await store.write("g/x", Buffer.from("y"), { ifMatch: "not-a-generation" }), false);
  });

  it("recognises its own write when the response to a conditional write was lost", async () => {
    const proxy = new SabotageProxy(gcsTestEndpoint()!);
    const prefix = uniquePrefix();
    const store = storeAt(await proxy.start(), { retryDelayMs: 10 }, gcsTestBucket(), prefix);
    const direct = storeAt(gcsTestEndpoint()!, undefined, gcsTestBucket(), prefix);
    try {
      proxy.next = { mode: "drop-response" };
      assert.equal(await store.write("lost/claim", Buffer.from("mine"), { ifAbsent: true }), true);
      assert.equal(proxy.next, undefined, "the first upload was sabotaged");
      assert.equal((await store.read("lost/claim"))?.data.toString(), "mine");

      const v1 = await store.read("lost/claim");
      proxy.next = { mode: "drop-response" };
      assert.equal(await store.write("lost/claim", Buffer.from("mine v2"), { ifMatch: v1!.etag }), true);

      // Our attempt never arrives, someone else's write does: that is a conflict, not ours.
      proxy.next = { mode: "drop-request", meanwhile: () => direct.write("lost/second", Buffer.from("theirs")) };
      assert.equal(await store.write("lost/second", Buffer.from("mine"), { ifAbsent: true }), false);
      assert.equal((await store.read("lost/second"))?.data.toString(), "theirs");
    } finally {
      await proxy.stop();
    }
  });

  it("names a missing bucket in a not-found StoreError, for every operation", async () => {
    const bucket = `assetkit-missing-${randomBytes(4).toString("hex")}`;
    const store = storeAt(gcsTestEndpoint()!, undefined, bucket);
    const missing = isStoreError("not-found", bucket);
    await assert.rejects(store.head("x"), missing);
    await assert.rejects(store.read("x"), missing);
    await assert.rejects(store.openRead("x"), missing);
    await assert.rejects(store.write("x", Buffer.from("x")), missing);
    await assert.rejects(store.write("x", Buffer.from("x"), { ifAbsent: true }), missing);
    await assert.rejects(store.delete("x"), missing);
    await assert.rejects(
      (async () => {
        for await (const _ of store.list("")) void _;
      })(),
      missing,
    );
  });

  it("fails with code unavailable within seconds when nothing listens on the endpoint", async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const store = storeAt(endpoint);
    const started = Date.now();
    await assert.rejects(store.head("x"), isStoreError("unavailable", store.url));
    await assert.rejects(store.write("x", Buffer.from("x"), { ifAbsent: true }), isStoreError("unavailable"));
    await assert.rejects(store.openRead("x"), isStoreError("unavailable"));
    assert.ok(Date.now() - started < 8_000, `took ${Date.now() - started} ms`);
  });

  it("times out, bounded, against an endpoint that accepts connections and never answers", async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((socket) => {
      sockets.add(socket);
      socket.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const endpoint = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    const store = storeAt(endpoint, { requestTimeoutMs: 300, idleTimeoutMs: 300, retries: 1, retryDelayMs: 10 });
    try {
      const started = Date.now();
      await assert.rejects(store.head("x"), isStoreError("unavailable"));
      await assert.rejects(store.openRead("x"), isStoreError("unavailable"));
      await assert.rejects(store.write("x", Buffer.from("x"), { ifAbsent: true }), isStoreError("unavailable"));
      const file = path.join(dir, "small");
      await writeFile(file, "small");
      const resumable = openGcsStore(new URL(`gs://${gcsTestBucket()}/p?endpoint=${endpoint}`), {
        requestTimeoutMs: 300,
        idleTimeoutMs: 300,
        retries: 1,
        retryDelayMs: 10,
        resumableThreshold: 0,
      });
      await assert.rejects(resumable.write("x", { file, size: 5 }), isStoreError("unavailable"));
      assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it("abandons a download whose body stops arriving, with code unavailable", async () => {
    const stalling = http.createServer((_req, res) => {
      res.writeHead(200, { "content-length": "100", "x-goog-generation": "1", "x-goog-stored-content-encoding": "identity" });
      res.write("0123456789"); // and nothing more
    });
    await new Promise<void>((resolve) => stalling.listen(0, "127.0.0.1", resolve));
    const endpoint = `http://127.0.0.1:${(stalling.address() as net.AddressInfo).port}`;
    const store = storeAt(endpoint, { idleTimeoutMs: 300, retries: 1, retryDelayMs: 10 });
    try {
      const started = Date.now();
      const stream = await store.openRead("x");
      await assert.rejects(text(stream), isStoreError("unavailable"));
      await assert.rejects(store.read("x"), isStoreError("unavailable"));
      assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
    } finally {
      stalling.closeAllConnections();
      await new Promise((resolve) => stalling.close(resolve));
    }
  });

  it("takes the endpoint from ?endpoint=, else from STORAGE_EMULATOR_HOST (host:port accepted)", async () => {
    const saved = process.env.STORAGE_EMULATOR_HOST;
    const endpoint = new URL(gcsTestEndpoint()!);
    try {
      process.env.STORAGE_EMULATOR_HOST = endpoint.host; // no scheme: the library itself cannot use that
      const viaEnv = openGcsStore(new URL(`gs://${gcsTestBucket()}/${uniquePrefix()}`));
      assert.equal(await viaEnv.write("e/x", Buffer.from("env")), true);
      assert.equal(await text(await viaEnv.openRead("e/x")), "env");

      process.env.STORAGE_EMULATOR_HOST = "http://127.0.0.1:1"; // wrong, and overridden by ?endpoint=
      const viaUri = storeAt(gcsTestEndpoint()!);
      assert.equal(await viaUri.write("e/y", Buffer.from("uri")), true);
      assert.equal((await viaUri.read("e/y"))?.data.toString(), "uri");
      assert.equal((await viaUri.head("e/y"))?.size, 3);
    } finally {
      if (saved === undefined) delete process.env.STORAGE_EMULATOR_HOST;
      else process.env.STORAGE_EMULATOR_HOST = saved;
    }
  });
});
