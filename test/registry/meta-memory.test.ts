// A large folder's meta is written one shard at a time (storedMeta): each file entry is made as its shard is
// serialised, so what writing it holds beyond the publisher's own file list is about one shard, not a copy of the
// list (buildMeta's whole document, then every shard). The bytes are those of the whole document, sharded.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { buildMeta, PART_SIZE, storedDocuments, storedMeta, type PreparedInput } from "../../src/registry/manifest.ts";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
/** Live heap bytes, after a full collection. */
const liveHeap = (): number => {
  gc();
  return process.memoryUsage().heapUsed;
};

const extras = { createdBy: "assetkit test", source: {}, metadata: {}, now: new Date("2026-12-07T00:00:00Z") };
const etagOf = (index: number): string => `"${index.toString(16).padStart(32, "0")}"`;

/** `count` files of 1 KiB in 1,000 folders, in path order, as a publish has them once hashed. */
function preparedInput(count: number): PreparedInput {
  const files = Array.from({ length: count }, (_, i) => ({
    path: `d${String(i % 1000).padStart(5, "0")}/f${String(i).padStart(7, "0")}.bin`,
    source: "",
    size: 1024,
    sha256: i.toString(16).padStart(64, "0"),
  })).sort((a, b) => (a.path < b.path ? -1 : 1));
  return { isDirectory: true, files, digest: `sha256:${"0".repeat(64)}`, size: count * 1024, partSize: PART_SIZE, partAlgorithm: "blake3" };
}

describe("the meta of a large folder", () => {
  it("is stored as the same documents as the whole meta sharded", () => {
    const input = preparedInput(25_000);
    const etags = new Map(input.files.map((f, i) => [f.path, etagOf(i)]));
    const whole = [...storedDocuments(buildMeta(input, extras, etags))];
    const streamed = [...storedMeta(input, extras, (_, i) => etagOf(i))];
    assert.equal(streamed.length, 4); // three shards and the .meta
    assert.deepEqual(
      streamed.map((d) => [d.shard, d.bytes.toString("hex")]),
      whole.map((d) => [d.shard, d.bytes.toString("hex")]),
    );
  });

  it("is written holding about one shard beyond the file list, whatever the file count", () => {
    const input = preparedInput(200_000);
    const before = liveHeap();
    let most = 0;
    let documents = 0;
    for (const _document of storedMeta(input, extras, (_, i) => etagOf(i))) {
      most = Math.max(most, liveHeap() - before);
      documents++;
    }
    assert.equal(documents, 21); // 20 shards of 10,000 entries and the .meta
    // A shard (~1.8 MB of bytes, its entries as strings) and the .meta's contents (a pointer a file): a copy of the
    // file list (an entry object and an etag string a file) held 50 MB more.
    assert.ok(most < 16 * 1024 * 1024, `writing the meta of 200,000 files held ${(most / 1048576).toFixed(1)} MiB beyond the file list`);
  });
});
