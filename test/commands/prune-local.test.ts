// prune-local through the shipped CLI: least recently used first (last use recorded at fetch), never a version a
// running fetch holds (the assets dir's inter-process lock), never a locked one unless --all.
import assert from "node:assert/strict";
import { mkdir, readdir, stat } from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";
import lockfile from "proper-lockfile";
import { runCli, scratch, writeTree } from "../helpers/cli.ts";

const KiB = 1024;

/** Bytes of every file under `dir` except assetkit's own bookkeeping (.assetkit/: locks, use records). */
async function bytesUnder(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const full = path.join(entry.parentPath, entry.name);
    if (entry.isFile() && !path.relative(dir, full).startsWith(".assetkit")) total += (await stat(full)).size;
  }
  return total;
}

async function project() {
  const cwd = await scratch();
  const cli = (...args: string[]) => runCli(args, { cwd });
  // Five versions of 100 KiB each: a folder asset.
  for (let i = 1; i <= 5; i++) {
    await writeTree(cwd, { "model/weights.bin": Buffer.alloc(100 * KiB, i) });
    assert.equal((await cli("publish", "model", "m", "--version", `${i}.0.0`)).code, 0);
  }
  return { cwd, cli, assets: path.join(cwd, ".assetkit/assets") };
}

describe("prune-local", () => {
  it("--max-size brings the dir under the size, least recently used first, never a locked or held version", async () => {
    const { cwd, cli, assets } = await project();
    // Use order, oldest first: 2, 4, 1, 5, 3 (1 and 2 fetched first, then used again in this order).
    for (const v of ["1", "2", "3", "4", "5"]) assert.equal((await cli("fetch", `m:${v}.0.0`)).code, 0);
    for (const v of ["2", "4", "1", "5", "3"]) {
      await new Promise((r) => setTimeout(r, 20));
      assert.equal((await cli("fetch", `m:${v}.0.0`)).code, 0);
    }
    assert.equal((await cli("lock", "m:4.0.0")).code, 0); // the lockfile beside the config names 4.0.0
    // A fetch of 1.0.0 running now: it holds the version's lock.
    const held = path.join(assets, ".assetkit/locks/m/1.0.0");
    await mkdir(path.dirname(held), { recursive: true });
    const release = await lockfile.lock(held, { realpath: false });
    try {
      const before = await bytesUnder(assets);
      // The dry run cannot know which fetch will be running: it plans as if none were.
      const dry = JSON.parse((await cli("prune-local", "--max-size", "250KiB", "--dry-run", "--json")).stdout);
      assert.equal(await bytesUnder(assets), before, "the dry run removed nothing");
      assert.deepEqual(
        dry.removed.map((v: { version: string }) => v.version),
        ["2.0.0", "1.0.0", "5.0.0"],
      );

      const r = await cli("prune-local", "--max-size", "250KiB", "--json");
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      // 2 (least recently used) goes; 4 is locked and 1 held, so they stay; 5 goes; the dir still holds 300 KiB,
      // so 3 goes too, although it is the most recently used.
      assert.deepEqual(
        out.removed.map((v: { version: string }) => v.version),
        ["2.0.0", "5.0.0", "3.0.0"],
      );
      assert.deepEqual(out.kept, [
        { name: "m", version: "4.0.0", reason: `locked in ${path.join(cwd, "assets.lock")} (--all removes it too)` },
        { name: "m", version: "1.0.0", reason: "a running fetch holds it" },
      ]);
      assert.ok((await bytesUnder(assets)) <= 250 * KiB);
      assert.deepEqual((await readdir(path.join(assets, "m"))).filter((e) => !e.startsWith(".")).sort(), ["1.0.0", "4.0.0"]);
    } finally {
      await release();
    }
    // What is left still serves fetches without the store; what went is fetched again.
    assert.equal((await cli("fetch", "m:4.0.0", "--store", path.join(cwd, "nowhere"))).code, 0);
    assert.equal((await cli("fetch", "m:2.0.0")).code, 0);
  });

  it("--keep-last keeps the N most recently used of each asset; --all removes locked ones too", async () => {
    const { cli, assets } = await project();
    for (const v of ["1", "2", "3"]) {
      await new Promise((r) => setTimeout(r, 20));
      assert.equal((await cli("fetch", `m:${v}.0.0`)).code, 0);
    }
    assert.equal((await cli("lock", "m:1.0.0")).code, 0);
    const keep = JSON.parse((await cli("prune-local", "--keep-last", "1", "--json")).stdout);
    assert.deepEqual(
      keep.removed.map((v: { version: string }) => v.version),
      ["2.0.0"],
    );
    const all = JSON.parse((await cli("prune-local", "--keep-last", "1", "--all", "--json")).stdout);
    assert.deepEqual(
      all.removed.map((v: { version: string }) => v.version),
      ["1.0.0"],
    );
    assert.ok((await bytesUnder(assets)) < 101 * KiB, "one version (and its marker) is left");
    assert.equal((await cli("prune-local")).code, 2);
    assert.equal((await cli("prune-local", "--max-size", "lots")).code, 2);
  });

  it("never removes what a sync in the same dir serves: current, or a version kept for rollback", async () => {
    const { cli, assets } = await project();
    // sync into the assets dir itself after each promotion: current → 3.0.0, 2.0.0 kept for rollback (--keep 1).
    for (const v of ["1", "2", "3"]) {
      assert.equal((await cli("promote", `m:${v}.0.0`, "production")).code, 0);
      const r = await cli("sync", "m:production", "--dir", assets, "--keep", "1");
      assert.equal(r.code, 0, r.stderr);
    }
    assert.equal((await cli("fetch", "m:4.0.0")).code, 0); // used last, not served
    const out = JSON.parse((await cli("prune-local", "--max-size", "0", "--json")).stdout);
    assert.deepEqual(
      out.removed.map((v: { version: string }) => v.version),
      ["4.0.0"],
    );
    assert.deepEqual(out.kept.map((v: { version: string; reason: string }) => `${v.version} ${v.reason}`).sort(), [
      "2.0.0 a sync serves it (current, or kept for rollback)",
      "3.0.0 a sync serves it (current, or kept for rollback)",
    ]);
  });
});
