// The hash pool's worker writing a download's batches and hashing them from memory (writeStream), against hashes
// computed here and the bytes read back from the file; many ranges queued at once, which the workers take in
// batches, each answered with its own hash or error; and small whole files, hashed on the event loop in slices.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, openSync, writeFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { HashPool } from "../../src/hashing/pool.ts";
import { blake3Kind, createHasher } from "../../src/hashing/part-hash.ts";

describe("hash pool: writing and hashing a part in a worker", () => {
  let dir: string;
  const pool = new HashPool(2);
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "assetkit-hashpool-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** Hands `data` to a writeStream at `offset` in 1 MiB batches (the last one short), as the transfer engine does. */
  async function writeThrough(kind: Parameters<HashPool["writeStream"]>[0], fd: number, data: Buffer, offset: number): Promise<string> {
    const stream = pool.writeStream(kind, fd);
    let batch: Buffer = Buffer.allocUnsafeSlow(1024 * 1024);
    for (let at = 0; at < data.length; at += batch.length) {
      const bytes = data.copy(batch, 0, at);
      batch = await stream.write(batch, bytes, offset + at);
      assert.equal(batch.length, 1024 * 1024, "the batch's memory comes back whole, for reuse");
    }
    return stream.digest();
  }

  for (const kind of ["sha256", blake3Kind()] as const) {
    test(`${kind}: two parts written out of order give the file's bytes, and each part's hash of them`, async () => {
      const file = path.join(dir, `${kind}.bin`);
      const first = randomBytes(3 * 1024 * 1024 + 12_345);
      const second = randomBytes(1024 * 1024 + 1);
      const fd = openSync(file, "w");
      try {
        const [secondHex, firstHex] = await Promise.all([writeThrough(kind, fd, second, first.length), writeThrough(kind, fd, first, 0)]);
        const expect = async (data: Buffer): Promise<string> => {
          const hasher = await createHasher(kind);
          hasher.update(data);
          return hasher.digest();
        };
        assert.equal(firstHex, await expect(first));
        assert.equal(secondHex, await expect(second));
      } finally {
        closeSync(fd);
      }
      assert.ok((await readFile(file)).equals(Buffer.concat([first, second])));
    });
  }

  test("a write the file refuses fails with the system's code, and the pool goes on", async () => {
    const fd = openSync(path.join(dir, "read-only.bin"), "w");
    closeSync(fd);
    const readOnly = openSync(path.join(dir, "read-only.bin"), "r");
    try {
      await assert.rejects(writeThrough("sha256", readOnly, randomBytes(1000), 0), { code: "EBADF" });
    } finally {
      closeSync(readOnly);
    }
    const file = path.join(dir, "after.bin");
    const data = randomBytes(5000);
    const out = openSync(file, "w");
    try {
      assert.equal(await writeThrough("sha256", out, data, 0), createHash("sha256").update(data).digest("hex"));
    } finally {
      closeSync(out);
    }
  });

  test("many ranges queued at once: each gets its own hash, and a missing file fails alone", async () => {
    const files = Array.from({ length: 150 }, (_, i) => {
      const file = path.join(dir, `many-${i}.bin`);
      const data = randomBytes(i === 7 ? 3 * 1024 * 1024 : 1000 + i * 700); // one range larger than a batch
      writeFileSync(file, data);
      return { file, data };
    });
    const missing = path.join(dir, "missing.bin");
    const results = await Promise.allSettled([
      ...files.map(({ file, data }) => pool.hashRange(file, 10, data.length)),
      pool.hashRange(missing, 0, 10),
      ...files.map(({ file, data }) => pool.hashFile(file, data.length)),
    ]);
    const expected = [
      ...files.map(({ data }) => createHash("sha256").update(data.subarray(10)).digest("hex")),
      undefined,
      ...files.map(({ data }) => createHash("sha256").update(data).digest("hex")),
    ];
    results.forEach((result, i) => {
      if (expected[i] === undefined)
        assert.ok(result.status === "rejected" && (result.reason as NodeJS.ErrnoException).code === "ENOENT", "the missing file's range fails");
      else assert.deepEqual(result, { status: "fulfilled", value: expected[i] }, `range ${i}`);
    });
  });

  test("small whole files are hashed on the event loop a slice at a time: each its own hash or error, I/O in between", async () => {
    const files = Array.from({ length: 600 }, (_, i) => {
      const file = path.join(dir, `small-${i}.bin`);
      const data = randomBytes(i === 0 ? 0 : 64 * 1024);
      writeFileSync(file, data);
      return { file, size: data.length, hex: createHash("sha256").update(data).digest("hex") };
    });
    const short = path.join(dir, "short.bin");
    writeFileSync(short, randomBytes(100));
    const order: string[] = [];
    const hashes = [...files.map(({ file, size }) => pool.hashFile(file, size)), pool.hashFile(path.join(dir, "no-such.bin"), 10), pool.hashFile(short, 200)];
    void hashes.at(-3)!.then(() => order.push("last file hashed"));
    setImmediate(() => order.push("I/O turn"));
    const results = await Promise.allSettled(hashes);
    files.forEach(({ hex }, i) => assert.deepEqual(results[i], { status: "fulfilled", value: hex }, `file ${i}`));
    const [missing, shorter] = results.slice(-2);
    assert.ok(missing?.status === "rejected" && (missing.reason as NodeJS.ErrnoException).code === "ENOENT");
    assert.ok(shorter?.status === "rejected" && (shorter.reason as NodeJS.ErrnoException).code === "ESHORT");
    assert.deepEqual(order, ["I/O turn", "last file hashed"], "the loop ran other callbacks before the queue was done");
  });

  test("small files whose reads come from the disk are read on the thread pool once reads are slow: each its own hash or error", async () => {
    // Every read counts as slow here (a disk cannot be made cold without root): after 8 in a row the pool switches.
    const cold = new HashPool(1, () => true);
    const files = Array.from({ length: 100 }, (_, i) => {
      const file = path.join(dir, `cold-${i}.bin`);
      const data = randomBytes(i === 0 ? 0 : 1 + ((i * 2999) % (256 * 1024)));
      writeFileSync(file, data);
      return { file, size: data.length, hex: createHash("sha256").update(data).digest("hex") };
    });
    const short = path.join(dir, "cold-short.bin");
    writeFileSync(short, randomBytes(100));
    const hashes = [...files.map(({ file, size }) => cold.hashFile(file, size)), cold.hashFile(path.join(dir, "no-such.bin"), 10), cold.hashFile(short, 200)];
    const results = await Promise.allSettled(hashes);
    assert.equal(cold.readingFromDisk, true, "switched to reading on the thread pool");
    files.forEach(({ hex }, i) => assert.deepEqual(results[i], { status: "fulfilled", value: hex }, `file ${i}`));
    const [missing, shorter] = results.slice(-2);
    assert.ok(missing?.status === "rejected" && (missing.reason as NodeJS.ErrnoException).code === "ENOENT");
    assert.ok(shorter?.status === "rejected" && (shorter.reason as NodeJS.ErrnoException).code === "ESHORT");
    assert.equal(pool.readingFromDisk, false, "the page cache's reads (this test's files, just written) keep the event loop's");
  });
});
