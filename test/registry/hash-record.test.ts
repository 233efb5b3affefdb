// The hash record (hash-record.ts): publish does not read again a file found as the record of its folder has it
// (counted at the hash pool, the one place files are read to be hashed); a file changed with its size and mtime
// kept is read, and so is a file changed within RACY_MARGIN_MS of its hashing, whose stat may not show a change;
// a touched file of the same content leaves the version unchanged; a damaged, truncated or foreign record is
// ignored, never trusted; the record lives in the assets dir, never inside the published folder.
import assert from "node:assert/strict";
import { readdir, readFile, stat, utimes, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { hashPool } from "../../src/hashing/pool.ts";
import { prepareInput, type HashingOptions } from "../../src/registry/manifest.ts";
import { RACY_MARGIN_MS } from "../../src/registry/hash-record.ts";
import { Registry } from "../../src/registry/registry.ts";
import { FsStore } from "../../src/store/fs.ts";
import { runCli, scratch, writeTree } from "../helpers/cli.ts";
import { TEST_SETTINGS } from "../helpers/settings.ts";

/** Small files, and one of three 1 KiB parts (hashed by range): both ways a file is read. */
const TREE = {
  "a.txt": "alpha",
  "b/c.txt": "gamma",
  "b/d.txt": "delta",
  "big.bin": Buffer.alloc(3000, 9),
};
const PART_SIZE = 1024;

describe("the hash record", () => {
  let hashed: string[];
  const original = { hashFile: hashPool.hashFile, hashRange: hashPool.hashRange };
  beforeEach(() => {
    hashed = [];
    hashPool.hashFile = function (file, size) {
      hashed.push(path.basename(file));
      return original.hashFile.call(this, file, size);
    };
    hashPool.hashRange = function (file, start, end, kind) {
      hashed.push(`${path.basename(file)}@${start}`);
      return original.hashRange.call(this, file, start, end, kind);
    };
  });
  afterEach(() => Object.assign(hashPool, original));

  /** Hashing options with the record in `dir`, its clock `aheadMs` past the real one (files written now look older). */
  const recorded = (dir: string, aheadMs = RACY_MARGIN_MS + 1000): HashingOptions => ({
    partSize: PART_SIZE,
    record: { dir, now: () => Date.now() + aheadMs },
  });

  async function setup() {
    const cwd = await scratch();
    const input = await writeTree(path.join(cwd, "in"), TREE);
    return { cwd, input, records: path.join(cwd, "records") };
  }

  it("an unchanged folder is not read again: same digest, no hash; a record inside the input is not kept", async () => {
    const { input, records } = await setup();
    const first = await prepareInput(input, recorded(records));
    assert.ok(hashed.length > 0);
    assert.equal((await readdir(records)).length, 1, "one record for the folder");
    const written = await stat(path.join(records, (await readdir(records))[0]!));
    hashed = [];
    const second = await prepareInput(input, recorded(records));
    assert.deepEqual(hashed, [], "no file read");
    assert.equal(second.digest, first.digest);
    const hashesOf = (files: typeof first.files) => files.map(({ path, size, sha256, parts }) => ({ path, size, sha256, parts }));
    assert.deepEqual(hashesOf(second.files), hashesOf(first.files));
    const after = await stat(path.join(records, (await readdir(records))[0]!));
    assert.equal(after.mtimeMs, written.mtimeMs, "a record that would not change is not rewritten");

    hashed = [];
    await prepareInput(input, recorded(path.join(input, ".records")));
    await prepareInput(input, recorded(path.join(input, ".records")));
    assert.equal(hashed.length, 2 * (3 + 1 + 3), "both runs read every file");
    await assert.rejects(readdir(path.join(input, ".records")), { code: "ENOENT" });
  });

  it("a record of several blocks (64 KiB each) is read through: 1,500 files, none read again", async () => {
    const cwd = await scratch();
    const many = Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`d${i % 7}/${"long-name-".repeat(4)}${i}.txt`, `${i}`]));
    const input = await writeTree(path.join(cwd, "in"), many);
    const first = await prepareInput(input, recorded(path.join(cwd, "records")));
    hashed = [];
    const second = await prepareInput(input, recorded(path.join(cwd, "records")));
    assert.deepEqual(hashed, []);
    assert.equal(second.digest, first.digest);
  });

  it("a file rewritten with the same size and its mtime put back is read again, and its new content counts", async () => {
    const { input, records } = await setup();
    const first = await prepareInput(input, recorded(records));
    const file = path.join(input, "b/c.txt");
    const { atime, mtime } = await stat(file);
    await writeFile(file, "GAMMA");
    await utimes(file, atime, mtime);
    hashed = [];
    const second = await prepareInput(input, recorded(records));
    assert.deepEqual(hashed, ["c.txt"]);
    assert.notEqual(second.digest, first.digest);
    assert.equal(second.digest, (await prepareInput(input, { partSize: PART_SIZE })).digest);
  });

  it("racy: a file changed within RACY_MARGIN_MS of its hashing is not recorded, so it is read again however its stat looks", async () => {
    const { input, records } = await setup();
    // The real clock: every file of TREE was written just now, within the margin.
    await prepareInput(input, recorded(records, 0));
    hashed = [];
    await prepareInput(input, recorded(records, 0));
    assert.equal(hashed.length, 3 + 1 + 3, "every file read again");
    // Once they are older than the margin, they are recorded and then skipped.
    await prepareInput(input, recorded(records));
    hashed = [];
    await prepareInput(input, recorded(records));
    assert.deepEqual(hashed, []);
  });

  it("a touched file of the same content is read again, and publish --if-changed finds the version unchanged", async () => {
    const { cwd, input, records } = await setup();
    const registry = new Registry(new FsStore(path.join(cwd, "store")), { settings: TEST_SETTINGS, versioning: "semver" });
    const extras = { createdBy: "assetkit test", source: {}, metadata: {} };
    await registry.publish({ name: "m", input: await prepareInput(input, recorded(records)), ...extras });
    const later = new Date(Date.now() + 60_000);
    await utimes(path.join(input, "a.txt"), later, later);
    hashed = [];
    const outcome = await registry.publish({
      name: "m",
      input: await prepareInput(input, recorded(records, 61_000 + RACY_MARGIN_MS)),
      ifChanged: true,
      ...extras,
    });
    assert.deepEqual(hashed, ["a.txt"]);
    assert.equal(outcome.published, false);
    assert.equal(outcome.version, "1.0.0");
  });

  it("a damaged, truncated or foreign record is ignored: the files are read and the digest is right", async () => {
    const { input, records } = await setup();
    const right = await prepareInput(input, recorded(records));
    const [name] = await readdir(records);
    const file = path.join(records, name!);
    const whole = await readFile(file);
    const damaged = Buffer.from(whole);
    damaged[damaged.length - 40] = damaged[damaged.length - 40]! ^ 0xff; // inside the last entry's hashes
    for (const [what, bytes] of [
      ["a flipped byte", damaged],
      ["a truncated record", whole.subarray(0, whole.length - 10)],
      ["another format", Buffer.from("not a record")],
    ] as const) {
      await writeFile(file, bytes);
      hashed = [];
      const read = await prepareInput(input, recorded(records));
      assert.equal(read.digest, right.digest, what);
      assert.ok(hashed.length > 0, `${what}: files read`);
      assert.deepEqual(await readFile(file), whole, `${what}: rewritten`);
    }
  });

  it("the CLI keeps the record in the assets dir, never inside the published folder", async () => {
    const { cwd, input } = await setup();
    const cli = (args: string[], assets: string) => runCli(["--store", "store", ...args], { cwd, env: { ASSETKIT_ASSETS_DIR: assets } });
    assert.equal((await cli(["publish", "in", "m"], "assets")).code, 0);
    assert.equal((await readdir(path.join(cwd, "assets/.assetkit/hashes"))).length, 1);
    // An assets dir inside the folder published: a record there would change the folder at every publish.
    const inside = path.join(input, "assets");
    const again = await cli(["publish", "in", "m", "--if-changed"], inside);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /\tunchanged\t/);
    await assert.rejects(readdir(inside), { code: "ENOENT" });
  });
});
