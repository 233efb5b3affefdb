// Meta schema 2 end to end: per-part hashes as the shipped CLI fetches them (re-reads counted at a proxy in front
// of MinIO), their binding to the digest a lockfile pins, and the metas that have none (schema 1, modelkit).
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { startRequestCounter, type RequestCounter } from "../scripts/request-counter.ts";
import { AssetsDir } from "../src/assets-dir.ts";
import { assetDigest, prepareInput, type AssetMetaDocument } from "../src/manifest.ts";
import { Registry } from "../src/registry.ts";
import { FsStore } from "../src/store/fs.ts";
import { openS3Store } from "../src/store/s3.ts";
import { Transfers, transferSettings } from "../src/transfer.ts";
import { s3TestEnv } from "./conformance/factories/s3.ts";
import { DEFAULT_TUNING } from "../src/store/tuning.ts";
import { runCli, scratch, writeTree } from "./helpers/cli.ts";

const PART = 4096; // the meta's part size for these tests (assetkit publishes with 16 MiB)
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

/** Publishes `files` (a folder) as the next version of `name`, with parts of PART bytes (the CLI uses 16 MiB). */
async function publishWithParts(registry: Registry, name: string, files: Record<string, Buffer>): Promise<void> {
  const input = await prepareInput(await writeTree(await scratch(), files), { partSize: PART });
  await registry.publish({ name, input, createdBy: "test", source: {}, metadata: {} });
}

describe(
  "per-part verification through the CLI, counted at a proxy in front of MinIO",
  { skip: process.env.ASSETKIT_TEST_S3_ENDPOINT ? false : "no MinIO (run through scripts/test.ts)" },
  () => {
    let counter: RequestCounter;
    before(async () => {
      counter = await startRequestCounter(process.env.ASSETKIT_TEST_S3_ENDPOINT!);
    });
    after(async () => counter?.stop());

    it("a byte flipped in one part of the stored file: only that part is read again, and the error names it", async () => {
      const bucket = process.env.ASSETKIT_TEST_S3_BUCKET || "assetkit-test";
      const prefix = `parts-${process.pid}-${Date.now().toString(36)}`;
      const direct = openS3Store(new URL(`s3://${bucket}/${prefix}?endpoint=${process.env.ASSETKIT_TEST_S3_ENDPOINT}`), { env: s3TestEnv() });
      const data = randomBytes(5 * PART + 100);
      const dir = await writeTree(await scratch(), { "weights.bin": data });
      await new Registry(direct, { versioning: "semver" }).publish({
        name: "m/w",
        input: await prepareInput(path.join(dir, "weights.bin"), { partSize: PART }),
        createdBy: "test",
        source: {},
        metadata: {},
      });
      const stored = Buffer.from(data);
      stored[3 * PART + 10]! ^= 0x40;
      await direct.write("m/w/1.0.0", stored);

      const cwd = await scratch();
      const store = `s3://${bucket}/${prefix}?endpoint=${counter.url}`;
      counter.reset();
      const r = await runCli(["fetch", "m/w:1.0.0", "--store", store, "--assets-dir", "assets"], { cwd, env: s3TestEnv() });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /integrity check failed for m\/w:1\.0\.0: part 4 of 6 \(bytes 12288-16383\)/);
      const reads = counter.requests().filter((q) => q.method === "GET" && q.url.split("?")[0]!.endsWith("/m/w/1.0.0"));
      const ranges = reads.map((q) => q.range).sort();
      const expected = [0, 1, 2, 3, 3, 4, 5].map((i) => `bytes=${i * PART}-${Math.min(data.length, (i + 1) * PART) - 1}`).sort();
      assert.deepEqual(ranges, expected, "part 4 requested twice, every other part once");
    });
  },
);

describe("per-part hashes are bound to the digest the lockfile pins", () => {
  it("a store that rewrites a part's data and its hash together fails a frozen fetch; one that keeps the digest fails the meta check", async () => {
    const cwd = await scratch();
    const storeDir = path.join(cwd, "store");
    const registry = new Registry(new FsStore(storeDir), { versioning: "semver" });
    const data = randomBytes(3 * PART + 1);
    await publishWithParts(registry, "m/x", { "a.bin": data, "small.txt": Buffer.from("hello") });
    assert.equal((await runCli(["lock", "m/x:1", "--store", storeDir], { cwd })).code, 0);

    const metaPath = path.join(storeDir, "m/x/1.0.0.meta");
    const original = await readFile(metaPath, "utf8");
    const meta = JSON.parse(original) as AssetMetaDocument;
    assert.equal(meta.assetkit?.schema, 2);
    assert.equal(meta.assetkit?.part_size, PART);
    const forged = Buffer.from(data);
    forged[PART + 1]! ^= 0xff;
    await writeFile(path.join(storeDir, "m/x/1.0.0/a.bin"), forged);
    const file = meta.assetkit!.files.find((f) => f.path === "a.bin")!;
    file.parts![1] = sha256(forged.subarray(PART, 2 * PART));

    // The forger keeps the digest: the meta no longer matches it.
    await writeFile(metaPath, JSON.stringify(meta));
    const kept = await runCli(["fetch", "--frozen", "--store", storeDir, "--assets-dir", "assets"], { cwd });
    assert.equal(kept.code, 1, kept.stderr);
    assert.match(kept.stderr, /not a valid asset meta: its digest does not match its files list/);

    // The forger recomputes the digest (and the whole-file sha256): the lockfile's digest catches it.
    file.sha256 = sha256(forged);
    meta.assetkit!.digest = assetDigest(meta.assetkit!.files, PART);
    await writeFile(metaPath, JSON.stringify(meta));
    const recomputed = await runCli(["fetch", "--frozen", "--store", storeDir, "--assets-dir", "assets"], { cwd });
    assert.equal(recomputed.code, 1, recomputed.stderr);
    assert.match(recomputed.stderr, /m\/x:1: m\/x:1\.0\.0 in .* has digest sha256:[0-9a-f]{64}, but .*assets\.lock locked sha256:/);

    // The untouched version fetches, verified part by part.
    await writeFile(metaPath, original);
    await writeFile(path.join(storeDir, "m/x/1.0.0/a.bin"), data);
    const ok = await runCli(["fetch", "--frozen", "--store", storeDir, "--assets-dir", "assets", "--json"], { cwd });
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok((await readFile(path.join(cwd, "assets/m/x/1.0.0/a.bin"))).equals(data));
  });
});

describe("metas without part hashes keep whole-file verification", () => {
  /** A version of one file written with the given meta (schema 1 or modelkit's), fetched in parts of 1000 bytes. */
  async function fetchWithMeta(data: Buffer, meta: AssetMetaDocument, stored = data) {
    const root = await mkdtemp(path.join(tmpdir(), "assetkit-schema1-"));
    const store = new FsStore(path.join(root, "store"));
    await store.write("m/old/0.1", stored);
    await store.write("m/old/0.1.meta", Buffer.from(JSON.stringify(meta)));
    await store.write("m/old.versions", Buffer.from(JSON.stringify({ versions: ["0.1"] })));
    const registry = new Registry(store, { versioning: "major-minor" });
    const parsed = await registry.meta("m/old", "0.1");
    const dir = new AssetsDir(path.join(root, "assets"), new Transfers(transferSettings({ ...DEFAULT_TUNING, concurrency: 4, partSize: 1000 })));
    const copy = await dir.materialise("m/old", "0.1", parsed, (rel, range) => registry.openFile("m/old", "0.1", rel, range));
    return { copy, bytes: await readFile(copy.path) };
  }

  it("a schema-1 meta: fetched in ranged parts, the whole file's sha256 checked, a flipped byte caught", async () => {
    const data = randomBytes(4321);
    const files = [{ path: "", size: data.length, sha256: sha256(data) }];
    const meta: AssetMetaDocument = {
      push_date: new Date().toISOString(),
      is_directory: false,
      contents: [],
      assetkit: { schema: 1, digest: assetDigest(files), size: data.length, files, created_by: "assetkit 0.1.0", source: {}, metadata: {} },
    };
    const { copy, bytes } = await fetchWithMeta(data, meta);
    assert.ok(bytes.equals(data));
    assert.equal(copy.verified, true);
    assert.equal(copy.digest, meta.assetkit!.digest);
    const bad = Buffer.from(data);
    bad[3000]! ^= 1;
    await assert.rejects(fetchWithMeta(data, meta, bad), /integrity check failed for m\/old:0\.1: expected 4321 bytes with sha256/);
  });

  it("a modelkit meta (no checksums): fetched whole, unverified", async () => {
    const data = randomBytes(2500);
    const { copy, bytes } = await fetchWithMeta(data, { push_date: new Date().toISOString(), is_directory: false, contents: [] });
    assert.ok(bytes.equals(data));
    assert.equal(copy.verified, false);
  });

  it("a schema this assetkit does not know is refused by name", async () => {
    const data = randomBytes(10);
    const files = [{ path: "", size: 10, sha256: sha256(data) }];
    const meta = {
      push_date: "",
      is_directory: false,
      contents: [],
      assetkit: { schema: 3, digest: assetDigest(files), size: 10, files },
    } as unknown as AssetMetaDocument;
    await assert.rejects(fetchWithMeta(data, meta), /schema 3 is not one this assetkit reads/);
  });
});
