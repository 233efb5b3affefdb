// A large version's etags are held packed until its meta is written: each reads back as it was set, across chunks.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PackedStrings } from "../../src/base/packed-strings.ts";

describe("packed strings", () => {
  it("read back as set, across chunks; unset and empty ones as undefined", () => {
    const count = 100_000;
    const etagOf = (i: number): string => `"${i.toString(16).padStart(32, "0")}-é${i}"`; // ~42 bytes: 4 MiB, several chunks
    const packed = new PackedStrings(count);
    for (let i = 0; i < count; i += 2) packed.set(i, etagOf(i));
    packed.set(1, "");
    packed.set(3, "x".repeat(3 * 1024 * 1024)); // longer than a chunk
    for (let i = 0; i < count; i++) {
      const want = i === 3 ? "x".repeat(3 * 1024 * 1024) : i % 2 ? undefined : etagOf(i);
      if (packed.get(i) !== want) assert.equal(packed.get(i), want, `string ${i}`);
    }
  });
});
