// A version whose meta would take a document larger than a store document may be (MAX_DOCUMENT_BYTES: readers hold
// it whole) could never be fetched or shown: a folder's meta is sharded so that none does; what still passes the
// limit (huge metadata) is refused by publish, import and promote --to before anything is written.
import assert from "node:assert/strict";
import { mkdir, readdir, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";
import pMap from "p-map";
import { buildMeta, expectedMetaSize, metaBytes, metaSizeBound, metaSizeProblem, prepareInput, startHashing } from "../../src/registry/manifest.ts";
import { Registry } from "../../src/registry/registry.ts";
import { FsStore } from "../../src/store/fs.ts";
import { MAX_DOCUMENT_BYTES } from "../../src/store/store.ts";
import { s3Factory, s3TestEnv } from "../conformance/factories/s3.ts";
import { skipReason } from "../conformance/factory.ts";
import { runCli, scratch, writeTree } from "../helpers/cli.ts";
import { TEST_SETTINGS } from "../helpers/settings.ts";

const extras = { createdBy: "assetkit test", source: { repository: "o/r", run_url: "https://ci/1" }, metadata: { team: 'ml "quoted" é' } };

/**
 * A folder of `count` one-byte files at paths of 904 characters (4 folders of 200, then the name), so that each key
 * stays under S3's 1,024 bytes: each takes ~2 KB of meta, so ~8,600 of them pass 16 MiB (at 20-character paths it
 * takes ~90,000 files).
 */
async function longPathFolder(root: string, count: number): Promise<string> {
  const deep = path.join(root, ...Array.from({ length: 4 }, (_, i) => `${i}`.padEnd(200, "d")));
  await mkdir(deep, { recursive: true });
  await pMap(
    Array.from({ length: count }, (_, i) => i),
    (i) => writeFile(path.join(deep, `${i}`.padStart(100, "f")), "x"),
    { concurrency: 32 },
  );
  return root;
}

describe("the size of a meta, known before hashing", () => {
  it("is exactly the size of the meta written with the longest etags (JSON escapes, part hashes and all), and bounds any other", async () => {
    const dir = await writeTree(await scratch(), { 'a "quoted" é/b.txt': "hello", "big.bin": Buffer.alloc(5000, 1), "🙂.txt": "x" });
    const partSize = 1024; // big.bin gets 5 part hashes
    const hashing = await startHashing(dir, { partSize });
    const before = expectedMetaSize(hashing, extras);
    const prepared = await hashing.prepared;
    assert.equal(before, metaSizeBound(buildMeta(prepared, extras)));
    const s3Etags = new Map(prepared.files.map((f) => [f.path, `"${"a".repeat(32)}-2"`]));
    assert.ok(metaBytes(buildMeta(prepared, extras, s3Etags)).length < before, "a real etag is shorter than the longest");
    const single = await prepareInput(path.join(dir, "big.bin"), { partSize });
    assert.equal(expectedMetaSize(single, extras), metaSizeBound(buildMeta(single, extras)));
  });

  it("is exact for a sharded meta too (shards cut by file count and by bytes), computed without serializing an entry", async () => {
    const was = process.env.ASSETKIT_META_SHARD_FILES;
    try {
      const dir = await writeTree(await scratch(), { 'a "quoted" é/b.txt': "hello", "big.bin": Buffer.alloc(5000, 1), "🙂.txt": "x", "z.txt": "z" });
      process.env.ASSETKIT_META_SHARD_FILES = "2";
      const hashing = await startHashing(dir, { partSize: 1024 });
      assert.equal(expectedMetaSize(hashing, extras), metaSizeBound(buildMeta(await hashing.prepared, extras)));
      // ~1.1 KB entries: the first shard is closed by its bytes (4 MiB) before its 4,199 files.
      const long = await longPathFolder(path.join(await scratch(), "long"), 4200);
      process.env.ASSETKIT_META_SHARD_FILES = "4199";
      const longHashing = await startHashing(long);
      const expected = expectedMetaSize(longHashing, extras);
      const prepared = await longHashing.prepared;
      assert.equal(expected, metaSizeBound(buildMeta(prepared, extras)));
      assert.ok(expected < 4.2 * 1024 * 1024 && expected > 4 * 1024 * 1024, `the largest shard is about 4 MiB: ${expected}`);
    } finally {
      if (was === undefined) delete process.env.ASSETKIT_META_SHARD_FILES;
      else process.env.ASSETKIT_META_SHARD_FILES = was;
    }
  });

  it("is refused above the limit (not at it), naming the file count, the size and the limit", () => {
    assert.equal(metaSizeProblem(1000, 3, 1000), undefined);
    assert.equal(
      metaSizeProblem(19_500_000, 100_000, MAX_DOCUMENT_BYTES),
      "its meta would take a document of 18.6 MiB (19500000 bytes) for 100000 file(s), over the 16.0 MiB a store document may take, " +
        "so no fetch could read it: shorten its metadata, or publish the files as several assets",
    );
  });
});

describe("publish of a folder whose meta would pass 16 MiB unsharded, on MinIO", { skip: skipReason(s3Factory) }, () => {
  it("is sharded into documents under the limit (fewer files than the shard threshold, but long paths), and fetches", async () => {
    const cwd = await scratch();
    const folder = await longPathFolder(path.join(cwd, "big"), 9000);
    const prepared = await prepareInput(folder);
    assert.ok(metaBytes(buildMeta(prepared, extras)).length > MAX_DOCUMENT_BYTES, "the folder is large enough");
    assert.ok(expectedMetaSize(await startHashing(folder), extras) <= MAX_DOCUMENT_BYTES, "the largest document fits");
    const { store, uri } = await s3Factory.create();
    const env = { ...s3TestEnv(), ASSETKIT_ASSETS_DIR: path.join(cwd, "assets") };
    const published = await runCli(["publish", "big", "many", "--store", uri], { cwd, env });
    assert.equal(published.code, 0, published.stderr);
    const documents: number[] = [];
    for await (const object of store.list("many/1.0.0.meta")) if (object.key.includes(".meta")) documents.push(object.size);
    assert.ok(documents.length >= 3, `a .meta and its shards: ${documents.join(", ")}`);
    assert.ok(Math.max(...documents) <= MAX_DOCUMENT_BYTES);
    const fetched = await runCli(["fetch", "many", "--store", uri], { cwd, env });
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.equal((await readdir(path.join(cwd, "assets/many/1.0.0"), { recursive: true })).filter((f) => path.basename(f).startsWith("fff")).length, 9000);
  });
});

describe("promote --to a version whose meta would pass 16 MiB with its promoted_from record", () => {
  it("exit 2 before the claim: the destination stays empty; the source version (just under the limit) reads fine", async () => {
    const cwd = await scratch();
    await writeTree(cwd, { "w.bin": "weights" });
    const input = await prepareInput(path.join(cwd, "w.bin"));
    // Padding that brings the meta's bound to 10 bytes under the limit: readable as it is, not with a promotion record.
    const base = expectedMetaSize(input, { ...extras, metadata: { pad: "" } });
    const metadata = { pad: "p".repeat(MAX_DOCUMENT_BYTES - 10 - base) };
    const source = path.join(cwd, "source");
    await new Registry(new FsStore(source), { settings: TEST_SETTINGS, versioning: "semver" }).publish({ name: "m", input, ...extras, metadata });
    assert.ok((await stat(path.join(source, "m/1.0.0.meta"))).size <= MAX_DOCUMENT_BYTES - 10);
    const shown = await runCli(["show", "m:1.0.0", "--store", source, "--json"], { cwd });
    assert.equal(shown.code, 0, shown.stderr);

    const dest = path.join(cwd, "dest");
    await mkdir(dest);
    const r = await runCli(["promote", "m:1.0.0", "--to", dest, "--store", source], { cwd });
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr,
      /^error: cannot copy m:1\.0\.0 to .*: its meta would take a document of 16\.0 MiB \(\d+ bytes\) for 1 file\(s\), over the 16\.0 MiB/,
    );
    assert.deepEqual(await readdir(dest, { recursive: true }), []);
  });
});
