// A publish holds every walked file to its end, so they are kept compactly (manifest.ts WalkedFiles): hashes as
// bytes of one buffer, the local path made from the root. What each file then holds is bounded here, and what the
// compact form gives back (sources, hashes, part hashes, a link's target) is checked against hashFile's.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { hashFile, prepareInput } from "../../src/registry/manifest.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
/** Live heap bytes, after a full collection. */
const liveHeap = (): number => {
  gc();
  return process.memoryUsage().heapUsed;
};

const scratch = mkdtempSync(path.join(tmpdir(), "assetkit-walked-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

describe("the files of a walked folder", () => {
  it("give each file's local path, hashes and part hashes, a link's as its target's", async () => {
    const root = path.join(scratch, "input");
    mkdirSync(path.join(root, "sub"), { recursive: true });
    writeFileSync(path.join(root, "a.txt"), "alpha");
    writeFileSync(path.join(root, "sub", "big.bin"), Buffer.alloc(5000, 7));
    symlinkSync(path.join(root, "a.txt"), path.join(root, "sub", "link.txt"));
    const partSize = 2048;
    const input = await prepareInput(root, { partSize });
    assert.deepEqual(
      input.files.map((f) => [f.path, f.source]),
      [
        ["a.txt", path.join(root, "a.txt")],
        ["sub/big.bin", path.join(root, "sub", "big.bin")],
        ["sub/link.txt", path.join(root, "a.txt")],
      ],
    );
    for (const f of input.files) {
      const want = await hashFile(f.source, partSize);
      assert.deepEqual({ size: f.size, sha256: f.sha256, parts: f.parts }, { parts: undefined, ...want }, f.path);
    }
    assert.equal(input.files[1]!.parts!.length, 3);
  });

  it("hold less than 300 bytes a file once hashed", async () => {
    const root = path.join(scratch, "many");
    const count = 10_000;
    for (let folder = 0; folder < 10; folder++) {
      mkdirSync(path.join(root, `d${folder}`), { recursive: true });
      for (let i = 0; i < count / 10; i++) writeFileSync(path.join(root, `d${folder}`, `f${String(i).padStart(5, "0")}.bin`), String(i));
    }
    await prepareInput(path.join(root, "d0", "f00000.bin")); // the hash pool started, its code loaded
    const before = liveHeap();
    const input = await prepareInput(root);
    const perFile = (liveHeap() - before) / count;
    assert.equal(input.files.length, count);
    // As plain objects (a second string for the local path, the sha256 as 64 hex characters, the stamp as six
    // concatenations) a file held ~640 bytes; 150–230 now (the live heap's noise is ~70 bytes a file here).
    assert.ok(perFile < 300, `a walked and hashed file holds ${perFile.toFixed(0)} bytes`);
  });
});
