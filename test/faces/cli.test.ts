// The acceptance lines of the core, tried through the shipped CLI (dist/cli.js) as a user would, on the local store.
import assert from "node:assert/strict";
import { readFile, readdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";
import { runCli, scratch, startCli, writeTree } from "../helpers/cli.ts";

async function project() {
  const cwd = await scratch();
  await writeTree(cwd, { "model/weights.bin": "w1", "model/config.json": "{}" });
  const cli = (...args: string[]) => runCli(args, { cwd });
  const json = async (...args: string[]) => {
    const r = await cli(...args, "--json");
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  return { cwd, cli, json };
}

describe("CLI", () => {
  it("publishes 1.0.0, 1.1.0, 2.0.0, then 1.2.0 inside series 1; resolves partial specs and ranges", async () => {
    const { json } = await project();
    const first = await json("publish", "model", "models/sentiment");
    assert.deepEqual(Object.keys(first).sort(), ["digest", "name", "published", "signed", "signer", "spec", "store", "version"]);
    assert.equal(first.version, "1.0.0");
    assert.equal(first.spec, "models/sentiment:1.0.0");
    assert.equal(first.published, true);
    assert.match(first.digest, /^sha256:[0-9a-f]{64}$/);
    assert.equal((await json("publish", "model", "models/sentiment", "--bump", "minor")).version, "1.1.0");
    assert.equal((await json("publish", "model", "models/sentiment", "--bump", "major")).version, "2.0.0");
    assert.equal((await json("publish", "model", "models/sentiment:1", "--bump", "minor")).version, "1.2.0");
    const resolved = await json("resolve", "models/sentiment:1", "models/sentiment", "models/sentiment:^1.1");
    assert.deepEqual(
      resolved.resolved.map((r: { spec: string; version: string }) => [r.spec, r.version]),
      [
        ["models/sentiment:1", "1.2.0"],
        ["models/sentiment", "2.0.0"],
        ["models/sentiment:^1.1", "1.2.0"],
      ],
    );
    assert.deepEqual(await json("list"), { assets: [{ name: "models/sentiment", versions: ["2.0.0", "1.2.0", "1.1.0", "1.0.0"] }] });
    const meta = await json("show", "models/sentiment:1.1");
    assert.deepEqual(meta.contents, ["config.json", "weights.bin"]);
  });

  it("republishing an existing version exits 1, names it, and changes nothing in the store", async () => {
    const { cwd, cli } = await project();
    assert.equal((await cli("publish", "model", "m", "--version", "1.0.0")).code, 0);
    const store = path.join(cwd, ".assetkit/store");
    const before = await snapshot(store);
    await writeFile(path.join(cwd, "model/weights.bin"), "w2");
    const again = await cli("publish", "model", "m", "--version", "1.0.0");
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^error: m:1\.0\.0 already exists/);
    assert.doesNotMatch(again.stderr, /\n\s+at /, "no stack trace");
    assert.deepEqual(await snapshot(store), before);
  });

  it("eight processes publishing the same asset at once produce eight distinct, complete versions", async () => {
    const cwd = await scratch();
    for (let i = 0; i < 8; i++) await writeTree(cwd, { [`in${i}/data.txt`]: `publisher ${i}` });
    const runs = await Promise.all(Array.from({ length: 8 }, (_, i) => startCli(["publish", `in${i}`, "race", "--json"], { cwd })));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const versions = runs.map((r) => JSON.parse(r.stdout).version as string);
    assert.equal(new Set(versions).size, 8);
    const index = JSON.parse(await readFile(path.join(cwd, ".assetkit/store/race.versions"), "utf8")).versions;
    assert.deepEqual([...index].sort(), [...versions].sort());
    for (const [i, v] of versions.entries()) assert.equal(await readFile(path.join(cwd, `.assetkit/store/race/${v}/data.txt`), "utf8"), `publisher ${i}`);
  });

  it("bad or pathological specs and flags exit 2 with a message naming the problem", async () => {
    const { cli } = await project();
    for (const [args, message] of [
      [["resolve", "x:" + "(".repeat(200)], /bad version/],
      [["resolve", "a".repeat(5000)], /longer than/],
      [["resolve", "../../etc:1"], /bad asset name/],
      [["publish", "model", "m", "--bump", "huge"], /huge/],
      [["fetch", "--nope"], /unknown option/],
    ] as [string[], RegExp][]) {
      const r = await cli(...args);
      assert.equal(r.code, 2, `${args.join(" ").slice(0, 40)}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });

  it("a corrupted object fails the fetch with exit 1, naming it, and leaves no partial version", async () => {
    const { cwd, cli } = await project();
    await cli("publish", "model", "m");
    await writeFile(path.join(cwd, ".assetkit/store/m/1.0.0/weights.bin"), "XX");
    const r = await cli("fetch", "m:1");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /integrity check failed for m:1\.0\.0\/weights\.bin/);
    assert.deepEqual(await readdir(path.join(cwd, ".assetkit/assets/m")), []);
  });

  it("after lock, a newer version does not change what fetch --frozen gets; a digest unlike the lock's fails", async () => {
    const { cwd, cli, json } = await project();
    await json("publish", "model", "m");
    const locked = await json("lock", "m:1");
    assert.equal(locked.lockfile, path.join(cwd, "assets.lock"));
    const lockText = await readFile(path.join(cwd, "assets.lock"), "utf8");
    assert.ok(lockText.endsWith("}\n"));
    assert.deepEqual(Object.keys(JSON.parse(lockText)), ["lockfileVersion", "store", "assets"]);
    await writeFile(path.join(cwd, "model/weights.bin"), "newer");
    assert.equal((await json("publish", "model", "m")).version, "1.1.0");
    const fetched = await json("fetch", "m:1", "--frozen");
    assert.equal(fetched.resolved[0].version, "1.0.0");
    assert.equal(await readFile(path.join(fetched.resolved[0].path, "weights.bin"), "utf8"), "w1");
    assert.equal((await json("resolve", "m:1")).resolved[0].version, "1.0.0", "resolve reads the lock");
    assert.equal((await json("lock", "m:1", "--update")).resolved[0].version, "1.1.0");

    const unlocked = await cli("fetch", "m:2", "--frozen");
    assert.equal(unlocked.code, 1);
    assert.match(unlocked.stderr, /m:2 is not in .*assets\.lock/);

    const lock = JSON.parse(await readFile(path.join(cwd, "assets.lock"), "utf8"));
    lock.assets["m:1"].digest = "sha256:" + "0".repeat(64);
    await writeFile(path.join(cwd, "assets.lock"), JSON.stringify(lock));
    const mismatch = await cli("fetch", "m:1", "--frozen", "--assets-dir", "fresh");
    assert.equal(mismatch.code, 1);
    assert.match(mismatch.stderr, /has digest sha256:[0-9a-f]+, but .*assets\.lock locked sha256:0000/);
  });

  it("a locked or fully pinned spec with a warm local copy touches no store", async () => {
    const { cwd, cli, json } = await project();
    await json("publish", "model", "m");
    await json("lock", "m");
    await json("fetch", "m", "m:1.0.0[weights.bin]");
    await rename(path.join(cwd, ".assetkit/store"), path.join(cwd, "store-gone"));
    const locked = await json("fetch", "m", "--frozen");
    assert.equal(locked.resolved[0].path, path.join(cwd, ".assetkit/assets/m/1.0.0"));
    const pinned = await json("fetch", "m:1.0.0", "m:1.0.0[weights.bin]");
    assert.deepEqual(
      pinned.resolved.map((r: { version: string; path: string }) => [r.version, path.relative(cwd, r.path)]),
      [
        ["1.0.0", ".assetkit/assets/m/1.0.0"],
        ["1.0.0", ".assetkit/assets/m/1.0.0/weights.bin"],
      ],
    );
    assert.equal((await cli("fetch", "m:1")).code, 1, "an unpinned spec does need the store");
  });

  it("several processes fetching one version into one dir: one downloads, the others reuse it", async () => {
    const cwd = await scratch();
    await writeTree(cwd, { "big/a.bin": Buffer.alloc(8 << 20, 7), "big/b.bin": Buffer.alloc(1 << 20, 3) });
    assert.equal((await runCli(["publish", "big", "shared"], { cwd })).code, 0);
    const runs = await Promise.all(Array.from({ length: 4 }, () => startCli(["fetch", "shared:1"], { cwd })));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    assert.equal(runs.filter((r) => /fetched shared:1\.0\.0/.test(r.stderr)).length, 1, runs.map((r) => r.stderr).join("|"));
  });

  it("reads modelkit's environment: MODELKIT_STORAGE_* and MODELKIT_ASSETS_DIR", async () => {
    const cwd = await scratch();
    await writeTree(cwd, { "f.txt": "modelkit" });
    const env = { MODELKIT_STORAGE_PROVIDER: "local", MODELKIT_STORAGE_BUCKET: path.join(cwd, "bucket"), MODELKIT_ASSETS_DIR: path.join(cwd, "mk-assets") };
    const pub = await runCli(["publish", "f.txt", "mk/asset", "--versioning", "major-minor", "--json"], { cwd, env });
    assert.equal(JSON.parse(pub.stdout).version, "0.0");
    await readFile(path.join(cwd, "bucket/modelkit-assets/mk/asset/0.0"));
    const fetched = await runCli(["fetch", "mk/asset", "--json"], { cwd, env });
    assert.equal(JSON.parse(fetched.stdout).resolved[0].path, path.join(cwd, "mk-assets/mk/asset/0.0"));
    await readFile(path.join(cwd, "mk-assets/mk/asset/.0.0.SUCCESS"), "utf8");
  });

  it("versioning: simple_date in assetkit.yml dates a new asset; a warm fetch of its date spec needs no store", async () => {
    const { cwd, cli, json } = await project();
    await writeFile(path.join(cwd, "assetkit.yml"), "versioning: simple_date\n");
    const { version } = await json("publish", "model", "dated");
    assert.match(version, /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ$/);
    assert.equal((await json("resolve", "dated")).resolved[0].version, version);
    assert.equal((await json("fetch", `dated:${version}`)).resolved[0].version, version);
    await rename(path.join(cwd, ".assetkit/store"), path.join(cwd, "gone"));
    const warm = await cli("fetch", `dated:${version}[weights.bin]`);
    assert.equal(warm.code, 0, `a whole date version with a local copy is pinned: ${warm.stderr}`);
  });

  it("an asset whose versions follow no known scheme: publish exits 1 and writes nothing; resolve and list say why", async () => {
    const { cwd, cli } = await project();
    const store = path.join(cwd, ".assetkit/store");
    await writeTree(store, {
      "odd.versions": JSON.stringify({ versions: ["v2", "v1"] }),
      "odd/v1.meta": JSON.stringify({ push_date: "2026-01-01T00:00:00Z", is_directory: false }),
      "odd/v1": "one",
    });
    const before = await snapshot(store);
    for (const args of [
      ["publish", "model", "odd"],
      ["publish", "model", "odd", "--versioning", "semver"],
      ["resolve", "odd"],
      ["list", "odd"],
    ]) {
      const r = await cli(...args);
      assert.equal(r.code, 1, args.join(" "));
      assert.match(
        r.stderr,
        /^error: .*the versions of odd in .* \(v2, v1\) follow no versioning scheme assetkit knows \(semver, major-minor, simple-date\)\n$/,
      );
    }
    assert.deepEqual(await snapshot(store), before, "no claim, data, meta or index was written");
  });

  it("--help tells the commands and each command's flags", async () => {
    const { cli } = await project();
    const top = await cli("--help");
    for (const word of ["publish", "resolve", "fetch", "list", "show", "lock", "--store", "--json"]) assert.match(top.stdout, new RegExp(word));
    const fetch = await cli("fetch", "--help");
    assert.match(fetch.stdout, /--frozen/);
    assert.match(fetch.stdout, /--assets-dir/);
  });
});

async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) {
      const full = path.join(entry.parentPath, entry.name);
      out[path.relative(dir, full)] = await readFile(full, "base64");
    }
  }
  return out;
}
