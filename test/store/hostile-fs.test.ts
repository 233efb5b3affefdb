// Hostile store contents and killed fetches, tried through the shipped CLI as a user would: links out of a file
// store, a published .SUCCESS file, duplicate or clashing paths in a meta, oversized documents (on the local store
// and MinIO), and the leftovers of a fetch killed mid-download. Each failure is exit 1 or 2 with one line on stderr,
// no stack trace, and nothing written outside the assets dir.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readFile, readdir, stat, symlink, utimes } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { FsStore } from "../../src/store/fs.ts";
import { MAX_DOCUMENT_BYTES, StoreError } from "../../src/store/store.ts";
import { TEMP_MARK } from "../../src/base/temp-path.ts";
import { s3TestEnv } from "../conformance/factories/s3.ts";
import { factories, skipReason } from "../conformance/stores.ts";
import { inLayers } from "../conformance/factory.ts";
import { CLI, cleanEnv, runCli, scratch, writeTree, type RunResult } from "../helpers/cli.ts";

/** exit `code`, exactly one line on stderr matching `message`, no stack trace. */
function assertOneLineFailure(r: RunResult, code: 1 | 2, message: RegExp): void {
  assert.equal(r.code, code, r.stderr);
  assert.equal(r.stderr.trimEnd().split("\n").length, 1, `one line: ${r.stderr}`);
  assert.match(r.stderr, /^error: /);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
}

/** Every file and folder under `dir` (relative paths), or [] when it does not exist. */
async function tree(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true }).catch(() => [] as string[])).sort();
}

/** Every file under `dir` whose content includes `text`. */
async function filesHolding(dir: string, text: string): Promise<string[]> {
  const out: string[] = [];
  for (const rel of await tree(dir)) {
    const full = path.join(dir, rel);
    if ((await stat(full)).isFile() && (await readFile(full, "utf8")).includes(text)) out.push(rel);
  }
  return out;
}

/** modelkit's meta (no checksums) of a file or folder asset. */
function modelkitMeta(contents?: string[]): string {
  return JSON.stringify({ push_date: "2026-01-01T00:00:00Z", is_directory: contents !== undefined, ...(contents ? { contents } : {}) });
}

describe("a file store refuses objects and folders that resolve outside it", () => {
  async function setup() {
    const cwd = await scratch();
    const store = path.join(cwd, "store");
    const outside = path.join(cwd, "outside");
    await writeTree(outside, { "secret.txt": "SECRET-CONTENT", "folder/a.txt": "SECRET-CONTENT" });
    const cli = (...args: string[]) => runCli(["--store", store, ...args], { cwd, env: { ASSETKIT_ASSETS_DIR: path.join(cwd, "assets") } });
    return { cwd, store, outside, cli };
  }

  it("a data object linked to a file outside (modelkit meta, no checksums): exit 1 naming the key, nothing copied", async () => {
    const { cwd, store, outside, cli } = await setup();
    await writeTree(store, { "evil.versions": '{"versions": ["1.0"]}', "evil/1.0.meta": modelkitMeta() });
    await symlink(path.join(outside, "secret.txt"), path.join(store, "evil/1.0"));
    const before = await tree(cwd);
    assertOneLineFailure(await cli("fetch", "evil:1.0"), 1, /cannot read evil\/1\.0: it resolves outside the store through a symbolic link/);
    assert.deepEqual(await filesHolding(path.join(cwd, "assets"), "SECRET"), []);
    assert.deepEqual(
      (await tree(cwd)).filter((p) => !p.startsWith("assets")),
      before,
    );
  });

  it("a version folder linked outside, and a linked .versions: exit 1 naming the key", async () => {
    const { cwd, store, outside, cli } = await setup();
    await writeTree(store, { "evil.versions": '{"versions": ["1.0"]}', "evil/1.0.meta": modelkitMeta(["a.txt"]) });
    await symlink(path.join(outside, "folder"), path.join(store, "evil/1.0"));
    assertOneLineFailure(await cli("fetch", "evil:1.0"), 1, /cannot read evil\/1\.0\/a\.txt: it resolves outside the store/);
    assert.deepEqual(await filesHolding(path.join(cwd, "assets"), "SECRET"), []);

    await symlink(path.join(outside, "secret.txt"), path.join(store, "linked.versions"));
    assertOneLineFailure(await cli("resolve", "linked"), 1, /cannot read linked\.versions: it resolves outside the store/);
  });

  it("publishing through an asset folder linked outside writes nothing there", async () => {
    const { cwd, store, outside, cli } = await setup();
    await writeTree(cwd, { "model/w.bin": "weights" });
    await mkdir(store, { recursive: true });
    await symlink(outside, path.join(store, "pub"));
    const before = await tree(outside);
    assertOneLineFailure(await cli("publish", path.join(cwd, "model"), "pub"), 1, /cannot \w+ pub\b.*: it resolves outside the store/);
    assert.deepEqual(await tree(outside), before);
  });

  it("every operation of the store refuses a key under a folder linked outside, and changes nothing there", async () => {
    const { store, outside } = await setup();
    await mkdir(store, { recursive: true });
    await symlink(outside, path.join(store, "out"));
    const fsStore = inLayers(new FsStore(store));
    const before = await tree(outside);
    const refused = (err: unknown): boolean =>
      err instanceof StoreError && /cannot \w+ out\/secret\.txt( to inside)?: it resolves outside the store/.test(err.message);
    await assert.rejects(fsStore.head("out/secret.txt"), refused);
    await assert.rejects(fsStore.read("out/secret.txt"), refused);
    await assert.rejects(fsStore.openRead("out/secret.txt"), refused);
    await assert.rejects(fsStore.write("out/secret.txt", Buffer.from("x")), refused);
    await assert.rejects(fsStore.write("out/secret.txt", Buffer.from("x"), { ifAbsent: true }), refused);
    await assert.rejects(fsStore.delete("out/secret.txt"), refused);
    await assert.rejects(fsStore.copy("out/secret.txt", "inside"), refused);
    await assert.rejects(async () => {
      for await (const _ of fsStore.list("out/")) assert.fail("listed through the link");
    }, /cannot list out\/: it resolves outside the store/);
    assert.deepEqual(await tree(outside), before);
    assert.equal(await readFile(path.join(outside, "secret.txt"), "utf8"), "SECRET-CONTENT");
  });

  it("a link that stays inside the store is followed", async () => {
    const { store, cli } = await setup();
    await writeTree(store, { "ok.versions": '{"versions": ["1.0"]}', "ok/1.0.meta": modelkitMeta(), "shared/blob": "inside" });
    await symlink("../shared/blob", path.join(store, "ok/1.0"));
    const r = await cli("fetch", "ok:1.0", "--json");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await readFile(JSON.parse(r.stdout).resolved[0].path, "utf8"), "inside");
  });
});

describe("a top-level .SUCCESS file in a folder asset", () => {
  it("is refused at publish (exit 2, nothing stored); a .SUCCESS in a sub-folder is kept byte for byte", async () => {
    const cwd = await scratch();
    await writeTree(cwd, { "model/w.bin": "weights", "model/.SUCCESS": "mine" });
    const cli = (...args: string[]) => runCli(args, { cwd });
    assertOneLineFailure(await cli("publish", "model", "m"), 2, /cannot publish model: a top-level \.SUCCESS file is reserved/);
    assert.deepEqual(await tree(path.join(cwd, ".assetkit/store")), []);

    await writeTree(cwd, { "nested/sub/.SUCCESS": "mine", "nested/w.bin": "weights" });
    assert.equal((await cli("publish", "nested", "n")).code, 0);
    assert.equal((await cli("lock", "n:1.0.0")).code, 0);
    const fetched = await cli("fetch", "n:1.0.0", "--json");
    assert.equal(fetched.code, 0, fetched.stderr);
    const local = JSON.parse(fetched.stdout).resolved[0].path;
    assert.equal(await readFile(path.join(local, "sub/.SUCCESS"), "utf8"), "mine");
    const verified = await cli("verify", "n:1.0.0", "--json");
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  });
});

// The cases a store's content can cause, on the local store and on MinIO.
const hostileStores = factories.filter((f) => f.name === "file" || f.name.startsWith("s3"));
for (const factory of hostileStores) {
  describe(`hostile documents in a ${factory.name} store`, { skip: skipReason(factory) }, () => {
    async function setup() {
      const cwd = await scratch();
      const { seed, uri } = await factory.create();
      const env = factory.name === "file" ? {} : s3TestEnv();
      const cli = (...args: string[]) => runCli(["--store", uri, ...args], { cwd, env });
      return { cwd, seed, cli };
    }

    it("a modelkit version holding a top-level .SUCCESS: fetch exits 1 and keeps nothing; a part of it is fetched", async () => {
      const { cwd, seed, cli } = await setup();
      await seed.write("succ/1.0/.SUCCESS", Buffer.from("data, not a marker"));
      await seed.write("succ/1.0/b.txt", Buffer.from("b"));
      await seed.write("succ/1.0.meta", Buffer.from(modelkitMeta([".SUCCESS", "b.txt"])));
      await seed.write("succ.versions", Buffer.from('{"versions": ["1.0"]}'));
      assertOneLineFailure(await cli("fetch", "succ:1.0"), 1, /cannot fetch succ:1\.0 into an assets dir: a top-level \.SUCCESS file is reserved/);
      assertOneLineFailure(await cli("fetch", "succ:1.0[.SUCCESS]"), 1, /top-level \.SUCCESS file is reserved/);
      assert.deepEqual(await tree(path.join(cwd, ".assetkit/assets/succ")), []);
      const part = await cli("fetch", "succ:1.0[b.txt]");
      assert.equal(part.code, 0, part.stderr);
    });

    it("a meta listing a path twice, or a path both a file and a folder: exit 1, one line", async () => {
      const { cwd, seed, cli } = await setup();
      await seed.write("dup/1.0/a", Buffer.from("a"));
      await seed.write("dup/1.0.meta", Buffer.from(modelkitMeta(["a", "a"])));
      await seed.write("dup/1.1.meta", Buffer.from(modelkitMeta(["a", "a.txt", "a/b"])));
      await seed.write("dup.versions", Buffer.from('{"versions": ["1.1", "1.0"]}'));
      assertOneLineFailure(await cli("fetch", "dup:1.0"), 1, /dup\/1\.0\.meta .* is not a valid asset meta: "a" is listed twice$/m);
      assertOneLineFailure(await cli("fetch", "dup:1.1"), 1, /dup\/1\.1\.meta .* is not a valid asset meta: "a" is both a file and the folder of "a\/b"$/m);
      assert.deepEqual(await tree(path.join(cwd, ".assetkit/assets/dup")), []);
    });

    it(".versions, .meta and .aliases over 16 MiB: exit 1, one line naming the object", async () => {
      const { seed, cli } = await setup();
      const huge = Buffer.alloc(MAX_DOCUMENT_BYTES + 1, " ");
      await seed.write("big.versions", huge);
      assertOneLineFailure(await cli("resolve", "big"), 1, /cannot read big\.versions: larger than 16 MiB/);
      await seed.write("m/1.0.meta", huge);
      await seed.write("m.versions", Buffer.from('{"versions": ["1.0"]}'));
      await seed.write("m.aliases", huge);
      assertOneLineFailure(await cli("show", "m:1.0"), 1, /cannot read m\/1\.0\.meta: larger than 16 MiB/);
      assertOneLineFailure(await cli("resolve", "m:production"), 1, /cannot read m\.aliases: larger than 16 MiB/);
    });
  });
}

describe("leftovers of a fetch killed mid-download", () => {
  let server: Server;
  let storeUrl: string;
  let cwd: string;
  /** The key whose body the server starts and then never finishes, while set. */
  let stalling: string | undefined;
  const held: import("node:http").ServerResponse[] = [];

  before(async () => {
    cwd = await scratch();
    const storeDir = path.join(cwd, "store");
    for (const [version, seedByte] of [
      ["1.0.0", 1],
      ["2.0.0", 2],
    ] as const) {
      await writeTree(cwd, { [`in${version}/big.bin`]: randomBytes(4 << 20).fill(seedByte, 0, 1), [`in${version}/small.txt`]: version });
      const r = await runCli(["--store", storeDir, "publish", `in${version}`, "asset", "--version", version], { cwd });
      assert.equal(r.code, 0, r.stderr);
    }
    // A static server over the store folder; the stalled key gets its headers and 1 MiB, then nothing.
    server = createServer((req, res) => {
      const key = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname.slice(1));
      const file = path.join(storeDir, ...key.split("/"));
      stat(file).then(
        (s) => {
          if (!s.isFile()) return void res.writeHead(404).end();
          res.writeHead(200, { "content-length": s.size });
          if (key !== stalling) return void createReadStream(file).pipe(res);
          held.push(res);
          createReadStream(file, { start: 0, end: (1 << 20) - 1 }).on("data", (chunk) => res.write(chunk));
        },
        () => void res.writeHead(404).end(),
      );
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    storeUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    for (const res of held) res.destroy();
    server.close();
  });

  const assets = (): string => path.join(cwd, "assets");
  const fetch = (spec: string) => runCli(["--store", storeUrl, "fetch", spec, "--assets-dir", assets(), "--json"], { cwd });
  const leftovers = async (): Promise<string[]> => (await tree(assets())).filter((p) => path.basename(p).includes(TEMP_MARK));

  /** Starts a fetch that stalls inside big.bin of `version`, resolving once its partial file holds bytes. */
  async function stalledFetch(version: string) {
    stalling = `asset/${version}/big.bin`;
    const child = spawn(process.execPath, [CLI, "--store", storeUrl, "fetch", `asset:${version}`, "--assets-dir", assets()], {
      cwd,
      env: cleanEnv(),
      stdio: "ignore",
    });
    for (let i = 0; ; i++) {
      const partial = (await tree(assets())).filter((p) => p.includes(TEMP_MARK) && p.endsWith("big.bin"));
      if (partial.length > 0 && (await stat(path.join(assets(), partial[0]!))).size > 0) break;
      assert.ok(i < 300, "the fetch never started writing");
      await sleep(100);
    }
    return child;
  }

  it("are kept while their fetch runs, and removed by the next fetch of the asset once it is dead", async () => {
    const running = await stalledFetch("1.0.0");
    const partial = await leftovers();
    assert.ok(
      partial.some((p) => p.startsWith(`asset/.1.0.0${TEMP_MARK}`)),
      partial.join(", "),
    );

    // Another version of the same asset: the running fetch holds its lock, so its files stay.
    const other = await fetch("asset:2.0.0");
    assert.equal(other.code, 0, other.stderr);
    assert.deepEqual(await leftovers(), partial);

    running.kill("SIGKILL");
    await new Promise((resolve) => running.once("exit", resolve));
    stalling = undefined;
    // The dead fetch's lock goes stale 30 s after its last refresh: let that time pass.
    const lock = path.join(assets(), ".assetkit/locks/asset/1.0.0.lock");
    const past = new Date(Date.now() - 60_000);
    await utimes(lock, past, past);

    const again = await fetch("asset:1.0.0");
    assert.equal(again.code, 0, again.stderr);
    const local = JSON.parse(again.stdout).resolved[0].path;
    assert.deepEqual(await readFile(path.join(local, "big.bin")), await readFile(path.join(cwd, "in1.0.0/big.bin")));
    assert.deepEqual(await leftovers(), []);

    // A copy moved aside and never removed (killed between the two renames) beside a complete copy: a pinned
    // fetch, which needs no store request, removes it too.
    await writeTree(assets(), { [`asset/.2.0.0${TEMP_MARK}0123456789ab-old/big.bin`]: "old" });
    const warm = await fetch("asset:2.0.0");
    assert.equal(warm.code, 0, warm.stderr);
    assert.deepEqual(await leftovers(), []);
  });
});
