// The order of paths in an asset digest is UTF-8 byte order (what other languages sort by); comparePaths computes
// it on UTF-16 code units, so it is checked here against encoding both sides, on the code units where the two
// orders differ (surrogates against U+E000–U+FFFF) as well as ASCII, accents and prefixes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
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
