// The order of paths in an asset digest is UTF-8 byte order (what other languages sort by); comparePaths computes
// it on UTF-16 code units, so it is checked here against encoding both sides, on the code units where the two
// orders differ (surrogates against U+E000–U+FFFF) as well as ASCII, accents and prefixes. A meta is read in that
// order whatever order its writer used.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { assetDigest, buildMeta, indexOfPath, parseMeta } from "../../src/registry/manifest.ts";
import { comparePaths } from "../../src/registry/paths.ts";

const PIECES = ["a", "b", "z", "/", ".", "-", "é", "ß", "中", "\u{e000}", "\u{fb01}", "\u{ffef}", "😀", "\u{10000}", "\u{1f600}x", ""];

function randomPath(random: () => number): string {
  let out = "";
  const length = Math.floor(random() * 5);
  for (let i = 0; i < length; i++) out += PIECES[Math.floor(random() * PIECES.length)];
  return out;
}

/** A small deterministic generator (mulberry32), so a failure repeats. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("path order", () => {
  it("is UTF-8 byte order, where UTF-16 order differs too", () => {
    assert.ok("\u{ffef}" > "😀", "UTF-16 puts the surrogate pair first");
    assert.ok(comparePaths("\u{ffef}", "😀") < 0, "code-point order puts U+FFEF first");
    const random = seeded(15);
    for (let i = 0; i < 20_000; i++) {
      const a = randomPath(random);
      const b = randomPath(random);
      assert.equal(Math.sign(comparePaths(a, b)), Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b))), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
    }
  });
});

describe("a meta whose writer listed its files out of path order", () => {
  const extras = { createdBy: "test", source: { repository: "o/r", run_url: "https://ci/1" }, metadata: {} };
  const entries = [
    { path: "b/x.bin", size: 1, sha256: "b".repeat(64) },
    { path: "a.bin", size: 2, sha256: "a".repeat(64) },
    { path: "é.bin", size: 3, sha256: "e".repeat(64) },
    { path: "b.bin", size: 4, sha256: "c".repeat(64) },
  ];
  const sorted = ["a.bin", "b.bin", "b/x.bin", "é.bin"];

  it("is read in path order (files are looked up by binary search), its digest checked as written", () => {
    const input = {
      isDirectory: true,
      files: entries,
      size: 10,
      partSize: 1 << 26,
      partAlgorithm: "blake3" as const,
      digest: assetDigest(entries, 1 << 26, "blake3"),
    };
    const doc = buildMeta(input, extras);
    const shuffled = { ...doc, contents: entries.map((f) => f.path), assetkit: { ...doc.assetkit!, files: entries } };
    const meta = parseMeta(Buffer.from(JSON.stringify(shuffled)), "m:1.0.0");
    assert.deepEqual(
      meta.files.map((f) => f.path),
      sorted,
    );
    assert.equal(meta.digest, input.digest);
    assert.deepEqual(meta.files[indexOfPath(meta.files, "b/x.bin")], entries[0]);
  });

  it("as modelkit writes it (contents alone): the same order", () => {
    const modelkit = { push_date: "2026-01-01T00:00:00Z", is_directory: true, contents: entries.map((f) => f.path) };
    assert.deepEqual(
      parseMeta(Buffer.from(JSON.stringify(modelkit)), "m:1.0.0").files.map((f) => f.path),
      sorted,
    );
  });
});
