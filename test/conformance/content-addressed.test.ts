// The content-addressed layout (docs/content-addressed.md) on every Store of the matrix: a republish sends only the
// changed files and makes no request per unchanged one; both versions fetch byte-identical and verified; prune keeps
// the blobs a remaining version shares, gc removes orphans; a damaged blob is caught; a sweep racing a publish
// never leaves a version listing a deleted blob; promote --to converts to and from modelkit's layout.
import assert from "node:assert/strict";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, it } from "node:test";
import { AssetsDir } from "../../src/local/assets-dir.ts";
import { AssetError } from "../../src/base/errors.ts";
import { prepareInput } from "../../src/registry/manifest.ts";
import { blobKey, blobPrefix, claimKey, sweepKey, type LayoutName } from "../../src/registry/layout.ts";
import { deleteVersions } from "../../src/registry/prune.ts";
import { Registry, type PublishRequest } from "../../src/registry/registry.ts";
import { parseSpec } from "../../src/registry/spec.ts";
import { sweepBlobs } from "../../src/registry/sweep.ts";
import type { Store } from "../../src/store/store.ts";
import { writeTree } from "../helpers/cli.ts";
import { factories, skipReason } from "./stores.ts";
import { TEST_SETTINGS, testTransfers } from "../helpers/settings.ts";

const registry = (store: Store, layout?: LayoutName, warn?: (m: string) => void) =>
  new Registry(store, { settings: TEST_SETTINGS, versioning: "semver", ...(layout ? { layout } : {}), ...(warn ? { warn } : {}) });

const FILES = 40;
/** A folder of FILES files (f00 … f39, each its own content) plus two files with equal content. */
function tree(changed: Record<string, string> = {}): Record<string, string> {
  const files: Record<string, string> = { "dup/a.txt": "same bytes", "dup/b.txt": "same bytes" };
  for (let i = 0; i < FILES; i++) files[`data/f${String(i).padStart(2, "0")}.bin`] = `content of file ${i}\n`.repeat(20);
  return { ...files, ...changed };
}

async function folder(files: Record<string, string>): Promise<string> {
  return writeTree(await mkdtemp(path.join(tmpdir(), "assetkit-in-")), files);
}

async function publish(reg: Registry, name: string, dir: string, extra: Partial<PublishRequest> = {}) {
  return reg.publish({ name, input: await prepareInput(dir), createdBy: "test", source: {}, metadata: {}, ...extra });
}

async function fetchAll(reg: Registry, spec: string): Promise<Record<string, string>> {
  const dir = new AssetsDir(await mkdtemp(path.join(tmpdir(), "assetkit-assets-")), testTransfers());
  const r = await reg.resolve(parseSpec(spec));
  const copy = await dir.materialise(r.name, r.version, r.meta, (rel, range) => reg.openFile(r.name, r.version, rel, range));
  const out: Record<string, string> = {};
  for (const f of r.meta.files) out[f.path] = await readFile(path.join(copy.path, f.path), "utf8");
  return out;
}

/** The store, with each operation counted (a listing counts once) and the bytes of each write. */
function counted(store: Store) {
  const calls: { op: string; key: string; bytes: number }[] = [];
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== "function" || !["head", "read", "openRead", "list", "write", "copy", "delete"].includes(prop as string)) return value;
      return (key: string, ...rest: unknown[]) => {
        const body = rest[0] as { size?: number; length?: number } | undefined;
        calls.push({ op: prop as string, key, bytes: prop === "write" ? (body?.size ?? body?.length ?? 0) : 0 });
        return (value as (...a: unknown[]) => unknown).call(target, key, ...rest);
      };
    },
  });
  return { store: proxy, calls };
}

async function keysUnder(store: Store, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of store.list(prefix)) keys.push(o.key);
  return keys.sort();
}

for (const factory of factories) {
  describe(`content-addressed layout: ${factory.name}`, { skip: skipReason(factory) }, () => {
    it("a republish with one file changed sends that file only, with requests independent of the unchanged files; both versions fetch byte-identical", async () => {
      const { store, seed } = await factory.create();
      const first = await publish(registry(seed, "content-addressed"), "cas/m", await folder(tree()));
      assert.deepEqual(first.uploaded.files, FILES + 1, "the two equal files are one blob");
      assert.deepEqual(first.kept, { files: 1, bytes: 10 });

      const { store: counting, calls } = counted(seed);
      // No --layout: the asset keeps the layout of the version it follows.
      const next = await publish(registry(counting), "cas/m", await folder(tree({ "data/f07.bin": "changed\n" })));
      assert.equal(next.version, "1.1.0");
      assert.deepEqual(next.uploaded, { files: 1, bytes: 8 });
      assert.deepEqual(next.copied, { files: 0, bytes: 0 });
      assert.equal(next.kept?.files, FILES + 1);
      const data = calls.filter((c) => c.key.startsWith(blobPrefix("cas/m")));
      assert.deepEqual(
        data.map((c) => [c.op, c.bytes]),
        [["write", 8]],
        "one blob written, no request for the unchanged files",
      );
      assert.ok(
        calls.length <= 12,
        `${calls.length} store operations for a republish of ${FILES + 2} files: ${calls.map((c) => `${c.op} ${c.key}`).join(", ")}`,
      );

      if (seed.listable) {
        const own = (await keysUnder(seed, "cas/m/")).filter((k) => !k.startsWith(blobPrefix("cas/m")));
        assert.deepEqual(own, ["cas/m/1.0.0.meta", "cas/m/1.1.0.meta"], "no object under a version: its files are blobs");
      }
      const meta = JSON.parse((await seed.read("cas/m/1.1.0.meta"))!.data.toString()) as { assetkit: { layout?: string; files: object[] } };
      assert.equal(meta.assetkit.layout, "content-addressed");
      assert.ok(
        meta.assetkit.files.every((f) => !("etag" in f)),
        "no etags: a blob is never copied",
      );

      const reader = registry(store);
      assert.deepEqual(await fetchAll(reader, "cas/m:1.0.0"), tree());
      assert.deepEqual(await fetchAll(reader, "cas/m:1.1.0"), tree({ "data/f07.bin": "changed\n" }));
    });

    it("prune keeps the blobs a remaining version shares; gc's sweep removes the orphaned ones, not those a running publish may reuse", async () => {
      const { seed } = await factory.create();
      if (!seed.listable) return;
      const writer = registry(seed, "content-addressed");
      await publish(writer, "cas/p", await folder(tree()));
      await publish(writer, "cas/p", await folder(tree({ "data/f03.bin": "new three\n" })));
      const old = (await writer.meta("cas/p", "1.0.0")).files.find((f) => f.path === "data/f03.bin")!.sha256!;

      await deleteVersions(writer, "cas/p", ["1.0.0"], async () => new Set());
      // Prune's own sweep keeps blobs younger than gc's grace; the sweeps below, with none, take exactly the orphan.
      await seed.write(claimKey("cas/p", "1.2.0"), Buffer.from("{}"));
      const busy = await sweepBlobs(writer, "cas/p", { graceMs: 60_000, dryRun: false });
      assert.equal(busy.state, "busy", "a claim younger than the grace period: a publish may reuse any blob");
      assert.match(busy.why!, /a publish of cas\/p is running/);
      assert.ok(await seed.head(blobKey("cas/p", old)), "nothing swept while it runs");
      await seed.delete(claimKey("cas/p", "1.2.0"));

      const dry = await sweepBlobs(writer, "cas/p", { graceMs: 0, dryRun: true });
      assert.deepEqual(dry.deleted.blobs, 1);
      assert.ok(await seed.head(blobKey("cas/p", old)), "a dry run deletes nothing");
      const swept = await sweepBlobs(writer, "cas/p", { graceMs: 0, dryRun: false });
      assert.deepEqual(swept, { state: "swept", deleted: { blobs: 1, bytes: tree()["data/f03.bin"]!.length }, recent: 0 });
      assert.equal(await seed.head(blobKey("cas/p", old)), undefined);
      assert.equal((await keysUnder(seed, blobPrefix("cas/p"))).length, FILES + 1, "every blob 1.1.0 lists stays");
      assert.deepEqual(await fetchAll(registry(seed), "cas/p:1.1.0"), tree({ "data/f03.bin": "new three\n" }));
      assert.equal((await sweepBlobs(writer, "cas/p", { graceMs: 60_000, dryRun: false })).deleted.blobs, 0);
    });

    it("a sharded meta's shards are blobs too: a republish writes the changed shard only, the sweep keeps those still listed", async (t) => {
      const { store, seed } = await factory.create();
      if (!seed.listable) return t.skip("the sweep lists the store");
      process.env.ASSETKIT_META_SHARD_FILES = "10";
      t.after(() => delete process.env.ASSETKIT_META_SHARD_FILES);
      const writer = registry(seed, "content-addressed");
      await publish(writer, "cas/s", await folder(tree()));
      const { store: counting, calls } = counted(seed);
      await publish(registry(counting), "cas/s", await folder(tree({ "data/f07.bin": "changed\n" })));
      const written = calls.filter((c) => c.op === "write" && c.key.startsWith(blobPrefix("cas/s")));
      assert.equal(written.length, 2, "the changed file and the one shard listing it");
      assert.deepEqual(
        (await keysUnder(seed, "cas/s/")).filter((k) => !k.startsWith(blobPrefix("cas/s"))),
        ["cas/s/1.0.0.meta", "cas/s/1.1.0.meta"],
        "no shard under a version",
      );
      const meta = JSON.parse((await seed.read("cas/s/1.1.0.meta"))!.data.toString()) as { contents?: unknown; assetkit: { schema: number } };
      assert.equal(meta.assetkit.schema, 4);
      assert.equal(meta.contents, undefined, "no contents for modelkit, which cannot fetch it anyway");
      assert.deepEqual(await fetchAll(registry(store), "cas/s:1.1.0"), tree({ "data/f07.bin": "changed\n" }));

      await deleteVersions(writer, "cas/s", ["1.0.0"], async () => new Set());
      const swept = await sweepBlobs(writer, "cas/s", { graceMs: 0, dryRun: false });
      assert.equal(swept.deleted.blobs, 2, "1.0.0's own file and shard");
      assert.deepEqual(await fetchAll(registry(store), "cas/s:1.1.0"), tree({ "data/f07.bin": "changed\n" }));
    });

    it("a damaged blob fails the fetch of every version that shares it", async () => {
      const { store, seed } = await factory.create();
      const writer = registry(seed, "content-addressed");
      await publish(writer, "cas/d", await folder(tree()));
      await publish(writer, "cas/d", await folder(tree({ "data/f00.bin": "other\n" })));
      const shared = (await writer.meta("cas/d", "1.0.0")).files.find((f) => f.path === "data/f05.bin")!;
      const damaged = Buffer.from(tree()["data/f05.bin"]!.replace("c", "C")); // same size, one byte changed
      await seed.write(blobKey("cas/d", shared.sha256!), damaged);
      for (const version of ["1.0.0", "1.1.0"]) {
        await assert.rejects(
          fetchAll(registry(store), `cas/d:${version}`),
          (err: unknown) =>
            err instanceof AssetError && new RegExp(`integrity check failed for cas/d:${version.replaceAll(".", "\\.")}/data/f05\\.bin`).test(err.message),
        );
      }
    });

    it("a publish that meets a running sweep waits for it and reads its previous version again: it never lists a blob the sweep deleted", async () => {
      const { store, seed } = await factory.create();
      const writer = registry(seed, "content-addressed");
      await publish(writer, "cas/r", await folder(tree()));
      // A sweep is running; meanwhile 1.0.0 goes (pruned) and so do its blobs.
      const running = { state: "running", until: new Date(Date.now() + 60_000).toISOString() };
      await seed.write(sweepKey("cas/r"), Buffer.from(JSON.stringify(running)));
      const warnings: string[] = [];
      const publishing = publish(
        registry(seed, undefined, (m) => warnings.push(m)),
        "cas/r",
        await folder(tree({ "data/f01.bin": "one\n" })),
        {
          version: "2.0.0",
        },
      );
      await sleep(1500);
      await writer.withdraw("cas/r", ["1.0.0"]);
      await seed.delete("cas/r/1.0.0.meta");
      for (const key of seed.listable ? await keysUnder(seed, blobPrefix("cas/r")) : []) await seed.delete(key);
      await seed.write(sweepKey("cas/r"), Buffer.from(JSON.stringify({ ...running, state: "done" })));
      const outcome = await publishing;
      assert.match(warnings.join("\n"), /waiting for the sweep of cas\/r's unreferenced blobs to end/);
      if (seed.listable) assert.equal(outcome.uploaded.files, FILES + 1, "its previous version gone, every blob was stored again");
      assert.deepEqual(await fetchAll(registry(store), "cas/r:2.0.0"), tree({ "data/f01.bin": "one\n" }));
    });

    it("promote --to converts between the layouts both ways, and --layout modelkit switches an asset back", async () => {
      const { seed: a } = await factory.create();
      const { seed: b } = await factory.create();
      const promotion = { at: new Date().toISOString(), by: "test" };
      await publish(registry(a, "content-addressed"), "cas/x", await folder(tree()));
      const toModelkit = await registry(b, "modelkit").copyVersion(registry(a), "cas/x", "1.0.0", promotion);
      assert.equal(toModelkit.copied, true);
      assert.equal((await registry(b).meta("cas/x", "1.0.0")).layout, "modelkit");
      if (b.listable) assert.ok((await keysUnder(b, "cas/x/1.0.0/")).length === FILES + 2, "modelkit's keys, one per file");
      assert.deepEqual(await fetchAll(registry(b), "cas/x:1.0.0"), tree());

      // Back: a modelkit-layout version into a store where the asset is content-addressed.
      const { seed: c } = await factory.create();
      const back = await registry(c, "content-addressed").copyVersion(registry(b), "cas/x", "1.0.0", promotion);
      assert.equal(back.copied, true);
      assert.equal((await registry(c).meta("cas/x", "1.0.0")).layout, "content-addressed");
      assert.deepEqual(await fetchAll(registry(c), "cas/x:1.0.0"), tree());

      // A modelkit-layout version after a content-addressed one: its files under the version again.
      const next = await publish(registry(a, "modelkit"), "cas/x", await folder(tree({ "data/f09.bin": "nine\n" })));
      assert.equal((await registry(a).meta("cas/x", next.version)).layout, "modelkit");
      assert.deepEqual(await fetchAll(registry(a), `cas/x:${next.version}`), tree({ "data/f09.bin": "nine\n" }));
    });
  });
}
