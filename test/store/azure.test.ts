// The Azure Blob store against Azurite, beyond the conformance suite: large block uploads under a condition,
// racing block commits, paging and URI handling. (Faults, auth and a missing container: test/conformance/faults.test.ts.)
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { pipeline } from "node:stream/promises";
import v8 from "node:v8";
import { runInNewContext } from "node:vm";
import { after, before, describe, it } from "node:test";
import { BlobServiceClient } from "@azure/storage-blob";
import { isAzureBlobUrl, openAzureStore, type AzureStoreOptions } from "../../src/store/azure.ts";
import { UsageError } from "../../src/base/errors.ts";
import { StoreError, type Store } from "../../src/store/store.ts";
import { azureFactory } from "../conformance/factories/azure.ts";
import { inLayers, skipReason, uniquePrefix } from "../conformance/factory.ts";
import { isStoreError } from "../helpers/fault-proxy.ts";
import { TEST_TUNING } from "../helpers/settings.ts";

const MiB = 1024 * 1024;
v8.setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const connectionString = process.env.ASSETKIT_TEST_AZURE_CONNECTION_STRING ?? "";
const container = process.env.ASSETKIT_TEST_AZURE_CONTAINER || "assetkit-test";

function store(options?: Partial<AzureStoreOptions>, cs = connectionString, uri = `az://${container}/${uniquePrefix()}`): Store {
  return inLayers(openAzureStore(new URL(uri), { tuning: TEST_TUNING, ...options, env: { AZURE_STORAGE_CONNECTION_STRING: cs } }));
}

function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

describe("azure store (Azurite)", { skip: skipReason(azureFactory) }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "assetkit-azure-"));
    await azureFactory.create(); // creates the container
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("round-trips a 40 MiB file in blocks under ifAbsent, with bounded memory; a second ifAbsent is refused", async () => {
    const file = path.join(dir, "big");
    const hash = createHash("sha256");
    // Written in 1 MiB pseudo-random chunks so the file is never in memory here either.
    await pipeline(
      Readable.from(
        (function* () {
          for (let i = 0; i < 40; i++) {
            const chunk = randomBytes(MiB);
            hash.update(chunk);
            yield chunk;
          }
        })(),
      ),
      createWriteStream(file),
    );
    const digest = hash.digest("hex");
    const s = store();
    // Retained memory: sampled after a full GC (garbage buffers awaiting collection are not held memory).
    gc();
    const baseline = process.memoryUsage().arrayBuffers;
    let peak = baseline;
    const sampler = setInterval(() => {
      gc();
      peak = Math.max(peak, process.memoryUsage().arrayBuffers);
    }, 100);
    try {
      assert.equal(await s.write("big/data", { file, size: 40 * MiB }, { ifAbsent: true }), true);
    } finally {
      clearInterval(sampler);
    }
    // Streaming holds a few 64 KiB chunks (samples show 0-20 MiB of not-yet-swept garbage); holding the file or
    // its four 8 MiB blocks in flight would be 32-40 MiB.
    assert.ok(peak - baseline < 28 * MiB, `upload held ${((peak - baseline) / MiB).toFixed(1)} MiB of buffers`);
    assert.equal(await s.write("big/data", { file, size: 40 * MiB }, { ifAbsent: true }), false);
    assert.equal((await s.head("big/data"))?.size, 40 * MiB);

    const back = createHash("sha256");
    for await (const chunk of await s.openRead("big/data")) back.update(chunk as Buffer);
    assert.equal(back.digest("hex"), digest);
    // A range across the first block boundary (8 MiB blocks).
    const part = await buffer(await s.openRead("big/data", { start: 8 * MiB - 10, end: 8 * MiB + 9 }));
    assert.equal(part.length, 20);
  });

  it("applies conditions at block commit: racing block uploads, ifMatch on block uploads", async () => {
    const small = { singleShotMax: 256 * 1024, tuning: { ...TEST_TUNING, partSize: 128 * 1024, concurrency: 3 } };
    const s = store(small);
    const files = await Promise.all(
      Array.from({ length: 4 }, async (_, i) => {
        const file = path.join(dir, `racer${i}`);
        const data = randomBytes(700 * 1024);
        await writeFile(file, data);
        return { file, data };
      }),
    );
    const wins = await Promise.all(files.map(({ file }) => s.write("race/blocks", { file, size: 700 * 1024 }, { ifAbsent: true })));
    assert.equal(wins.filter(Boolean).length, 1);
    const winner = files[wins.indexOf(true)]!;
    assert.equal(sha256((await s.read("race/blocks"))!.data), sha256(winner.data));

    const current = await s.head("race/blocks");
    assert.ok(current);
    const other = files.find((f) => f !== winner)!;
    assert.equal(await s.write("race/blocks", { file: other.file, size: 700 * 1024 }, { ifMatch: '"0x8D0000000000000"' }), false, "stale etag");
    assert.equal(await s.write("race/missing", { file: other.file, size: 700 * 1024 }, { ifMatch: current.etag }), false, "missing blob");
    assert.equal(await s.head("race/missing"), undefined);
    assert.equal(await s.write("race/blocks", { file: other.file, size: 700 * 1024 }, { ifMatch: current.etag }), true);
    assert.equal(sha256((await s.read("race/blocks"))!.data), sha256(other.data));
  });

  it("eight racing ifAbsent writers, twenty rounds: exactly one wins each time", async () => {
    const s = store();
    for (let round = 0; round < 20; round++) {
      const wins = await Promise.all(Array.from({ length: 8 }, (_, i) => s.write(`claims/${round}`, Buffer.from(`w${i}`), { ifAbsent: true })));
      assert.equal(wins.filter(Boolean).length, 1, `round ${round}`);
      assert.equal((await s.read(`claims/${round}`))?.data.toString(), `w${wins.indexOf(true)}`);
    }
  });

  it("follows list pages (small page size) and lists keys relative to the store prefix", async () => {
    const prefix = uniquePrefix();
    const s = store({ pageSize: 7 }, connectionString, `az://${container}/${prefix}/nested`);
    const keys = Array.from({ length: 30 }, (_, i) => `p/k${String(i).padStart(2, "0")}`);
    await Promise.all(keys.map((k) => s.write(k, Buffer.from(k))));
    await s.write("pq", Buffer.from("x"));
    // The service really pages at this size (so the loop above followed continuation tokens).
    const raw = BlobServiceClient.fromConnectionString(connectionString).getContainerClient(container);
    const first = await raw
      .listBlobsFlat({ prefix: `${prefix}/nested/p/` })
      .byPage({ maxPageSize: 7 })
      .next();
    assert.equal(first.value.segment.blobItems.length, 7);
    assert.ok(first.value.continuationToken);
    const listed: string[] = [];
    for await (const o of s.list("p/")) listed.push(o.key);
    assert.deepEqual(listed.sort(), keys);
    const all: string[] = [];
    for await (const o of s.list("p")) all.push(o.key);
    assert.equal(all.length, 31);
  });

  it("opens az:// with ?endpoint= and AZURE_STORAGE_ACCOUNT + AZURE_STORAGE_KEY", async () => {
    const account = /AccountName=([^;]+)/.exec(connectionString)![1]!;
    const key = /AccountKey=([^;]+)/.exec(connectionString)![1]!;
    const endpoint = /BlobEndpoint=([^;]+)/.exec(connectionString)![1]!;
    const uri = new URL(`az://${container}/${uniquePrefix()}?endpoint=${encodeURIComponent(endpoint)}`);
    const s = inLayers(openAzureStore(uri, { tuning: TEST_TUNING, env: { AZURE_STORAGE_ACCOUNT: account, AZURE_STORAGE_KEY: key } }));
    assert.equal(await s.write("k", Buffer.from("v"), { ifAbsent: true }), true);
    assert.equal((await s.read("k"))?.data.toString(), "v");
    assert.ok(!s.url.includes(key));
    assert.match(s.url, /^az:\/\/[^?]+\?endpoint=http:\/\/127\.0\.0\.1:\d+\/devstoreaccount1$/);
  });
});

describe("azure store URIs (no server)", () => {
  it("recognises Azure Blob service URLs", () => {
    assert.equal(isAzureBlobUrl(new URL("https://myacct.blob.core.windows.net/c/p")), true);
    assert.equal(isAzureBlobUrl(new URL("https://myacct.blob.core.chinacloudapi.cn/c")), true);
    assert.equal(isAzureBlobUrl(new URL("https://example.com/c/p")), false);
    assert.equal(isAzureBlobUrl(new URL("https://myacct.dfs.core.windows.net/c/p")), false);
  });

  it("keeps SAS tokens and keys out of url, and needs an account for az://", async () => {
    const sas = "sv=2024-01-01&sp=rl&sig=c2VjcmV0c2lnbmF0dXJl%3D";
    const s = openAzureStore(new URL(`https://myacct.blob.core.windows.net/models/team/a?${sas}`), { tuning: TEST_TUNING, env: {} });
    assert.equal(s.url, "https://myacct.blob.core.windows.net/models/team/a?sv=***&sp=***&sig=***");
    const bare = inLayers(openAzureStore(new URL("az://models/prefix/"), { tuning: TEST_TUNING, env: {} }));
    assert.equal(bare.url, "az://models/prefix/");
    await assert.rejects(
      bare.head("x"),
      isStoreError("auth", (m) => assert.match(m, /AZURE_STORAGE_CONNECTION_STRING/)),
    );
    assert.throws(() => openAzureStore(new URL("az://Bad_Name/p"), { tuning: TEST_TUNING, env: {} }), UsageError);
  });

  it("reports a failing DefaultAzureCredential as auth, naming what to set", { timeout: 60_000 }, async () => {
    const s = inLayers(openAzureStore(new URL("https://nosuchacct0assetkit.blob.core.windows.net/cont/p"), { tuning: TEST_TUNING, env: {} }));
    const saved = { ...process.env };
    // No Azure credential anywhere this test can see: every DefaultAzureCredential source is unavailable.
    for (const k of Object.keys(process.env)) if (/^(AZURE_|IDENTITY_|MSI_)/.test(k)) delete process.env[k];
    try {
      await assert.rejects(s.head("x"), (err: unknown) => {
        assert.ok(err instanceof StoreError, String(err));
        // With no login it is "auth"; where the machine reaches no metadata endpoint it may be "unavailable".
        assert.ok(err.code === "auth" || err.code === "unavailable", err.message);
        return true;
      });
    } finally {
      Object.assign(process.env, saved);
    }
  });
});
