// The meta of a folder of COUNT files (default 1,000,000) without the files: builds it, stores it as assetkit
// writes it (storedDocuments: shards, then the .meta) in memory, reads it back (readMeta) and prints the documents'
// sizes, the times and the heap the read meta takes. Standalone: `node --expose-gc bench/meta-million.ts [COUNT]
// [--no-etags]` (--no-etags: read as a fetch reads it, without the shards' etags).
import { createHash } from "node:crypto";
import { performance } from "node:perf_hooks";
import { assetDigest, buildMeta, readMeta, storedDocuments } from "../src/registry/manifest.ts";

const count = Number(process.argv.slice(2).find((a) => /^[0-9]+$/.test(a)) ?? 1_000_000);
const etags = !process.argv.includes("--no-etags");
const mib = (n: number): string => (n / 1048576).toFixed(1);
const heap = (): number => ((globalThis as { gc?: () => void }).gc?.(), process.memoryUsage().heapUsed);

/** The stored documents of the meta, and its digest: nothing else of the build stays referenced. */
function store(): { meta: Buffer; shards: Buffer[]; digest: string; ms: number } {
  const hex = (i: number): string => createHash("sha256").update(String(i)).digest("hex");
  const files = Array.from({ length: count }, (_, i) => ({
    path: `d${String(i % 1000).padStart(5, "0")}/f${String(i).padStart(7, "0")}.bin`,
    size: 1024,
    sha256: hex(i),
  }));
  files.sort((a, b) => (a.path < b.path ? -1 : 1));
  const digest = assetDigest(files, 16 * 1024 * 1024, "blake3");
  const input = { isDirectory: true, files, digest, size: count * 1024, partSize: 16 * 1024 * 1024, partAlgorithm: "blake3" as const };
  const etags = new Map(files.map((f) => [f.path, `"${"e".repeat(32)}"`]));
  const start = performance.now();
  const shards: Buffer[] = [];
  let meta: Buffer | undefined;
  for (const { shard, bytes } of storedDocuments(buildMeta(input, { createdBy: "bench", source: {}, metadata: {} }, etags))) {
    if (shard === undefined) meta = bytes;
    else shards.push(bytes);
  }
  return { meta: meta!, shards, digest, ms: performance.now() - start };
}

const stored = store();
const before = heap();
const start = performance.now();
const read = await readMeta(stored.meta, "bench meta", async (i) => stored.shards[i], { etags });
const readMs = performance.now() - start;
console.log(
  `${count} files: .meta ${mib(stored.meta.length)} MiB, ${stored.shards.length} shards of at most ${mib(Math.max(...stored.shards.map((s) => s.length)))} MiB; ` +
    `serialised in ${(stored.ms / 1000).toFixed(1)} s, read and validated in ${(readMs / 1000).toFixed(1)} s; ${read.files.length} files, ` +
    `digest ${read.digest === stored.digest ? "equal" : "DIFFERENT"}; the read meta${etags ? "" : " (no etags)"} holds ${mib(heap() - before)} MiB of heap`,
);
