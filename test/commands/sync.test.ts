// sync (the atomic `current` swap, --keep, --on-change, --in-place) and fetch --in-place on a local store: the
// acceptance lines that need no server. The watch loop against MinIO is in sync-watch.test.ts.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { lstat, open, readFile, readdir, readlink, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, it } from "node:test";
import { syncCommand } from "../../src/commands/sync.ts";
import { createContext } from "../../src/commands/context.ts";
import { prepareInput } from "../../src/registry/manifest.ts";
import { Registry } from "../../src/registry/registry.ts";
import { FsStore } from "../../src/store/fs.ts";
import { CLI, cleanEnv, runCli, scratch, writeTree } from "../helpers/cli.ts";
import { TEST_SETTINGS } from "../helpers/settings.ts";

const silent = { info: () => {}, warn: () => {} };
const promotion = { promoted_at: "2026-11-30T00:00:00.000Z", promoted_by: "test", source: {} };

/** Publishes `count` versions of `m` (1.0.0, 1.1.0, …) whose files a and b both hold the version number. */
async function versionsCarryingTheirNumber(storeDir: string, count: number): Promise<{ registry: Registry; versions: string[] }> {
  const registry = new Registry(new FsStore(storeDir), { settings: TEST_SETTINGS, versioning: "semver" });
  const versions: string[] = [];
  for (let i = 0; i < count; i++) {
    const version = `1.${i}.0`;
    const input = await prepareInput(await writeTree(await scratch(), { a: version, b: version }));
    versions.push((await registry.publish({ name: "m", input, createdBy: "test", source: {}, metadata: {} })).version);
  }
  assert.deepEqual(
    versions,
    Array.from({ length: count }, (_, i) => `1.${i}.0`),
  );
  return { registry, versions };
}

/** Reads current/a and current/b in a tight loop (resolving current once per pair) until `stopFile` exists. */
const READER = `
const fs = require("node:fs");
const [link, stopFile] = process.argv.slice(1);
let pairs = 0, mixed = 0, missing = 0, naiveMixed = 0;
const seen = new Set();
while (!fs.existsSync(stopFile)) {
  try {
    const dir = fs.realpathSync(link);
    const a = fs.readFileSync(dir + "/a", "utf8");
    const b = fs.readFileSync(dir + "/b", "utf8");
    pairs++;
    seen.add(a);
    if (a !== b) mixed++;
  } catch (err) {
    if (err.code !== "ENOENT") throw err;
    missing++; // resolved to a version that --keep let go of before both reads: retried, never mixed
  }
  try {
    // For comparison only: two lookups of the link can straddle a swap.
    if (fs.readFileSync(link + "/a", "utf8") !== fs.readFileSync(link + "/b", "utf8")) naiveMixed++;
  } catch {}
}
process.stdout.write(JSON.stringify({ pairs, mixed, missing, naiveMixed, seen: [...seen] }));
`;

describe("sync (local store)", () => {
  it("a reader process never sees a mixed pair during 20 swaps; --keep 2 leaves current and two previous versions", async (t) => {
    const cwd = await scratch();
    const storeDir = path.join(cwd, "store");
    const dir = path.join(cwd, "serve");
    const { registry, versions } = await versionsCarryingTheirNumber(storeDir, 4);
    const ctx = await createContext({ store: storeDir, assetsDir: path.join(cwd, "assets") }, silent);
    await registry.promote("m", "production", versions[0]!, promotion);
    await syncCommand(ctx, ["m:production"], { dir, keep: 2 });

    const link = path.join(dir, "m", "current");
    const stopFile = path.join(cwd, "stop");
    const reader = spawn(process.execPath, ["-e", READER, link, stopFile], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    reader.stdout.on("data", (d) => (out += d));
    const done = new Promise<number | null>((resolve) => reader.once("exit", resolve));
    await sleep(300); // the reader is reading before the first swap

    const served: string[] = [];
    for (let swap = 1; swap <= 20; swap++) {
      const version = versions[swap % versions.length]!;
      await registry.promote("m", "production", version, promotion);
      const r = await syncCommand(ctx, ["m:production"], { dir, keep: 2 });
      assert.equal(r.synced[0]!.version, version);
      assert.equal(await readlink(link), version);
      served.push(version);
      await sleep(20);
    }
    await writeFile(stopFile, "");
    assert.equal(await done, 0);
    const seen = JSON.parse(out) as { pairs: number; mixed: number; missing: number; naiveMixed: number; seen: string[] };
    t.diagnostic(
      `reader: ${seen.pairs} pairs, ${seen.missing} retried after a pruned version, ${seen.naiveMixed} mixed pairs when opening through the link twice`,
    );
    assert.equal(seen.mixed, 0);
    assert.ok(seen.pairs > 20, `the reader read ${seen.pairs} pairs`);
    assert.ok(seen.seen.length >= 3, `the reader saw the swaps: ${seen.seen.join(", ")}`);

    // current = 1.0.0 (swap 20 = 20 % 4 → versions[0]); kept: the two before it, 1.3.0 and 1.2.0; 1.1.0 deleted.
    const entries = (await readdir(path.join(dir, "m"))).filter((e) => !e.startsWith(".")).sort();
    assert.deepEqual(entries, ["1.0.0", "1.2.0", "1.3.0", "current"]);
    assert.deepEqual(served.slice(-3), ["1.2.0", "1.3.0", "1.0.0"]);
  });

  it("--on-change runs once per swap with the name, version and path; an unchanged sync runs nothing", async () => {
    const cwd = await writeTree(await scratch(), { "v1/w": "one", "v2/w": "two" });
    const cli = (...args: string[]) => runCli(args, { cwd });
    for (const input of ["v1", "v2"]) assert.equal((await cli("publish", input, "models/m")).code, 0);
    assert.equal((await cli("promote", "models/m:1.0.0", "production")).code, 0);
    const hook = `echo "$ASSETKIT_SPEC|$ASSETKIT_NAME|$ASSETKIT_VERSION|$ASSETKIT_PREVIOUS|$ASSETKIT_PATH|$ASSETKIT_CURRENT|$ASSETKIT_DIGEST" >> hooks.log`;
    const sync = () => cli("sync", "models/m:production", "--dir", "serve", "--on-change", hook, "--json");
    const first = await sync();
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /swapped models\/m: \(none\) → 1\.0\.0 \(sha256:[0-9a-f]{64}\) in \d+\.\d s/);
    assert.equal((await sync()).code, 0);
    assert.equal((await cli("promote", "models/m:1.1.0", "production")).code, 0);
    const third = await sync();
    assert.equal(third.code, 0, third.stderr);
    const synced = JSON.parse(third.stdout).synced[0];
    assert.equal(synced.version, "1.1.0");
    assert.equal(await readFile(path.join(cwd, "serve/models/m/current/w"), "utf8"), "two");

    const lines = (await readFile(path.join(cwd, "hooks.log"), "utf8"))
      .trim()
      .split("\n")
      .map((l) => l.split("|"));
    const serve = await (await import("node:fs/promises")).realpath(path.join(cwd, "serve"));
    assert.deepEqual(
      lines.map(([spec, name, version, previous, p, current]) => [spec, name, version, previous, p, current]),
      [
        ["models/m:production", "models/m", "1.0.0", "", path.join(serve, "models/m/1.0.0"), path.join(serve, "models/m/current")],
        ["models/m:production", "models/m", "1.1.0", "1.0.0", path.join(serve, "models/m/1.1.0"), path.join(serve, "models/m/current")],
      ].map((l) => l.map((p) => p.replace(serve, path.join(cwd, "serve")))),
    );
    assert.equal(lines[1]![6], synced.digest);
  });

  it("--watch with two specs: each is swapped when its channel moves; the status file lists both; SIGINT ends it with 0", async () => {
    const cwd = await writeTree(await scratch(), { "v1/w": "one", "v2/w": "two" });
    const cli = (...args: string[]) => runCli(args, { cwd });
    for (const name of ["a", "b"]) {
      for (const input of ["v1", "v2"]) assert.equal((await cli("publish", input, name)).code, 0);
      assert.equal((await cli("promote", `${name}:1.0.0`, "production")).code, 0);
    }
    const statusFile = path.join(cwd, "status.json");
    const sync = spawn(process.execPath, [CLI, "sync", "a:production", "b:production", "--dir", "serve", "--watch", "200ms", "--status-file", statusFile], {
      cwd,
      env: cleanEnv(),
    });
    const exited = new Promise<number | null>((resolve) => sync.once("exit", resolve));
    try {
      const versions = async () => {
        const doc = JSON.parse(await readFile(statusFile, "utf8").catch(() => "{}")) as { assets?: { name: string; version: string }[] };
        return (doc.assets ?? []).map((a) => `${a.name}:${a.version}`).join(" ");
      };
      for (let i = 0; i < 150 && (await versions()) !== "a:1.0.0 b:1.0.0"; i++) await sleep(100);
      assert.equal(await versions(), "a:1.0.0 b:1.0.0");
      assert.equal((await cli("promote", "b:1.1.0", "production")).code, 0);
      for (let i = 0; i < 150 && (await versions()) !== "a:1.0.0 b:1.1.0"; i++) await sleep(100);
      assert.equal(await versions(), "a:1.0.0 b:1.1.0");
      assert.equal(await readFile(path.join(cwd, "serve/b/current/w"), "utf8"), "two");
      assert.equal(await readFile(path.join(cwd, "serve/a/current/w"), "utf8"), "one");
      sync.kill("SIGINT");
      assert.equal(await exited, 0);
    } finally {
      sync.kill("SIGKILL");
    }
  });

  it("fetch --in-place copies no byte (the store's own inode), hashes once, and detects a flipped byte", async () => {
    const cwd = await writeTree(await scratch(), { "d/x.bin": Buffer.alloc(300_000, 7), "d/y.txt": "y" });
    const cli = (...args: string[]) => runCli(args, { cwd });
    assert.equal((await cli("publish", "d", "d")).code, 0);
    const object = path.join(cwd, ".assetkit/store/d/1.0.0/x.bin");

    const first = await cli("fetch", "d:1", "--in-place", "--json");
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /verified d:1\.0\.0 in place \(2 file\(s\) hashed\)/);
    const fetched = JSON.parse(first.stdout).resolved[0];
    assert.equal(fetched.path, path.join(cwd, ".assetkit/store/d/1.0.0"));
    assert.equal((await stat(path.join(fetched.path, "x.bin"))).ino, (await stat(object)).ino);
    assert.equal(await lstat(path.join(cwd, ".assetkit/assets/d/1.0.0")).catch(() => undefined), undefined, "no copy in the assets dir");

    const again = await cli("fetch", "d:1", "--in-place");
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /hashed/, "the marker vouches for unchanged files");

    const handle = await open(object, "r+");
    await handle.write(Buffer.from([8]), 0, 1, 150_000);
    await handle.close();
    const flipped = await cli("fetch", "d:1", "--in-place");
    assert.equal(flipped.code, 1);
    assert.match(flipped.stderr, /^error: integrity check failed for d:1\.0\.0\/x\.bin .*sha256/m);

    const remote = await cli("--store", "s3://bucket/prefix?endpoint=http://127.0.0.1:9", "fetch", "d:1", "--in-place");
    assert.equal(remote.code, 2);
    assert.match(remote.stderr, /^error: --in-place .* s3:\/\/bucket\/prefix.* is remote/m);
  });

  it("sync --in-place points current at the store's own folder", async () => {
    const cwd = await writeTree(await scratch(), { "d/x.bin": "x" });
    const cli = (...args: string[]) => runCli(args, { cwd });
    assert.equal((await cli("publish", "d", "d")).code, 0);
    const r = await cli("sync", "d:1", "--dir", "serve", "--in-place", "--json");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(await readlink(path.join(cwd, "serve/d/current")), path.join(cwd, ".assetkit/store/d/1.0.0"));
    assert.deepEqual(
      (await readdir(path.join(cwd, "serve/d"))).filter((e) => !e.startsWith(".")),
      ["current"],
    );
  });
});
