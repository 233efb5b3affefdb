// A hash-pool worker (see pool.ts): hashes byte ranges of local files, read back from the page cache, or writes
// bytes it is handed to a file and hashes them as they are (a download's parts). Jobs come a batch at a time; each
// names the hash and its implementation, chosen by the main thread.
import { closeSync, openSync, readSync } from "node:fs";
import { parentPort } from "node:worker_threads";
import { writeInPieces } from "../base/page-cache-write.ts";
import type { Answer, HashJob } from "./pool.ts";
import { createHasher, type Hasher, type HashKind } from "./part-hash.ts";

const buffer = Buffer.allocUnsafe(1024 * 1024);
/** One hasher per kind for ranges hashed alone (a job runs to its end before the next starts). */
const alone = new Map<HashKind, Promise<Hasher>>();
/** Running hashes that grow range by range, by stream id. */
const streams = new Map<number, Promise<Hasher>>();

async function run(job: HashJob): Promise<string> {
  let hasher: Promise<Hasher>;
  if (job.stream === undefined) {
    hasher = alone.get(job.kind) ?? createHasher(job.kind);
    alone.set(job.kind, hasher);
  } else {
    hasher = streams.get(job.stream) ?? createHasher(job.kind);
    streams.set(job.stream, hasher);
  }
  const hash = await hasher;
  try {
    if (job.write) {
      const bytes = Buffer.from(job.write.data, 0, job.end - job.start);
      writeInPieces(job.write.fd, bytes, job.start);
      hash.update(bytes);
    } else if (job.end > job.start) {
      const fd = openSync(job.file, "r");
      try {
        for (let at = job.start; at < job.end;) {
          const n = readSync(fd, buffer, 0, Math.min(buffer.length, job.end - at), at);
          if (n === 0) throw Object.assign(new Error(`${job.file} ends at byte ${at}, before ${job.end}`), { code: "ESHORT" });
          hash.update(n === buffer.length ? buffer : buffer.subarray(0, n));
          at += n;
        }
      } finally {
        closeSync(fd);
      }
    }
  } catch (err) {
    if (job.stream === undefined) alone.delete(job.kind); // its state is half-fed: start a clean one next time
    throw err;
  }
  if (job.stream !== undefined && !job.final) return "";
  if (job.stream !== undefined) streams.delete(job.stream);
  return hash.digest();
}

/** A message's jobs, run in order, answered in one message (see pool.ts). */
parentPort!.on("message", (jobs: HashJob[]) => {
  void (async () => {
    const answers: Answer[] = [];
    for (const job of jobs) {
      try {
        // A written batch's memory goes back to the main thread, which reuses it.
        answers.push({ id: job.id, hex: await run(job), ...(job.write ? { data: job.write.data } : {}) });
      } catch (err) {
        if (job.stream !== undefined) streams.delete(job.stream);
        answers.push({ id: job.id, error: (err as Error).message, code: (err as NodeJS.ErrnoException).code });
      }
    }
    parentPort!.postMessage(
      answers,
      jobs.flatMap((job) => (job.write ? [job.write.data] : [])),
    );
  })();
});
