// Sharded metas (schema 4, manifest.ts): a version of more files than ASSETKIT_META_SHARD_FILES (set small here)
// keeps its file entries in `<version>.meta.<n>` shards, with the digest it would have unsharded. It publishes,
// resolves, shows, fetches (whole and a sub-path), is found unchanged by --if-changed, is signed and verified,
// promoted to another store, pruned and collected by gc with its shards; a damaged or missing shard is refused.
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { assetDigest, prepareInput, type AssetMetaDocument } from "../../src/registry/manifest.ts";
import { deleteVersions } from "../../src/registry/prune.ts";
import { Registry } from "../../src/registry/registry.ts";
import { FsStore } from "../../src/store/fs.ts";
import type { Store } from "../../src/store/store.ts";
import { s3TestEnv } from "../conformance/factories/s3.ts";
import { factories, skipReason } from "../conformance/stores.ts";
import { runCli, scratch, writeTree } from "../helpers/cli.ts";
import { TEST_SETTINGS } from "../helpers/settings.ts";

const extras = { createdBy: "assetkit test", source: {}, metadata: {} };
/** Nine files (one of 5 parts of 1 KiB): three shards of at most 3 entries each. */
const TREE = {
  "a/1.txt": "one",
  "a/2.txt": "two",
  "a/3.txt": "three",
  "b/big.bin": Buffer.alloc(5000, 7),
  "b/x.txt": "x",
  "c/d/deep.txt": "deep",
  "c/e.txt": "e",
  "top.txt": "top",
  "z.txt": "z",
};

async function keys(store: Store): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list("")) out.push(o.key);
  return out.sort();
}

const registryAt = (dir: string) => new Registry(new FsStore(dir), { settings: TEST_SETTINGS, versioning: "semver" });

describe("a sharded meta, in process on folder stores", () => {
  beforeEach(() => {
    process.env.ASSETKIT_META_SHARD_FILES = "3";
  });
  afterEach(() => {
    delete process.env.ASSETKIT_META_SHARD_FILES;
  });

  it("keeps the digest and files of the unsharded meta; promote --to shards it again; a bad or missing shard is refused; prune removes the shards", async () => {
    const cwd = await scratch();
    const input = await prepareInput(await writeTree(path.join(cwd, "in"), TREE), { partSize: 1024 });
    const sharded = registryAt(path.join(cwd, "sharded"));
    const outcome = await sharded.publish({ name: "m", input, ...extras });
    assert.deepEqual(
      (await keys(sharded.store)).filter((k) => !k.startsWith("m/1.0.0/")),
      ["m.versions", "m/1.0.0.meta", "m/1.0.0.meta.0", "m/1.0.0.meta.1", "m/1.0.0.meta.2"],
    );
    const doc = JSON.parse(await readFile(path.join(cwd, "sharded/m/1.0.0.meta"), "utf8")) as AssetMetaDocument;
    assert.equal(doc.assetkit?.schema, 4);
    assert.deepEqual(doc.assetkit?.files, []);
    assert.deepEqual(
      doc.assetkit?.shards?.map((s) => s.files),
      [3, 3, 3],
    );
    assert.deepEqual(doc.contents, Object.keys(TREE), "modelkit's contents kept while they are short");

    delete process.env.ASSETKIT_META_SHARD_FILES;
    const plain = registryAt(path.join(cwd, "plain"));
    await plain.publish({ name: "m", input, ...extras });
    const unsharded = await plain.meta("m", "1.0.0");
    assert.equal(unsharded.document.assetkit?.schema, 3);
    assert.equal(outcome.digest, unsharded.digest, "the same digest sharded or not");
    assert.equal(outcome.digest, assetDigest(input.files, 1024, "blake3"));
    const read = await sharded.meta("m", "1.0.0");
    const withoutEtags = (files: typeof read.files) => files.map(({ etag: _, ...f }) => f);
    assert.deepEqual(withoutEtags(read.files), withoutEtags(unsharded.files));
    assert.ok(
      (await sharded.storedMeta("m", "1.0.0"))!.files.every((f) => f.etag),
      "each file keeps its store's etag where a publish reads the meta (storedMeta)",
    );
    assert.ok(
      read.files.every((f) => f.etag === undefined),
      "a read for the files (meta) leaves the shards' etags out",
    );
    assert.deepEqual({ partSize: read.partSize, partAlgorithm: read.partAlgorithm }, { partSize: 1024, partAlgorithm: "blake3" });

    process.env.ASSETKIT_META_SHARD_FILES = "4";
    const dest = registryAt(path.join(cwd, "dest"));
    const copied = await dest.copyVersion(sharded, "m", "1.0.0", { at: new Date().toISOString(), by: "test" });
    assert.equal(copied.digest, outcome.digest);
    assert.deepEqual(
      (await keys(dest.store)).filter((k) => k.startsWith("m/1.0.0.meta")),
      ["m/1.0.0.meta", "m/1.0.0.meta.0", "m/1.0.0.meta.1", "m/1.0.0.meta.2"],
    );
    const promoted = await dest.meta("m", "1.0.0");
    assert.deepEqual(withoutEtags(promoted.files), withoutEtags(read.files));
    assert.ok(promoted.document.promoted_from, "the promotion is recorded");

    const shard1 = path.join(cwd, "sharded/m/1.0.0.meta.1");
    const original = await readFile(shard1, "utf8");
    await writeFile(shard1, original.replace('"size":4', '"size":5'));
    await assert.rejects(
      registryAt(path.join(cwd, "sharded")).meta("m", "1.0.0"),
      /m\/1\.0\.0\.meta in .* is not a valid asset meta: its shard 1 does not match its sha256/,
    );
    await sharded.store.delete("m/1.0.0.meta.1");
    await assert.rejects(registryAt(path.join(cwd, "sharded")).meta("m", "1.0.0"), /its shard 1 is missing/);
    const shown = await registryAt(path.join(cwd, "sharded")).resolveDocument({ name: "m", selector: { kind: "latest" } });
    assert.equal(shown.document.assetkit?.file_count, 9, "show reads the .meta alone");

    await deleteVersions(dest, "m", ["1.0.0"], async () => new Set());
    assert.deepEqual(await keys(dest.store), ["m.versions"], "prune leaves no shard");
  });

  it("--if-changed answers an unchanged input from the digest the index records: neither the meta nor its shards are read", async () => {
    const cwd = await scratch();
    const dir = await writeTree(path.join(cwd, "in"), TREE);
    const store = new ReadLog(path.join(cwd, "store"));
    const registry = new Registry(store, { settings: TEST_SETTINGS, versioning: "semver" });
    const first = await registry.publish({ name: "m", input: await prepareInput(dir), ...extras });
    store.reads = [];
    const again = await registry.publish({ name: "m", input: await prepareInput(dir), ifChanged: true, ...extras });
    assert.deepEqual([again.published, again.version, again.digest], [false, "1.0.0", first.digest]);
    assert.deepEqual(
      store.reads.filter((k) => k.includes(".meta")),
      [],
    );
    // Another digest: the meta is read (a version of an earlier schema may hold the same files), and differs.
    await writeFile(path.join(dir, "z.txt"), "changed");
    const changed = await registry.publish({ name: "m", input: await prepareInput(dir), ifChanged: true, ...extras });
    assert.deepEqual([changed.published, changed.version], [true, "1.1.0"]);
    assert.ok(store.reads.includes("m/1.0.0.meta.2"), store.reads.join(" "));
  });
});

/** A folder store that logs the keys it reads. */
class ReadLog extends FsStore {
  reads: string[] = [];
  override read(key: string): ReturnType<FsStore["read"]> {
    this.reads.push(key);
    return super.read(key);
  }
}

for (const storeName of ["file", "s3"]) {
  const factory = factories.find((f) => f.name.startsWith(storeName))!;
  describe(`a sharded version through the CLI on ${storeName}`, { skip: skipReason(factory) }, () => {
    it("publish, show, fetch (whole and a sub-path), --if-changed, a signature checked under a trust policy, and gc of an unfinished one", async () => {
      const { seed, uri } = await factory.create();
      const cwd = await scratch();
      await writeTree(path.join(cwd, "in"), TREE);
      const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
      await writeFile(path.join(cwd, "release.pem"), privateKey.export({ type: "pkcs8", format: "pem" }));
      await writeFile(path.join(cwd, "release.pub"), publicKey.export({ type: "spki", format: "pem" }));
      const env = { ...s3TestEnv(), ASSETKIT_META_SHARD_FILES: "3" };
      const ok = async (...args: string[]) => {
        const r = await runCli([...args, "--store", uri], { cwd, env });
        assert.equal(r.code, 0, `assetkit ${args.join(" ")}: ${r.stderr}`);
        return r.stdout;
      };

      await ok("publish", "in", "m", "--version", "1.0.0", "--sign-key", "release.pem");
      assert.ok((await keys(seed)).includes("m/1.0.0.meta.2"), "sharded");
      const shown = JSON.parse(await ok("show", "m", "--json")) as AssetMetaDocument;
      assert.equal(shown.assetkit?.schema, 4);
      assert.equal(shown.assetkit?.file_count, 9);
      assert.match(await ok("publish", "in", "m", "--if-changed"), /\tunchanged\t/);

      await writeFile(path.join(cwd, "assetkit.yml"), `trust:\n  rules:\n    - match: "**"\n      signers:\n        - key: release.pub\n`);
      const fetched = (await ok("fetch", "m:1.0.0")).trim().split("\t").pop()!;
      assert.deepEqual((await readdir(fetched, { recursive: true })).filter((f) => f.endsWith(".txt")).sort(), [
        "a/1.txt",
        "a/2.txt",
        "a/3.txt",
        "b/x.txt",
        "c/d/deep.txt",
        "c/e.txt",
        "top.txt",
        "z.txt",
      ]);
      const sub = (await ok("fetch", "m:1.0.0[c]")).trim().split("\t").pop()!;
      assert.equal(await readFile(path.join(sub, "d/deep.txt"), "utf8"), "deep");

      // A publisher that died after writing its shards but before the meta: gc removes data, shards and claim.
      await ok("publish", "in", "m", "--version", "2.0.0");
      await seed.delete("m/2.0.0.meta");
      await ok("gc", "--older-than", "0s");
      assert.deepEqual(
        (await keys(seed)).filter((k) => k.startsWith("m/2.0.0")),
        [],
      );
    });
  });
}
