// Registry conformance: the publish/resolve/fetch protocols on every layout of the matrix (layouts.ts): the key-value
// layout over every Store, and the OCI layout on the test registries. Read-only stores (HTTP) publish through their
// writable writer and are read through the store under test. Cases about one layout's own shape say so and are
// skipped, with the reason, on the others.
import assert from "node:assert/strict";
import { mkdtemp, open, readFile, readdir, stat, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { AssetsDir } from "../../src/local/assets-dir.ts";
import { AssetError } from "../../src/base/errors.ts";
import type { AssetRegistry, PublishRequest } from "../../src/registry/asset-registry.ts";
import type { Promotion } from "../../src/registry/channels.ts";
import { prepareInput } from "../../src/registry/manifest.ts";
import { ARTIFACT_TYPE, CONFIG_MEDIA_TYPE, DIGEST_ANNOTATION, MANIFEST_MEDIA_TYPE, TITLE } from "../../src/registry/oci/artifact.ts";
import { parseSpec } from "../../src/registry/spec.ts";
import type { Store } from "../../src/store/store.ts";
import { writeTree } from "../helpers/cli.ts";
import { skipReason, uniquePrefix } from "./factory.ts";
import { keyValueRegistry, layouts } from "./layouts.ts";
import { testTransfers } from "../helpers/settings.ts";

async function folder(files: Record<string, string | Buffer>): Promise<string> {
  return writeTree(await mkdtemp(path.join(tmpdir(), "assetkit-in-")), files);
}

async function publish(reg: AssetRegistry, name: string, dir: string, extra: Partial<PublishRequest> = {}) {
  return reg.publish({ name, input: await prepareInput(dir), createdBy: "test", source: {}, metadata: {}, ...extra });
}

async function fetchTo(reg: AssetRegistry, spec: string) {
  const dir = new AssetsDir(await mkdtemp(path.join(tmpdir(), "assetkit-assets-")), testTransfers());
  const parsed = parseSpec(spec);
  const r = await reg.resolve(parsed);
  const copy = await dir.materialise(r.name, r.version, r.meta, (rel, range) => reg.openFile(r.name, r.version, rel, range), parsed.subPath);
  return { ...r, ...copy, dir };
}

const json = async (store: Store, key: string) => JSON.parse((await store.read(key))!.data.toString()) as Record<string, unknown>;

/** Why a case about the key-value layout's own keys does not run on `layout`, or undefined. */
const keyValueOnly = (layout: string, why: string) => (layout === "key-value" ? undefined : why);

for (const factory of layouts) {
  describe(`registry conformance: ${factory.name}`, { skip: skipReason(factory) }, () => {
    it("bumps default/minor/major then inside a series, and resolves partial specs and ranges", async () => {
      const layout = await factory.create();
      const writer = layout.openWriter();
      const dir = await folder({ "a.txt": "a", "sub/b.bin": "b" });
      assert.equal((await publish(writer, "models/m", dir)).version, "1.0.0");
      assert.equal((await publish(writer, "models/m", dir, { bump: "minor" })).version, "1.1.0");
      assert.equal((await publish(writer, "models/m", dir, { bump: "major" })).version, "2.0.0");
      const series = parseSpec("models/m:1").selector as PublishRequest["series"];
      assert.equal((await publish(writer, "models/m", dir, { series, bump: "minor" })).version, "1.2.0");
      const reader = layout.open();
      assert.equal((await reader.resolve(parseSpec("models/m:1"))).version, "1.2.0");
      assert.equal((await reader.resolve(parseSpec("models/m"))).version, "2.0.0");
      assert.equal((await reader.resolve(parseSpec("models/m:^1.1"))).version, "1.2.0");
      assert.deepEqual((await reader.versions("models/m")).versions, ["2.0.0", "1.2.0", "1.1.0", "1.0.0"]);
    });

    it(
      "writes exactly the modelkit-compatible layout",
      { skip: keyValueOnly(factory.layout, "the OCI layout writes manifests, not keys: see its own case") },
      async () => {
        const { keyValue } = await factory.create();
        const { seed } = keyValue!;
        const writer = keyValueRegistry(seed);
        const dir = await publish(writer, "layout/dir", await folder({ "z.txt": "z", "a/b.txt": "bb" }), { metadata: { team: "nlp" } });
        await publish(writer, "layout/file", await folder({ "only.bin": "1234" }).then((d) => path.join(d, "only.bin")));
        const keys: string[] = [];
        if (seed.listable) for await (const o of seed.list("layout")) keys.push(o.key);
        assert.deepEqual(keys.sort(), [
          "layout/dir.versions",
          "layout/dir/1.0.0.meta",
          "layout/dir/1.0.0/a/b.txt",
          "layout/dir/1.0.0/z.txt",
          "layout/file.versions",
          "layout/file/1.0.0",
          "layout/file/1.0.0.meta",
        ]);
        assert.deepEqual(await json(seed, "layout/dir.versions"), { versions: ["1.0.0"], digests: { "1.0.0": dir.digest } }, "modelkit's index, plus digests");
        const meta = await json(seed, "layout/dir/1.0.0.meta");
        assert.equal(meta.is_directory, true);
        assert.deepEqual(meta.contents, ["a/b.txt", "z.txt"]);
        assert.match(meta.push_date as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
        const block = meta.assetkit as {
          schema: number;
          part_size: number;
          digest: string;
          files: { path: string; size: number; sha256: string; parts?: string[] }[];
          metadata: object;
        };
        assert.equal(block.schema, 2);
        assert.equal(block.part_size, 16 * 1024 * 1024);
        assert.ok(
          block.files.every((f) => f.parts === undefined),
          "small files list no part hashes",
        );
        assert.match(block.digest, /^sha256:[0-9a-f]{64}$/);
        assert.deepEqual(
          block.files.map((f) => [f.path, f.size]),
          [
            ["a/b.txt", 2],
            ["z.txt", 1],
          ],
        );
        assert.equal(block.files[1]!.sha256, "594e519ae499312b29433b7dd8a97ff068defcba9755b6d5d00e84c524d67b06");
        assert.deepEqual(block.metadata, { team: "nlp" });
        const fileMeta = await json(seed, "layout/file/1.0.0.meta");
        assert.equal(fileMeta.is_directory, false);
        assert.deepEqual(fileMeta.contents, []);
        assert.equal((await seed.read("layout/file/1.0.0"))!.data.toString(), "1234");
      },
    );

    it(
      "writes one ModelPack manifest per version: a titled raw layer per file, the meta in the config, the digest annotated",
      { skip: factory.layout === "oci" ? undefined : "the key-value layout writes keys: see its own case" },
      async () => {
        const layout = await factory.create();
        const { client, repository } = layout.oci!;
        const writer = layout.openWriter();
        const dir = await publish(writer, "layout/dir", await folder({ "z.txt": "z", "a/b.txt": "bb" }), { metadata: { team: "nlp" } });
        await publish(writer, "layout/file", await folder({ "only.bin": "1234" }).then((d) => path.join(d, "only.bin")));
        const artifact = async (name: string) => {
          const manifest = JSON.parse((await client.getManifest(repository(name), "1.0.0"))!.data.toString()) as {
            mediaType: string;
            artifactType: string;
            config: { mediaType: string; digest: string; size: number };
            layers: { mediaType: string; digest: string; size: number; annotations: Record<string, string> }[];
            annotations: Record<string, string>;
          };
          const config = JSON.parse((await client.readBlob(repository(name), manifest.config.digest, manifest.config.size)).toString()) as {
            descriptor: { name: string };
            modelfs: { diffIds: string[] };
            assetkit: { is_directory: boolean; contents: string[]; assetkit: { digest: string; metadata: object; files: { path: string; etag: string }[] } };
          };
          const tags = (await layout.snapshot(name)).map((line) => line.split(" ")[0]!);
          return { manifest, config, tags };
        };

        const { manifest, config, tags } = await artifact("layout/dir");
        assert.deepEqual([manifest.mediaType, manifest.artifactType, manifest.config.mediaType], [MANIFEST_MEDIA_TYPE, ARTIFACT_TYPE, CONFIG_MEDIA_TYPE]);
        const z = "sha256:594e519ae499312b29433b7dd8a97ff068defcba9755b6d5d00e84c524d67b06";
        assert.deepEqual(
          manifest.layers.map((l) => [l.annotations[TITLE], l.mediaType, l.size]),
          [
            ["a/b.txt", "application/vnd.cncf.model.weight.v1.raw", 2],
            ["z.txt", "application/vnd.cncf.model.weight.v1.raw", 1],
          ],
        );
        assert.equal(manifest.layers[1]!.digest, z, "a layer is the file's bytes, named by their sha256");
        assert.equal(manifest.annotations[DIGEST_ANNOTATION], dir.digest);
        assert.equal(config.descriptor.name, "layout/dir");
        assert.deepEqual(
          config.modelfs.diffIds,
          manifest.layers.map((l) => l.digest),
        );
        assert.deepEqual([config.assetkit.is_directory, config.assetkit.contents], [true, ["a/b.txt", "z.txt"]]);
        assert.deepEqual(config.assetkit.assetkit.metadata, { team: "nlp" });
        assert.equal(config.assetkit.assetkit.digest, dir.digest);
        assert.deepEqual(
          config.assetkit.assetkit.files.map((f) => [f.path, f.etag]),
          manifest.layers.map((l) => [l.annotations[TITLE], l.digest]),
          "each file's etag is its blob digest",
        );
        assert.deepEqual(
          tags.filter((t) => !t.startsWith("_")),
          ["1.0.0"],
          "one version tag; the rest are assetkit's own (receipts, and holds where tags cannot be deleted)",
        );

        const single = await artifact("layout/file");
        assert.deepEqual(
          single.manifest.layers.map((l) => [l.annotations[TITLE], l.size]),
          [["file", 4]],
          "a single file is titled by the name's last segment",
        );
        assert.deepEqual([single.config.assetkit.is_directory, single.config.assetkit.contents], [false, []]);
      },
    );

    it("never rewrites a version: an explicit taken version fails and changes nothing", async () => {
      const layout = await factory.create();
      await publish(layout.openWriter(), "imm", await folder({ f: "one" }), { version: "1.0.0" });
      const before = await layout.snapshot("imm");
      await assert.rejects(
        publish(layout.openWriter(), "imm", await folder({ f: "two" }), { version: "1.0.0" }),
        (err: unknown) => err instanceof AssetError && /imm:1\.0\.0 already exists/.test(err.message),
      );
      assert.deepEqual(await layout.snapshot("imm"), before, "nothing written, nothing left behind");
      assert.equal(await readFile(path.join((await fetchTo(layout.open(), "imm:1.0.0")).path, "f"), "utf8"), "one");
    });

    it("eight concurrent publishers get eight distinct versions, none lost, each holding what its publisher sent", async () => {
      const layout = await factory.create();
      const dirs = await Promise.all(Array.from({ length: 8 }, (_, i) => folder({ "w.txt": `writer ${i}` })));
      const results = await Promise.all(dirs.map((d) => publish(layout.openWriter(), "race/m", d)));
      const versions = results.map((r) => r.version);
      assert.equal(new Set(versions).size, 8, versions.join(","));
      const reader = layout.open();
      assert.deepEqual([...(await reader.versions("race/m")).versions].sort(), [...versions].sort());
      for (const [i, r] of results.entries()) {
        assert.equal(await readFile(path.join((await fetchTo(reader, `race/m:${r.version}`)).path, "w.txt"), "utf8"), `writer ${i}`);
      }
    });

    it("--if-changed publishes nothing when the latest version has the same digest", async () => {
      const writer = (await factory.create()).openWriter();
      const dir = await folder({ "same.txt": "same" });
      const first = await publish(writer, "ic", dir);
      const again = await publish(writer, "ic", dir, { ifChanged: true });
      assert.deepEqual(again, { ...first, published: false, uploaded: { files: 0, bytes: 0 } });
      const changed = await publish(writer, "ic", await folder({ "same.txt": "different" }), { ifChanged: true });
      assert.equal(changed.published, true);
      assert.equal(changed.version, "1.1.0");
    });

    it("fetches verified, with zero-byte files and nested names; a sub-path spec downloads only that part", async () => {
      const layout = await factory.create();
      await publish(layout.openWriter(), "deep/nested/name", await folder({ empty: "", "idx/faiss.index": "vectors", "big.bin": "x".repeat(5000) }));
      const whole = await fetchTo(layout.open(), "deep/nested/name:1");
      assert.equal(whole.verified, true);
      assert.equal(await readFile(path.join(whole.path, "empty"), "utf8"), "");
      assert.equal(await readFile(path.join(whole.path, "idx/faiss.index"), "utf8"), "vectors");
      const part = await fetchTo(layout.open(), "deep/nested/name:1.0.0[idx/faiss.index]");
      assert.equal(await readFile(part.path, "utf8"), "vectors");
      const version = path.dirname(path.dirname(part.path));
      assert.deepEqual(await readdir(version), ["idx"], "only the part was downloaded");
    });

    it("detects a corrupted object, names it, and leaves no partial version behind", async () => {
      const layout = await factory.create();
      // Bytes of this run only: a registry keeps one blob per content, which other tests may share.
      const original = Buffer.from(`original ${uniquePrefix()}`);
      const tampered = Buffer.from(original);
      tampered[0]! ^= 0x20;
      await publish(layout.openWriter(), "corrupt", await folder({ "ok.txt": "fine", "bad.bin": original }));
      await layout.damage("corrupt", "1.0.0", "bad.bin", tampered);
      const assets = new AssetsDir(await mkdtemp(path.join(tmpdir(), "assetkit-assets-")), testTransfers());
      const reader = layout.open();
      const r = await reader.resolve(parseSpec("corrupt"));
      await assert.rejects(
        assets.materialise(r.name, r.version, r.meta, (rel, range) => reader.openFile(r.name, r.version, rel, range)),
        (err: unknown) => err instanceof AssetError && /integrity check failed for corrupt:1\.0\.0\/bad\.bin/.test(err.message),
      );
      assert.deepEqual(await readdir(path.join(assets.root, "corrupt")), [], "nothing half-written");
    });

    it(
      "republishing never copies an object damaged since: that file is uploaded from the local file, the others still copied",
      {
        skip: keyValueOnly(
          factory.layout,
          "a registry names a blob by its digest: a republish refers to the blob the repository holds (HEAD) and copies nothing; damage in the registry's storage is caught at fetch",
        ),
      },
      async (t) => {
        const { seed, uri } = (await factory.create()).keyValue!;
        if (!seed.writable) return t.skip("read-only store");
        const warnings: string[] = [];
        const writer = keyValueRegistry(seed, (m) => warnings.push(m));
        const dir = await folder({ "weights.bin": "original weights", "vocab.txt": "untouched" });
        await publish(writer, "dmg", dir);
        const damaged = Buffer.from("original weighTs"); // same size, one byte changed
        if (factory.name === "file") {
          // In place, its modification time put back: a stat of the file sees no change, only its bytes tell.
          const file = path.join(new URL(uri).pathname, "dmg/1.0.0/weights.bin");
          const { mtime } = await stat(file);
          const handle = await open(file, "r+");
          await handle.write(damaged, 0, damaged.length, 0);
          await handle.close();
          await utimes(file, mtime, mtime);
        } else {
          await seed.write("dmg/1.0.0/weights.bin", damaged);
        }
        const next = await publish(writer, "dmg", dir);
        assert.equal(next.version, "1.1.0");
        assert.deepEqual(next.uploaded, { files: 1, bytes: 16 }, "the damaged file came from the local file");
        assert.deepEqual(next.copied, { files: 1, bytes: 9 }, "the untouched one was still copied inside the store");
        assert.match(warnings.join("\n"), /weights\.bin of dmg:1\.0\.0 is no longer the object its meta lists/);
        const got = await fetchTo(keyValueRegistry(seed), "dmg:1.1.0");
        assert.equal(await readFile(path.join(got.path, "weights.bin"), "utf8"), "original weights");
        assert.equal(await readFile(path.join(got.path, "vocab.txt"), "utf8"), "untouched");
      },
    );

    it(
      "records each object's etag outside the digest; a previous meta without them is copied only where the bytes are checked",
      { skip: keyValueOnly(factory.layout, "a layer's etag is its blob digest, asserted in the OCI artifact case") },
      async (t) => {
        const { seed } = (await factory.create()).keyValue!;
        if (!seed.writable) return t.skip("read-only store");
        const writer = keyValueRegistry(seed);
        const dir = await folder({ "a.bin": "aaaa", "b.bin": "bb" });
        const first = await publish(writer, "old", dir);
        const meta = await json(seed, "old/1.0.0.meta");
        const files = (meta.assetkit as { files: { path: string; etag?: string }[] }).files;
        const bare = (etag: string | undefined) => etag?.replace(/^"|"$/g, ""); // Azure lists ETags bare, heads them quoted
        for (const f of files) assert.equal(bare(f.etag), bare((await seed.head(`old/1.0.0/${f.path}`))!.etag), `${f.path}: the stored object's etag`);
        // As an earlier assetkit wrote it: no etags, the same digest.
        for (const f of files) delete f.etag;
        await seed.write("old/1.0.0.meta", Buffer.from(JSON.stringify(meta)));
        assert.equal((await keyValueRegistry(seed).meta("old", "1.0.0")).digest, first.digest);
        const next = await publish(keyValueRegistry(seed), "old", dir);
        assert.equal(next.digest, first.digest);
        // The folder store (under the HTTP store too) hashes what it links; the object stores prove an object by its etag only.
        const hashesLinks = factory.name === "file" || factory.name === "http";
        assert.deepEqual(next.copied, hashesLinks ? { files: 2, bytes: 6 } : { files: 0, bytes: 0 });
        assert.deepEqual(next.uploaded, hashesLinks ? { files: 0, bytes: 0 } : { files: 2, bytes: 6 });
        const third = await publish(keyValueRegistry(seed), "old", dir);
        assert.deepEqual(third.copied, { files: 2, bytes: 6 }, "1.1.0 recorded its etags: copied again");
      },
    );

    it("refuses hostile metas that point outside the assets dir", async () => {
      const layout = await factory.create();
      const evil = { push_date: "2026-01-01T00:00:00Z", is_directory: true, contents: ["../../escape.txt"] };
      await layout.plant("evil", [{ version: "1.0.0", meta: evil, files: {} }]);
      await assert.rejects(layout.open().resolve(parseSpec("evil:1.0.0")), /unsafe path "\.\.\/\.\.\/escape\.txt"/);
      await layout.plant("evil2", [{ version: "1.0.0", meta: { ...evil, contents: ["/etc/passwd"] }, files: {} }]);
      await assert.rejects(layout.open().resolve(parseSpec("evil2")), /absolute/);
    });

    it(
      "ignores a hostile version string in the index",
      { skip: keyValueOnly(factory.layout, "the tag list is the OCI layout's index, and a tag cannot hold '/'") },
      async () => {
        const { store, seed } = (await factory.create()).keyValue!;
        await seed.write("evil/1.0.0.meta", Buffer.from(JSON.stringify({ push_date: "2026-01-01T00:00:00Z", is_directory: false })));
        await seed.write("evil.versions", Buffer.from(JSON.stringify({ versions: ["1.0.0", "../../../x"] })));
        assert.deepEqual((await keyValueRegistry(store).versions("evil")).versions, ["1.0.0"]);
      },
    );

    it("resolves over many versions, and fetches a version without checksums unverified", async (t) => {
      const layout = await factory.create();
      // As modelkit writes a single-file meta: no checksums, and no `contents` key at all.
      const meta = { push_date: "2026-11-22T01:23:00.369580+00:00", is_directory: false };
      const versions = Array.from({ length: 300 }, (_, i) => `1.${i}.0`);
      await layout.plant(
        "many",
        versions.map((version) => ({ version, meta, files: { "": Buffer.from(version) } })),
      );
      assert.equal((await layout.open().resolve(parseSpec("many:1"))).version, "1.299.0");
      assert.equal((await layout.open().resolve(parseSpec("many:1.150"))).version, "1.150.0");
      const fetched = await fetchTo(layout.open(), "many:1.7.0");
      assert.equal(fetched.verified, false, "a meta without checksums is fetched unverified");
      assert.equal(await readFile(fetched.path, "utf8"), "1.7.0");
      // The key-value layout's index is a document of its own: without it, a listable store lists the metas.
      const { keyValue } = layout;
      if (!keyValue?.store.listable) return t.diagnostic("no listing fallback: the tag list is the index, or the store is not listable");
      await keyValue.seed.delete("many.versions");
      assert.equal((await layout.open().resolve(parseSpec("many:1"))).version, "1.299.0", "no index: listing fallback");
    });

    it("channels: promote, resolve and fetch by channel, roll back; the history keeps every move, newest first", async () => {
      const layout = await factory.create();
      const writer = layout.openWriter();
      await publish(writer, "svc", await folder({ f: "one" }));
      const two = await publish(writer, "svc", await folder({ f: "two" }));
      const promotion = (): Promotion => ({ promoted_at: new Date().toISOString(), promoted_by: "test", source: {} });
      const moved = async (version: string) => {
        const r = await writer.promote("svc", "production", version, promotion());
        return [r.previous, r.changed];
      };
      assert.deepEqual(await moved("1.0.0"), [undefined, true]);
      assert.deepEqual(await moved("1.1.0"), ["1.0.0", true]);
      assert.deepEqual(await moved("1.1.0"), ["1.1.0", false], "a move onto the same version changes nothing");
      assert.equal((await layout.open().resolveDigest(parseSpec("svc:production"))).digest, two.digest);
      const back = await writer.rollback("svc", "production", promotion());
      assert.deepEqual([back.version, back.previous], ["1.0.0", "1.1.0"]);
      const reader = layout.open();
      assert.equal(await readFile(path.join((await fetchTo(reader, "svc:production")).path, "f"), "utf8"), "one");
      const { history } = (await reader.aliases("svc")).table.production!;
      assert.deepEqual(
        history!.map((m) => [m.version, m.previous ?? null, m.rollback ?? false]),
        [
          ["1.0.0", "1.1.0", true],
          ["1.1.0", "1.0.0", false],
          ["1.0.0", null, false],
        ],
      );
    });

    it("refuses to publish to a read-only store with a clear message", async (t) => {
      const registry = (await factory.create()).open();
      if (registry.writable) return t.skip("writable store");
      await assert.rejects(publish(registry, "ro", await folder({ f: "x" })), /read-only: publish to a writable store/);
    });
  });
}
