// fetch with a cross-run cache (src/local/cross-run-cache.ts), against an in-memory stand-in for the Actions cache: what
// a hit may skip (the store) and what it may not (checking the content against the locked digest). The Actions
// cache itself (src/github/cache.ts over act's cache server) is exercised end to end in test/e2e/; here only its
// keys and the failures it must turn into warnings.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { cp, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";
import { fetchCommand } from "../../src/commands/fetch.ts";
import { lockCommand } from "../../src/commands/lock.ts";
import { publishCommand } from "../../src/commands/publish.ts";
import { createContext, type Context } from "../../src/commands/context.ts";
import type { CachedVersion, CrossRunCache } from "../../src/local/cross-run-cache.ts";
import { actionsCache, cacheKey } from "../../src/github/cache.ts";
import { PART_SIZE, prepareInput, type AssetMetaDocument } from "../../src/registry/manifest.ts";
import { scratch, writeTree } from "../helpers/cli.ts";

/** Entries as folders holding `content`, like the Actions cache's archives; `use` gets a throwaway copy. */
function memoryCache(root: string): CrossRunCache & { entries: Map<string, string> } {
  const entries = new Map<string, string>();
  const id = (v: CachedVersion): string => `${v.store}|${v.name}|${v.version}|${v.digest}`;
  return {
    entries,
    async restore(version, use) {
      const entry = entries.get(id(version));
      if (!entry) return undefined;
      const staging = await mkdtemp(path.join(root, "restore-"));
      try {
        await cp(entry, path.join(staging, "content"), { recursive: true });
        return await use(path.join(staging, "content"));
      } finally {
        await rm(staging, { recursive: true, force: true });
      }
    },
    async save(version, content, files) {
      const entry = path.join(await mkdtemp(path.join(root, "entry-")), "content");
      for (const rel of files) await cp(rel ? path.join(content, rel) : content, rel ? path.join(entry, rel) : entry);
      entries.set(id(version), entry);
    },
  };
}

async function setup(): Promise<{ dir: string; warnings: string[]; context(assetsDir: string, cache: CrossRunCache): Promise<Context> }> {
  const dir = await scratch();
  await writeTree(dir, { "idx/faiss.index": "index bytes", "idx/meta.json": "{}", "tok.json": "tokens" });
  const warnings: string[] = [];
  const context = async (assetsDir: string, cache: CrossRunCache): Promise<Context> => ({
    ...(await createContext(
      { store: path.join(dir, "store"), assetsDir: path.join(dir, assetsDir), lockfile: path.join(dir, "assets.lock") },
      { info: () => {}, warn: (m) => warnings.push(m) },
    )),
    crossRunCache: cache,
  });
  const ctx = await context("unused", memoryCache(dir));
  await publishCommand(ctx, { path: path.join(dir, "idx"), target: "indexes/docs", metadata: [] });
  await publishCommand(ctx, { path: path.join(dir, "tok.json"), target: "tokenizers/bpe", metadata: [] });
  await lockCommand(ctx, ["indexes/docs:1", "tokenizers/bpe:1", "indexes/docs:1[faiss.index]"]);
  return { dir, warnings, context };
}

describe("fetch with a cross-run cache", () => {
  it("saves what it downloads; a later run restores locked specs with the store gone, and writes the markers", async () => {
    const { dir, context } = await setup();
    const cache = memoryCache(dir);
    const cold = await fetchCommand(await context("run1", cache), ["indexes/docs:1", "tokenizers/bpe:1"]);
    assert.deepEqual(
      cold.resolved.map((a) => [a.local, a.cached]),
      [
        [false, false],
        [false, false],
      ],
    );
    assert.equal(cache.entries.size, 2);

    await rm(path.join(dir, "store"), { recursive: true }); // any store request would now fail
    const warm = await fetchCommand(await context("run2", cache), ["indexes/docs:1", "tokenizers/bpe:1", "indexes/docs:1[faiss.index]"]);
    assert.deepEqual(
      warm.resolved.map((a) => [a.local, a.cached, a.verified]),
      [
        [false, true, true],
        [false, true, true],
        [false, true, true],
      ],
    );
    assert.equal(await readFile(path.join(dir, "run2/indexes/docs/1.0.0/faiss.index"), "utf8"), "index bytes");
    assert.equal(await readFile(path.join(dir, "run2/tokenizers/bpe/1.0.0"), "utf8"), "tokens");
    assert.equal(warm.resolved[2]!.path, path.join(dir, "run2/indexes/docs/1.0.0/faiss.index"));
    assert.equal(warm.resolved[0]!.digest, cold.resolved[0]!.digest);

    const again = await fetchCommand(await context("run2", cache), ["indexes/docs:1", "tokenizers/bpe:1"]);
    assert.deepEqual(
      again.resolved.map((a) => a.local),
      [true, true],
      "a restored copy is a complete local copy",
    );
  });

  it("discards a cached copy that does not match the locked digest and downloads from the store", async () => {
    const { dir, warnings, context } = await setup();
    const cache = memoryCache(dir);
    await fetchCommand(await context("run1", cache), ["indexes/docs:1"]);
    await writeFile(path.join([...cache.entries.values()][0]!, "faiss.index"), "tampered");

    const r = await fetchCommand(await context("run2", cache), ["indexes/docs:1"]);
    assert.deepEqual([r.resolved[0]!.local, r.resolved[0]!.cached], [false, false]);
    assert.equal(await readFile(path.join(dir, "run2/indexes/docs/1.0.0/faiss.index"), "utf8"), "index bytes");
    assert.match(warnings.join("\n"), /the cached indexes\/docs:1\.0\.0 has digest sha256:[0-9a-f]{64}, not sha256:[0-9a-f]{64}: ignored/);
  });

  it("restores versions with part hashes: BLAKE3 (schema 3) and sha256 (schema 2, as the previous release wrote)", async () => {
    const { dir, warnings, context } = await setup();
    const cache = memoryCache(dir);
    const big = path.join(dir, "big.bin");
    await writeFile(big, randomBytes(PART_SIZE + 10)); // two parts
    const ctx = await context("unused", cache);
    await publishCommand(ctx, { path: big, target: "m/new", metadata: [] });
    const previousRelease = await prepareInput(big, { partAlgorithm: "sha256" });
    await ctx.registry.publish({ name: "m/old", input: previousRelease, createdBy: "assetkit 0.1.0", source: {}, metadata: {} });
    const schemas = await Promise.all(
      ["m/new", "m/old"].map(async (n) => (JSON.parse(await readFile(path.join(dir, "store", n, "1.0.0.meta"), "utf8")) as AssetMetaDocument).assetkit?.schema),
    );
    assert.deepEqual(schemas, [3, 2]);
    await lockCommand(ctx, ["m/new:1", "m/old:1"]);
    await fetchCommand(await context("run1", cache), ["m/new:1", "m/old:1"]);
    assert.equal(cache.entries.size, 2);

    await rm(path.join(dir, "store"), { recursive: true });
    const warm = await fetchCommand(await context("run2", cache), ["m/new:1", "m/old:1"]);
    assert.deepEqual(
      warm.resolved.map((a) => [a.cached, a.verified]),
      [
        [true, true],
        [true, true],
      ],
    );
    assert.deepEqual(warnings, []);
  });

  it("does not save a version of which only a part was downloaded", async () => {
    const { dir, context } = await setup();
    const cache = memoryCache(dir);
    const r = await fetchCommand(await context("run1", cache), ["indexes/docs:1[faiss.index]"]);
    assert.equal(r.resolved[0]!.cached, false);
    assert.equal(cache.entries.size, 0);
  });
});

describe("Actions cache keys", () => {
  const version = { store: "s3://ml/prod", name: "models/sentiment", version: "1.2.0-rc.1+build.5", digest: `sha256:${"ab".repeat(32)}` };

  it("name the store, the asset, the version and the digest", () => {
    assert.match(cacheKey(version), /^assetkit-v1-[0-9a-f]{16}-models\/sentiment@1\.2\.0-rc\.1\+build\.5-(ab){32}$/);
    assert.notEqual(cacheKey(version), cacheKey({ ...version, store: "s3://ml/staging" }));
    assert.notEqual(cacheKey(version), cacheKey({ ...version, digest: `sha256:${"cd".repeat(32)}` }));
  });

  it("stay within 512 characters without commas, whatever the name", () => {
    for (const name of ["a".repeat(512), "weird,name/ünïcødé"]) {
      const key = cacheKey({ ...version, name });
      assert.ok(key.length <= 512, `${key.length} characters`);
      assert.doesNotMatch(key, /,/);
      assert.ok(key.endsWith("ab".repeat(32)), "the digest is never cut");
    }
  });
});

describe("the Actions cache never fails the step", () => {
  const version = { store: "s3://ml/prod", name: "models/sentiment", version: "1.0.0", digest: `sha256:${"ab".repeat(32)}` };

  /** What @actions/core writes to stdout (workflow commands such as ::warning::) while `task` runs. */
  async function stdoutOf(task: () => Promise<unknown>): Promise<string> {
    const write = process.stdout.write;
    let out = "";
    process.stdout.write = ((chunk: string | Uint8Array) => ((out += String(chunk)), true)) as typeof process.stdout.write;
    try {
      await task();
    } finally {
      process.stdout.write = write;
    }
    return out;
  }

  it("without a cache service: a warning, and no cache", async () => {
    delete process.env.ACTIONS_CACHE_URL;
    delete process.env.ACTIONS_RESULTS_URL;
    let cache: CrossRunCache | undefined;
    const out = await stdoutOf(async () => (cache = actionsCache()));
    assert.equal(cache, undefined);
    assert.match(out, /::warning::cache: no Actions cache service here/);
  });

  it("in read-only cache mode: saving is a warning, and leaves nothing in the working directory", async () => {
    const cwd = process.cwd();
    const dir = await scratch();
    process.chdir(dir);
    Object.assign(process.env, { ACTIONS_CACHE_URL: "http://127.0.0.1:9/", ACTIONS_RUNTIME_TOKEN: "token", ACTIONS_CACHE_MODE: "read" });
    try {
      await writeFile(path.join(dir, "model.bin"), "weights");
      const out = await stdoutOf(() => actionsCache()!.save(version, path.join(dir, "model.bin"), [""]));
      assert.match(out, /::warning::cache: models\/sentiment:1\.0\.0 was not saved/);
      await assert.rejects(stat(path.join(dir, ".assetkit")), { code: "ENOENT" });
    } finally {
      process.chdir(cwd);
      for (const name of ["ACTIONS_CACHE_URL", "ACTIONS_RUNTIME_TOKEN", "ACTIONS_CACHE_MODE"]) delete process.env[name];
    }
  });
});
