// GCS-only behaviour, against fake-gcs-server (ASSETKIT_TEST_GCS_ENDPOINT): large streamed bodies, resumable
// uploads under preconditions, and where the endpoint comes from. (Faults: test/conformance/faults.test.ts.)
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { text } from "node:stream/consumers";
import { after, before, describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { openGcsStore, type GcsStoreOptions } from "../../src/store/gcs.ts";
import type { Store } from "../../src/store/store.ts";
import { inLayers, skipReason, uniquePrefix } from "../conformance/factory.ts";
import { runCli } from "../helpers/cli.ts";
import { FaultProxy } from "../helpers/fault-proxy.ts";
import { ensureGcsTestBucket, gcsFactory, gcsTestBucket, gcsTestEndpoint } from "../conformance/factories/gcs.ts";
import { TEST_TUNING } from "../helpers/settings.ts";

const MiB = 1024 * 1024;
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function storeAt(endpoint: string, options?: Partial<GcsStoreOptions>, bucket = gcsTestBucket(), prefix = uniquePrefix()): Store {
  return inLayers(openGcsStore(new URL(`gs://${bucket}/${prefix}?endpoint=${endpoint}`), { tuning: TEST_TUNING, ...options }));
}

async function sha256Of(stream: AsyncIterable<unknown>): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest("hex");
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
    const proxy = await FaultProxy.start(gcsTestEndpoint()!);
    const store = storeAt(proxy.url, { resumableThreshold: 0 });
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
      assert.ok(
        proxy.seen.some((line) => line.includes("uploadType=resumable")),
        "uploads were resumable",
      );
      assert.ok(!proxy.seen.some((line) => line.includes("uploadType=multipart")), "no single-request upload");
    } finally {
      await proxy.stop();
    }
  });

  it("the built CLI publishes a file over the resumable threshold and fetches it back (the bundle's AbortSignal is Node's)", async () => {
    const weights = path.join(dir, "weights.bin");
    await writeFile(weights, randomBytes(12 * MiB));
    const { uri } = await gcsFactory.create();
    const published = await runCli(["publish", weights, "m", "--store", uri, "--json"], { cwd: dir });
    assert.equal(published.code, 0, published.stderr);
    const fetched = await runCli(["fetch", "m:1.0.0", "--store", uri, "--assets-dir", path.join(dir, "assets"), "--json"], { cwd: dir });
    assert.equal(fetched.code, 0, fetched.stderr);
    const [asset] = (JSON.parse(fetched.stdout) as { resolved: { path: string }[] }).resolved;
    assert.equal(
      createHash("sha256")
        .update(await readFile(asset!.path))
        .digest("hex"),
      createHash("sha256")
        .update(await readFile(weights))
        .digest("hex"),
    );
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
    assert.deepEqual(
      listed.map(({ key, size, etag }) => ({ key, size, etag })),
      [{ key: "g/x", size: 1, etag: head!.etag }],
    );
    assert.equal(await store.write("g/x", Buffer.from("y"), { ifMatch: "not-a-generation" }), false);
  });

  it("takes the endpoint from ?endpoint=, else from STORAGE_EMULATOR_HOST (host:port accepted)", async () => {
    const saved = process.env.STORAGE_EMULATOR_HOST;
    const endpoint = new URL(gcsTestEndpoint()!);
    try {
      process.env.STORAGE_EMULATOR_HOST = endpoint.host; // no scheme: the library itself cannot use that
      const viaEnv = inLayers(openGcsStore(new URL(`gs://${gcsTestBucket()}/${uniquePrefix()}`), { tuning: TEST_TUNING }));
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
