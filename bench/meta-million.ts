// The meta of a folder of COUNT files (default 1,000,000) without the files: builds it, stores it as assetkit
// writes it (storedDocuments: shards, then the .meta) in memory, reads it back (readMeta) and prints the documents'
// sizes, the times and the heap. Standalone: `node bench/meta-million.ts [COUNT]`.
import { createHash } from "node:crypto";
import { performance } from "node:perf_hooks";
import { assetDigest, buildMeta, readMeta, storedDocuments } from "../src/registry/manifest.ts";

const count = Number(process.argv[2] ?? 1_000_000);
const mib = (n: number): string => (n / 1048576).toFixed(1);
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

let t = performance.now();
const shards: Buffer[] = [];
let meta: Buffer | undefined;
for (const { shard, bytes } of storedDocuments(buildMeta(input, { createdBy: "bench", source: {}, metadata: {} }, etags))) {
  if (shard === undefined) meta = bytes;
  else shards.push(bytes);
}
const written = performance.now() - t;
t = performance.now();
const read = await readMeta(meta!, "bench meta", async (i) => shards[i]);
const readMs = performance.now() - t;
console.log(
  `${count} files: .meta ${mib(meta!.length)} MiB, ${shards.length} shards of at most ${mib(Math.max(...shards.map((s) => s.length)))} MiB; ` +
    `built and serialised in ${(written / 1000).toFixed(1)} s, read and validated in ${(readMs / 1000).toFixed(1)} s; ` +
    `${read.files.length} files, digest ${read.digest === digest ? "equal" : "DIFFERENT"}; heap ${mib(process.memoryUsage().heapUsed)} MiB, rss ${mib(process.memoryUsage().rss)} MiB`,
);
