// Store conformance: the byte-level contract every backend must keep (after rclone's fstests and OpenDAL's
// behaviour tests). Read-only stores run the read half against objects written through `seed`.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { text } from "node:stream/consumers";
import { describe, it } from "node:test";
import { MAX_DOCUMENT_BYTES, StoreError } from "../../src/store/store.ts";
import { factories, skipReason } from "./stores.ts";

for (const factory of factories) {
  describe(`store conformance: ${factory.name}`, { skip: skipReason(factory) }, () => {
    it("reads back what was written, with size and etag; absent keys read as undefined", async () => {
      const { store, seed } = await factory.create();
      assert.equal(await seed.write("a/b.json", Buffer.from('{"x":1}')), true);
      const got = await store.read("a/b.json");
      assert.equal(got?.data.toString(), '{"x":1}');
      assert.ok(got?.etag);
      const head = await store.head("a/b.json");
      assert.equal(head?.size, 7);
      assert.equal(head?.key, "a/b.json");
      assert.equal(await store.read("a/missing"), undefined);
      assert.equal(await store.head("a/missing"), undefined);
      assert.equal(await store.head("a"), undefined, "a folder is not an object");
    });

    it("streams a file body, whole and by byte range; a missing key rejects with not-found", async () => {
      const { store, seed } = await factory.create();
      const dir = await mkdtemp(path.join(tmpdir(), "assetkit-body-"));
      const file = path.join(dir, "body");
      await writeFile(file, "0123456789");
      await seed.write("blob", { file, size: 10 });
      assert.equal(await text(await store.openRead("blob")), "0123456789");
      assert.equal(await text(await store.openRead("blob", { start: 3, end: 6 })), "3456");
      await assert.rejects(store.openRead("nope"), (err: unknown) => err instanceof StoreError && err.code === "not-found");
    });

    it("read() refuses an object over the document limit with one line naming it; 16 MiB exactly is read", async () => {
      const { store, seed } = await factory.create();
      const dir = await mkdtemp(path.join(tmpdir(), "assetkit-large-"));
      const file = path.join(dir, "large");
      await writeFile(file, Buffer.alloc(MAX_DOCUMENT_BYTES + 1, "x"));
      await seed.write("big.versions", { file, size: MAX_DOCUMENT_BYTES + 1 });
      await seed.write("limit.versions", Buffer.alloc(MAX_DOCUMENT_BYTES, "y"));
      await assert.rejects(store.read("big.versions"), (err: unknown) => {
        assert.ok(err instanceof StoreError && err.code === "failed", String(err));
        assert.match(err.message, /cannot read big\.versions: larger than 16 MiB/);
        assert.doesNotMatch(err.message, /\n/);
        return true;
      });
      assert.equal((await store.read("limit.versions"))?.data.length, MAX_DOCUMENT_BYTES);
    });

    it("keeps zero-byte objects and keys with spaces, unicode and URL-special characters", async () => {
      const { store, seed } = await factory.create();
      const keys = ["empty", "dir/with space/ünïcødé + 100%.txt", "dir/q?x=1#frag&y"];
      for (const key of keys) await seed.write(key, Buffer.from(key === "empty" ? "" : key));
      assert.equal((await store.head("empty"))?.size, 0);
      assert.equal((await store.read("empty"))?.data.length, 0);
      for (const key of keys.slice(1)) assert.equal((await store.read(key))?.data.toString(), key);
      if (!store.listable) return;
      const listed = await collect(store.list("dir/"));
      assert.deepEqual(listed.map((o) => o.key).sort(), keys.slice(1).sort());
    });

    it("lists by plain string prefix, at any depth, across pages (> 1,000 objects)", async (t) => {
      const { store, seed } = await factory.create();
      if (!store.listable) {
        await assert.rejects(collect(store.list("")), (err: unknown) => err instanceof StoreError && err.code === "unsupported");
        return t.skip("store cannot list");
      }
      const keys = Array.from({ length: 1100 }, (_, i) => `many/v${String(i).padStart(4, "0")}.meta`);
      await inBatches(keys, 64, (key) => seed.write(key, Buffer.from("m")));
      await seed.write("many.versions", Buffer.from("{}"));
      await seed.write("manyother/x", Buffer.from("x"));
      await seed.write("deep/a/b/c/d", Buffer.from("d"));
      const listed = (await collect(store.list("many/"))).map((o) => o.key);
      assert.equal(listed.length, 1100);
      assert.deepEqual(listed.sort(), keys);
      assert.deepEqual((await collect(store.list("many"))).length, 1102, "a prefix is not only a folder");
      assert.deepEqual(
        (await collect(store.list("deep/"))).map((o) => [o.key, o.size]),
        [["deep/a/b/c/d", 1]],
      );
      assert.deepEqual(await collect(store.list("absent/")), []);
    });

    it("a shallow listing has every object directly under the prefix; S3, GCS and a folder leave the sub-folders' out", async () => {
      const { store, seed } = await factory.create();
      if (!store.listable) return;
      for (const key of ["flat/a.meta", "flat/b.meta", "flat/1.0.0/f", "flat/1.0.0/g/h", "flatter"]) await seed.write(key, Buffer.from("x"));
      const listed = (await collect(store.list("flat/", { shallow: true }))).map((o) => o.key).sort();
      assert.deepEqual(
        listed.filter((key) => !key.slice("flat/".length).includes("/")),
        ["flat/a.meta", "flat/b.meta"],
      );
      if (/^(s3|gcs|file)\b/.test(factory.name)) assert.deepEqual(listed, ["flat/a.meta", "flat/b.meta"]);
      else assert.equal(listed.length, 4, "the others list every depth, as the hint allows");
    });

    it("deletes objects; deleting an absent key is not an error", async () => {
      const { store } = await factory.create();
      if (!store.writable) return;
      await store.write("gone/x", Buffer.from("x"));
      await store.delete("gone/x");
      assert.equal(await store.head("gone/x"), undefined);
      await store.delete("gone/x");
    });

    it("copies an object inside the store, over any destination; the copy outlives changes to the source", async (t) => {
      const { store, seed } = await factory.create();
      await seed.write("cp/source", Buffer.from("original bytes"));
      if (!store.writable) {
        await assert.rejects(store.copy("cp/source", "cp/dest"), (err: unknown) => err instanceof StoreError && err.code === "read-only");
        return t.skip("read-only store");
      }
      await store.write("cp/dest", Buffer.from("older content"));
      await store.copy("cp/source", "cp/dest");
      await store.copy("cp/source", "cp/nested/deeper/dest");
      assert.equal((await store.read("cp/dest"))?.data.toString(), "original bytes");
      assert.equal((await store.head("cp/nested/deeper/dest"))?.size, 14);
      await store.write("cp/source", Buffer.from("replaced"));
      assert.equal((await store.read("cp/dest"))?.data.toString(), "original bytes", "a copy, not a reference to the source");
      await store.delete("cp/source");
      assert.equal(await text(await store.openRead("cp/nested/deeper/dest")), "original bytes");
    });

    it("a copy with an expected source copies only that object: a replaced or missing source resolves false, writing nothing", async (t) => {
      const { store } = await factory.create();
      if (!store.writable) return t.skip("read-only store");
      const original = Buffer.from("original bytes");
      await store.write("cs/source", original);
      const { etag } = (await store.head("cs/source"))!;
      const sha256 = createHash("sha256").update(original).digest("hex");
      assert.equal(await store.copy("cs/source", "cs/kept", { etag, sha256 }), true);
      assert.equal((await store.read("cs/kept"))?.data.toString(), "original bytes");
      // Same size, one byte changed, written by another writer: the copy must not carry it.
      await store.write("cs/source", Buffer.from("original bytez"));
      assert.equal(await store.copy("cs/source", "cs/refused", { etag, sha256 }), false);
      assert.equal(await store.head("cs/refused"), undefined, "nothing written");
      assert.equal(await store.copy("cs/missing", "cs/refused", { etag, sha256 }), false, "a missing source is not proven either");
      assert.equal(await store.head("cs/refused"), undefined);
    });

    it("copying a missing object rejects with not-found and creates nothing", async (t) => {
      const { store } = await factory.create();
      if (!store.writable) return t.skip("read-only store");
      await assert.rejects(store.copy("cp/missing", "cp/dest"), (err: unknown) => err instanceof StoreError && err.code === "not-found");
      assert.equal(await store.head("cp/dest"), undefined);
    });

    it("refuses writes on a read-only store with code read-only", async (t) => {
      const { store } = await factory.create();
      if (store.writable) return t.skip("writable store");
      await assert.rejects(store.write("x", Buffer.from("x")), (err: unknown) => err instanceof StoreError && err.code === "read-only");
    });

    describe("conditional writes", { skip: false }, () => {
      it("ifAbsent creates once and never replaces", async (t) => {
        const { store } = await factory.create();
        if (!store.writable) return t.skip("read-only store");
        assert.equal(await store.write("c/claim", Buffer.from("first"), { ifAbsent: true }), true);
        assert.equal(await store.write("c/claim", Buffer.from("second"), { ifAbsent: true }), false);
        assert.equal((await store.read("c/claim"))?.data.toString(), "first");
      });

      it("ifAbsent from a streamed file body refuses an existing key too", async (t) => {
        const { store } = await factory.create();
        if (!store.writable) return t.skip("read-only store");
        const dir = await mkdtemp(path.join(tmpdir(), "assetkit-body-"));
        await writeFile(path.join(dir, "f"), "file body");
        assert.equal(await store.write("c/f", { file: path.join(dir, "f"), size: 9 }, { ifAbsent: true }), true);
        assert.equal(await store.write("c/f", { file: path.join(dir, "f"), size: 9 }, { ifAbsent: true }), false);
      });

      it("ifMatch swaps only from the etag it was given", async (t) => {
        const { store } = await factory.create();
        if (!store.writable) return t.skip("read-only store");
        await store.write("c/index", Buffer.from("v1"));
        const v1 = await store.read("c/index");
        assert.ok(v1);
        assert.equal(await store.write("c/index", Buffer.from("v2"), { ifMatch: v1.etag }), true);
        assert.equal(await store.write("c/index", Buffer.from("v3"), { ifMatch: v1.etag }), false, "stale etag");
        assert.equal((await store.read("c/index"))?.data.toString(), "v2");
        assert.equal(await store.write("c/none", Buffer.from("x"), { ifMatch: v1.etag }), false, "missing key");
        assert.equal(await store.head("c/none"), undefined);
        const head = await store.head("c/index");
        assert.ok(head);
        assert.equal(await store.write("c/index", Buffer.from("v4"), { ifMatch: head.etag }), true, "head etag works too");
      });

      it("eight racing ifAbsent writers: exactly one wins", async (t) => {
        const { store } = await factory.create();
        if (!store.writable) return t.skip("read-only store");
        const wins = await Promise.all(Array.from({ length: 8 }, (_, i) => store.write("race/claim", Buffer.from(`w${i}`), { ifAbsent: true })));
        assert.equal(wins.filter(Boolean).length, 1);
        const winner = wins.indexOf(true);
        assert.equal((await store.read("race/claim"))?.data.toString(), `w${winner}`);
      });

      it("eight racing compare-and-swap loops lose no update", async (t) => {
        const { store } = await factory.create();
        if (!store.writable) return t.skip("read-only store");
        await store.write("race/list", Buffer.from("[]"));
        await Promise.all(
          Array.from({ length: 8 }, async (_, i) => {
            for (;;) {
              const cur = await store.read("race/list");
              assert.ok(cur);
              const next = [...(JSON.parse(cur.data.toString()) as number[]), i];
              if (await store.write("race/list", Buffer.from(JSON.stringify(next)), { ifMatch: cur.etag })) return;
            }
          }),
        );
        const final = JSON.parse((await store.read("race/list"))!.data.toString()) as number[];
        assert.deepEqual(final.sort(), [0, 1, 2, 3, 4, 5, 6, 7]);
      });
    });
  });
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

async function inBatches<T>(items: T[], size: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}
