// Meta schema 3 end to end: per-part BLAKE3 hashes as the shipped CLI fetches them (re-reads counted at a proxy in
// front of MinIO), their binding to the digest a lockfile pins, the fallbacks without the native addon, and the
// metas that earlier releases and modelkit wrote (schema 2's sha256 parts, schema 1, none).
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { cp, mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { blake3 as wasmBlake3 } from "hash-wasm";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { startRequestCounter, type RequestCounter } from "../../scripts/request-counter.ts";
import { AssetsDir } from "../../src/local/assets-dir.ts";
import { assetDigest, prepareInput, type AssetMetaDocument } from "../../src/registry/manifest.ts";
import { allowNativeHash } from "../../src/hashing/part-hash.ts";
import { Registry } from "../../src/registry/registry.ts";
import { FsStore } from "../../src/store/fs.ts";
import { openS3Store } from "../../src/store/s3/s3.ts";
import { Transfers, transferSettings } from "../../src/transfer/engine.ts";
import { s3TestEnv } from "../conformance/factories/s3.ts";
import { DEFAULT_TUNING } from "../../src/store/tuning.ts";
import { CLI, runCli, scratch, writeTree } from "../helpers/cli.ts";
import { TEST_SETTINGS, TEST_TUNING } from "../helpers/settings.ts";

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
      const direct = openS3Store(new URL(`s3://${bucket}/${prefix}?endpoint=${process.env.ASSETKIT_TEST_S3_ENDPOINT}`), {
        tuning: TEST_TUNING,
        env: s3TestEnv(),
      });
      const data = randomBytes(5 * PART + 100);
      const dir = await writeTree(await scratch(), { "weights.bin": data });
      await new Registry(direct, { settings: TEST_SETTINGS, versioning: "semver" }).publish({
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
      assert.match(r.stderr, /integrity check failed for m\/w:1\.0\.0: part 4 of 6 \(bytes 12288-16383\) does not match its blake3 /);
      const ranges = () =>
        counter
          .requests()
          .filter((q) => q.method === "GET" && q.url.split("?")[0]!.endsWith("/m/w/1.0.0"))
          .map((q) => q.range)
          .sort();
      const partRange = (i: number) => `bytes=${i * PART}-${Math.min(data.length, (i + 1) * PART) - 1}`;
      assert.deepEqual(ranges(), [0, 1, 2, 3, 3, 4, 5].map(partRange).sort(), "part 4 requested twice, every other part once");

      // Without the native addon, the whole-file sha256 is checked instead: the flipped byte is still caught.
      counter.reset();
      const slow = await runCli(["fetch", "m/w:1.0.0", "--store", store, "--assets-dir", "assets", "--debug"], {
        cwd,
        env: { ...s3TestEnv(), ASSETKIT_NATIVE_HASH: "0" },
      });
      assert.equal(slow.code, 1, slow.stderr);
      assert.match(slow.stderr, /debug: part hashes: BLAKE3 as WebAssembly \(ASSETKIT_NATIVE_HASH=0\); downloads check whole-file sha256/);
      assert.match(slow.stderr, /integrity check failed for m\/w:1\.0\.0: expected 20580 bytes with sha256/);
      assert.deepEqual(ranges(), [undefined], "read once, whole (this small object is not cut in parts when only its sha256 is checked)");
    });
  },
);

describe("per-part hashes are bound to the digest the lockfile pins", () => {
  it("a store that rewrites a part's data and its hash together fails a frozen fetch; one that keeps the digest fails the meta check", async () => {
    const cwd = await scratch();
    const storeDir = path.join(cwd, "store");
    const registry = new Registry(new FsStore(storeDir), { settings: TEST_SETTINGS, versioning: "semver" });
    const data = randomBytes(3 * PART + 1);
    await publishWithParts(registry, "m/x", { "a.bin": data, "small.txt": Buffer.from("hello") });
    assert.equal((await runCli(["lock", "m/x:1", "--store", storeDir], { cwd })).code, 0);

    const metaPath = path.join(storeDir, "m/x/1.0.0.meta");
    const original = await readFile(metaPath, "utf8");
    const meta = JSON.parse(original) as AssetMetaDocument;
    assert.equal(meta.assetkit?.schema, 3);
    assert.equal(meta.assetkit?.part_size, PART);
    const forged = Buffer.from(data);
    forged[PART + 1]! ^= 0xff;
    await writeFile(path.join(storeDir, "m/x/1.0.0/a.bin"), forged);
    const file = meta.assetkit!.files.find((f) => f.path === "a.bin")!;
    assert.equal(file.parts![1], await wasmBlake3(data.subarray(PART, 2 * PART)), "the parts are BLAKE3");
    file.parts![1] = await wasmBlake3(forged.subarray(PART, 2 * PART));

    // The forger keeps the digest: the meta no longer matches it.
    await writeFile(metaPath, JSON.stringify(meta));
    const kept = await runCli(["fetch", "--frozen", "--store", storeDir, "--assets-dir", "assets"], { cwd });
    assert.equal(kept.code, 1, kept.stderr);
    assert.match(kept.stderr, /not a valid asset meta: its digest does not match its files list/);

    // The forger recomputes the digest (and the whole-file sha256): the lockfile's digest catches it.
    file.sha256 = sha256(forged);
    meta.assetkit!.digest = assetDigest(meta.assetkit!.files, PART, "blake3");
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

describe("part hashes of earlier releases, and without the native addon", () => {
  it("a schema-2 meta (sha256 parts, as the previous release wrote): fetched and verified part by part, a flipped byte named", async () => {
    const cwd = await scratch();
    const storeDir = path.join(cwd, "store");
    const registry = new Registry(new FsStore(storeDir), { settings: TEST_SETTINGS, versioning: "semver" });
    const data = randomBytes(3 * PART + 7);
    const source = await writeTree(await scratch(), { "a.bin": data });
    const input = await prepareInput(source, { partSize: PART, partAlgorithm: "sha256" });
    await registry.publish({ name: "m/v2", input, createdBy: "assetkit 0.1.0", source: {}, metadata: {} });
    const meta = JSON.parse(await readFile(path.join(storeDir, "m/v2/1.0.0.meta"), "utf8")) as AssetMetaDocument;
    assert.equal(meta.assetkit?.schema, 2);
    assert.equal(meta.assetkit!.files[0]!.parts![0], sha256(data.subarray(0, PART)));
    assert.equal(
      meta.assetkit!.digest,
      assetDigest([{ path: "a.bin", size: data.length, sha256: sha256(data), parts: meta.assetkit!.files[0]!.parts! }], PART),
    );

    const ok = await runCli(["fetch", "m/v2:1.0.0", "--store", storeDir, "--assets-dir", "assets", "--json"], { cwd });
    assert.equal(ok.code, 0, ok.stderr);
    // The same content published again with --if-changed (now as schema 3, another digest) is no new version.
    const again = await registry.publish({
      name: "m/v2",
      input: await prepareInput(source, { partSize: PART }),
      ifChanged: true,
      createdBy: "test",
      source: {},
      metadata: {},
    });
    assert.deepEqual([again.published, again.version, again.digest], [false, "1.0.0", meta.assetkit!.digest]);
    assert.ok((await readFile(path.join(cwd, "assets/m/v2/1.0.0/a.bin"))).equals(data));

    const bad = Buffer.from(data);
    bad[2 * PART]! ^= 1;
    await writeFile(path.join(storeDir, "m/v2/1.0.0/a.bin"), bad);
    const caught = await runCli(["fetch", "m/v2:1.0.0", "--store", storeDir, "--assets-dir", "assets2"], { cwd });
    assert.equal(caught.code, 1, caught.stderr);
    assert.match(caught.stderr, /part 3 of 4 \(bytes 8192-12287\) does not match its sha256 [0-9a-f]{64}, twice/);
  });

  it("verify checks a local copy by its BLAKE3 parts, or by whole-file sha256 without the addon: a flipped byte is caught either way", async () => {
    const cwd = await scratch();
    const storeDir = path.join(cwd, "store");
    const data = randomBytes(4 * PART + 9);
    await publishWithParts(new Registry(new FsStore(storeDir), { settings: TEST_SETTINGS, versioning: "semver" }), "m/ver", {
      "a.bin": data,
      "b.txt": Buffer.from("b"),
    });
    for (const args of [
      ["lock", "m/ver:1"],
      ["fetch", "--frozen", "--assets-dir", "assets"],
      ["verify", "--assets-dir", "assets"],
    ]) {
      const r = await runCli([...args, "--store", storeDir], { cwd });
      assert.equal(r.code, 0, `${args[0]}: ${r.stderr}`);
    }
    const local = path.join(cwd, "assets/m/ver/1.0.0/a.bin");
    const altered = Buffer.from(data);
    altered[3 * PART + 2]! ^= 0x10;
    await writeFile(local, altered);
    for (const env of [{}, { ASSETKIT_NATIVE_HASH: "0" }]) {
      const r = await runCli(["verify", "--assets-dir", "assets", "--store", storeDir, "--json"], { cwd, env });
      assert.equal(r.code, 1, r.stderr);
      const [row] = (JSON.parse(r.stdout) as { verified: { status: string; detail: string }[] }).verified;
      assert.deepEqual([row!.status, row!.detail], ["local-altered", "changed or missing: a.bin"], JSON.stringify(env));
    }
  });

  it("the digest binds the part algorithm, and equal content gives an equal digest with or without the addon", async () => {
    const dir = await writeTree(await scratch(), { "a.bin": randomBytes(5 * PART + 3), "b.txt": Buffer.from("small") });
    const native = await prepareInput(dir, { partSize: PART });
    allowNativeHash(false);
    const wasm = await prepareInput(dir, { partSize: PART }).finally(() => allowNativeHash(true));
    assert.equal(wasm.digest, native.digest);
    assert.deepEqual(
      wasm.files.map((f) => f.parts),
      native.files.map((f) => f.parts),
    );
    const files = native.files.map(({ path: p, size, sha256: sha, parts }) => ({ path: p, size, sha256: sha, ...(parts ? { parts } : {}) }));
    assert.equal(assetDigest(files, PART, "blake3"), native.digest);
    assert.notEqual(assetDigest(files, PART, "sha256"), native.digest, "the same parts list read as sha256 parts is another digest");
    const small = files.filter((f) => !f.parts);
    assert.equal(assetDigest(small, PART, "blake3"), assetDigest(small), "without parts, every schema gives the same digest");
  });

  it("a corrupt native addon in dist/ is refused: the CLI says so in --debug, publishes the same digest and fetches by whole-file sha256", async () => {
    const cwd = await scratch();
    const broken = path.join(cwd, "dist");
    await cp(path.dirname(CLI), broken, { recursive: true });
    for (const file of await readdir(path.join(broken, "native"))) await writeFile(path.join(broken, "native", file), "not a shared library");
    const data = randomBytes(16 * 1024 * 1024 + 5); // two parts of the 16 MiB the CLI publishes with
    await writeFile(path.join(cwd, "big.bin"), data);
    const run = (cli: string, args: string[]) => runCli([...args, "--store", "store", "--debug"], { cwd, cli });

    const good = await run(CLI, ["publish", "big.bin", "m/good", "--json"]);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stderr, /debug: part hashes: BLAKE3 native \(.*blake\.[a-z0-9-]+\.node\)/);
    const fallback = await run(path.join(broken, "cli.js"), ["publish", "big.bin", "m/fallback", "--json"]);
    assert.equal(fallback.code, 0, fallback.stderr);
    assert.match(
      fallback.stderr,
      /debug: part hashes: BLAKE3 as WebAssembly \(.*blake\.[a-z0-9-]+\.node does not load: .*\); downloads check whole-file sha256/,
    );
    const digest = (r: { stdout: string }) => (JSON.parse(r.stdout) as { digest: string }).digest;
    assert.equal(digest(fallback), digest(good));
    const meta = JSON.parse(await readFile(path.join(cwd, "store/m/fallback/1.0.0.meta"), "utf8")) as AssetMetaDocument;
    assert.equal(meta.assetkit?.schema, 3);

    const fetched = await run(path.join(broken, "cli.js"), ["fetch", "m/good:1.0.0", "--assets-dir", "assets", "--json"]);
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.ok((await readFile(path.join(cwd, "assets/m/good/1.0.0"))).equals(data));
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
    const registry = new Registry(store, { settings: TEST_SETTINGS, versioning: "major-minor" });
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
      assetkit: { schema: 5, digest: assetDigest(files), size: 10, files },
    } as unknown as AssetMetaDocument;
    await assert.rejects(fetchWithMeta(data, meta), /schema 5 is not one this assetkit reads \(1 to 4\): upgrade assetkit/);
  });
});
