// Moving bytes from a store into local files. One bounded pool of requests serves every file and every part, so
// 2,000 small objects and one large one keep the same number of requests in flight. Large objects are read as
// parallel byte ranges written at their offsets. A file with part hashes (meta schemas 2 and 3) has each part's
// batches written and hashed from memory, so each part is verified on its own, with no read-back and one writer per
// file: by the worker pool (hashing/pool.ts) on any free core, or on the event loop itself with two cores or fewer
// (see eventLoopPartWriter); a part that fails is read again once. A file without them (or whose part hash runs slowly
// here: see part-hash.ts) is written on the event loop's thread pool and hashed whole, in order, by a worker that
// reads the completed prefix back. A request that fails or stalls mid-way is retried with backoff from the bytes it
// already delivered. Small objects are the exception: they are hashed as they arrive (see INLINE_HASH_BYTES).
import { createHash, type Hash } from "node:crypto";
import { closeSync, open as openFile, openSync, writeSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { availableParallelism } from "node:os";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { AssetError } from "../base/errors.ts";
import { writeInPieces } from "../base/page-cache-write.ts";
import { hashPool } from "../hashing/pool.ts";
import { createHasher, partCheckKind, type HashKind, type PartAlgorithm } from "../hashing/part-hash.ts";
import { receivedBytes } from "../base/heap-size.ts";
import { pumpChunks } from "../store/chunk-body.ts";
import { Limiter } from "../store/limiter.ts";
import { StoreError, type ByteRange } from "../store/store.ts";
import { backoffMs, givenUp } from "../store/layers/retry.ts";
import type { Tuning } from "../store/tuning.ts";

export interface Expected {
  size?: number;
  sha256?: string;
  /** The hash of each `partSize` bytes (meta schemas 2 and 3), bound to the asset digest by the meta's validation. */
  parts?: string[];
  partSize?: number;
  /** What `parts` are hashed with (default sha256, as in schema 2). */
  partAlgorithm?: PartAlgorithm;
}

/** How far a transfer is, out of what it needs. */
export interface TransferProgress {
  bytes: number;
  totalBytes: number;
  files: number;
  totalFiles: number;
}

/** Counts one stored file of `size` bytes into its tally (uploaded, copied…) and the whole transfer's progress, and reports it. */
export function countStoredFile(
  tally: { files: number; bytes: number },
  progress: TransferProgress,
  size: number,
  onProgress: ((progress: TransferProgress) => void) | undefined,
): void {
  tally.files++;
  tally.bytes += size;
  progress.files++;
  progress.bytes += size;
  onProgress?.(progress);
}

/** Opens the object, or the given range of it. */
export type OpenObject = (range?: ByteRange) => Promise<Readable>;

export interface TransferSettings extends Tuning {
  /** Tries of one request; a try that delivered bytes does not count against them. */
  attempts: number;
  /** Verified parts are written and hashed on the event loop (see eventLoopPartWriter), not by the hash pool's worker. */
  partsOnEventLoop: boolean;
}

/** Memory for bytes a store-to-store copy reads ahead of its hashed position (src/transfer/verified-source.ts). */
export const READ_AHEAD_BYTES = 32 * 1024 * 1024;

/** The store layers' budget (ASSETKIT_RETRIES, ASSETKIT_IDLE_TIMEOUT), read once into the context. */
export function transferSettings(tuning: Tuning): TransferSettings {
  return { ...tuning, attempts: tuning.retries + 1, partsOnEventLoop: availableParallelism() <= 2 };
}

interface Part {
  /** 0-based, for messages. */
  index: number;
  start: number;
  /** Inclusive, as in an HTTP range. */
  end: number;
  received: number;
}

export class Transfers {
  readonly settings: TransferSettings;
  private readonly requests: Limiter;

  constructor(settings: TransferSettings) {
    this.settings = settings;
    this.requests = new Limiter(settings.concurrency);
  }

  /**
   * Downloads an object into a new file at `dest`, checking size and hashes against the meta. `label` names the
   * object in errors; the caller removes `dest` on failure (it lives in a temporary folder). Returns what was
   * written (its size and sha256), for callers that had no meta to check it against.
   */
  async download(
    openObject: OpenObject,
    dest: string,
    expected: Expected,
    label: string,
    onBytes?: (n: number) => void,
  ): Promise<{ size: number; sha256: string }> {
    const { size, parts, partSize } = expected;
    const algorithm = expected.partAlgorithm ?? "sha256";
    // Parts whose hash cannot run fast here (BLAKE3 without the native addon) leave the whole-file sha256 to check.
    const partKind = parts && partCheckKind(algorithm);
    const verifiedParts = size !== undefined && parts !== undefined && partSize !== undefined && partKind;
    if (size !== undefined && size <= Math.min(INLINE_HASH_BYTES, this.settings.partSize) && !verifiedParts)
      return this.downloadSmall(openObject, dest, size, expected.sha256, label, onBytes);
    const handle = await open(dest, "wx");
    try {
      if (verifiedParts) {
        await this.readVerifiedParts(openObject, handle, size, partSize, { hashes: parts, algorithm, kind: partKind }, label, onBytes);
        return { size, sha256: expected.sha256 ?? "" };
      }
      let sha256: string;
      let written = size ?? 0;
      if (size === undefined) {
        await this.requests.run(() => this.readWhole(openObject, handle, label, onBytes));
        written = (await handle.stat()).size;
        sha256 = await hashPool.hashFile(dest, written);
      } else if (size > this.settings.partSize) {
        sha256 = await this.readHashedInOrder(openObject, handle, dest, size, label, onBytes);
      } else {
        await this.requests.run(() => this.readPart(openObject, fileWriter(handle), newPart(0, 0, size - 1), size, label, { onBytes }));
        sha256 = await hashPool.hashFile(dest, size);
      }
      checkSha256(label, written, expected.sha256, sha256);
      return { size: written, sha256 };
    } finally {
      await handle.close();
    }
  }

  /** An object of up to INLINE_HASH_BYTES: hashed on the event loop as it arrives, and written by a SmallFile. */
  private async downloadSmall(
    openObject: OpenObject,
    dest: string,
    size: number,
    expectedSha256: string | undefined,
    label: string,
    onBytes: ((n: number) => void) | undefined,
  ): Promise<{ size: number; sha256: string }> {
    const hash = createHash("sha256");
    // The file is opened within the request's slot: 2,000 files waiting for one do not hold 2,000 descriptors.
    await this.requests.run(async () => {
      const file = new SmallFile(dest, size);
      try {
        if (size > 0) await this.readPart(openObject, file, newPart(0, 0, size - 1), size, label, { onBytes, hash });
        await file.created(); // an empty object is an empty file
      } finally {
        await file.close();
      }
    });
    const sha256 = hash.digest("hex");
    checkSha256(label, size, expectedSha256, sha256);
    return { size, sha256 };
  }

  /** An object of unknown size (a meta written by modelkit): one stream, which cannot be resumed. */
  private async readWhole(openObject: OpenObject, handle: FileHandle, label: string, onBytes?: (n: number) => void): Promise<void> {
    const batch = new WriteBatch(fileWriter(handle));
    let position = 0;
    await pumpChunks(
      await openObject(),
      (chunk) => {
        const writing = batch.add(chunk, position);
        position += chunk.length;
        onBytes?.(chunk.length);
        return writing;
      },
      undefined,
      receivedBytes,
    );
    await batch.flush();
  }

  /**
   * Runs `read` for each part of a `size`-byte object, in parallel (each read takes its requests from the pool). The
   * first failure cancels the parts still running and is thrown.
   */
  private async forEachPart(size: number, partSize: number, read: (part: Part, cancelled: AbortSignal) => Promise<void>): Promise<void> {
    const failed = new AbortController();
    const parts: Part[] = [];
    for (let start = 0; start < size; start += partSize) parts.push(newPart(parts.length, start, Math.min(size, start + partSize) - 1));
    const results = await Promise.allSettled(
      parts.map(async (part) => {
        try {
          await read(part, failed.signal);
        } catch (err) {
          if (!failed.signal.aborted) failed.abort(err);
          throw err;
        }
      }),
    );
    if (failed.signal.aborted) throw failed.signal.reason;
    const failure = results.find((r) => r.status === "rejected");
    if (failure) throw failure.reason;
  }

  /**
   * Schemas 2 and 3: every part checked against its own hash. The hash pool's worker writes each part and hashes it
   * from memory on the way (no read-back), on any free core; a bad part is read once more.
   */
  private async readVerifiedParts(
    openObject: OpenObject,
    handle: FileHandle,
    size: number,
    partSize: number,
    { hashes, algorithm, kind }: { hashes: string[]; algorithm: PartAlgorithm; kind: HashKind },
    label: string,
    onBytes: ((n: number) => void) | undefined,
  ): Promise<void> {
    if (hashes.length !== Math.ceil(size / partSize)) throw integrity(label, `the meta lists ${hashes.length} part hashes for ${size} bytes`);
    if (size === 0) return;
    await this.forEachPart(size, partSize, async (part, cancelled) => {
      const readChecked = async (): Promise<boolean> => {
        const writer = this.settings.partsOnEventLoop ? await eventLoopPartWriter(kind, handle.fd) : hashingWriter(hashPool.writeStream(kind, handle.fd));
        await this.requests.run(() => this.readPart(openObject, writer, part, size, label, { onBytes, cancelled }));
        return (await writer.digest()) === hashes[part.index];
      };
      if (await readChecked()) return;
      // Read the part again, once: a byte flipped on the way is not the store's content.
      cancelled.throwIfAborted();
      onBytes?.(-part.received);
      part.received = 0;
      if (!(await readChecked())) {
        throw integrity(
          label,
          `part ${part.index + 1} of ${hashes.length} (bytes ${part.start}-${part.end}) does not match its ${algorithm} ${hashes[part.index]}, twice`,
        );
      }
    });
  }

  /** Schema 1: one sha256 over the whole file, fed by the worker pool as the completed prefix grows. */
  private async readHashedInOrder(
    openObject: OpenObject,
    handle: FileHandle,
    dest: string,
    size: number,
    label: string,
    onBytes: ((n: number) => void) | undefined,
  ): Promise<string> {
    const hash = hashPool.stream(dest);
    const complete: boolean[] = [];
    let hashed = 0; // parts handed to the hash
    const { partSize } = this.settings;
    await this.forEachPart(size, partSize, async (part, cancelled) => {
      await this.requests.run(() => this.readPart(openObject, fileWriter(handle), part, size, label, { onBytes, cancelled }));
      complete[part.index] = true;
      for (; complete[hashed]; hashed++) hash.add(hashed * partSize, Math.min(size, (hashed + 1) * partSize));
    });
    return hash.digest();
  }

  /** Reads one part (or a whole small object) into the file at its offset, retrying from the bytes already received. */
  private async readPart(
    openObject: OpenObject,
    writer: BatchWriter,
    part: Part,
    size: number,
    label: string,
    how: { onBytes?: ((n: number) => void) | undefined; cancelled?: AbortSignal; hash?: Hash },
  ): Promise<void> {
    const length = part.end - part.start + 1;
    const batch = new WriteBatch(writer);
    for (let attempt = 1; ; attempt++) {
      how.cancelled?.throwIfAborted();
      const from = part.start + part.received;
      const before = part.received;
      try {
        const source = await openObject(from === 0 && part.end === size - 1 ? undefined : { start: from, end: part.end });
        await pumpChunks(
          source,
          (chunk) => {
            if (part.received + chunk.length > length) throw integrity(label, `the store sent more than the ${size} bytes the meta lists`);
            const writing = batch.add(chunk, part.start + part.received);
            how.hash?.update(chunk); // exactly the bytes counted: a resumed read continues the same hash
            part.received += chunk.length;
            how.onBytes?.(chunk.length);
            return writing;
          },
          how.cancelled,
          receivedBytes,
        );
        await batch.flush();
        // A response that ends cleanly but short: the object is shorter than the meta says.
        if (part.received < length) throw integrity(label, `the store sent ${part.start + part.received} of the ${size} bytes the meta lists`);
        return;
      } catch (err) {
        await batch.flush(); // what arrived is good: keep it, and resume after it
        if (part.received > before) attempt = 1; // progress was made: a flaky link is not a dead one
        if (!retryable(err) || how.cancelled?.aborted) throw err;
        // Spent: persistent, as the store layers mark theirs, so no caller retries it again.
        if (attempt >= this.settings.attempts) throw err instanceof StoreError ? givenUp(err, attempt) : err;
        await retryBackoff(attempt);
      }
    }
  }
}

async function writeAt(handle: FileHandle, chunk: Buffer, position: number): Promise<void> {
  for (let done = 0; done < chunk.length;) {
    const { bytesWritten } = await handle.write(chunk, done, chunk.length - done, position + done);
    done += bytesWritten;
  }
}

/** Where full batches go, and how big a batch it takes. */
interface BatchWriter {
  batchBytes: number;
  /** Writes `bytes` of `batch` at `position`; resolves with the memory to reuse (the batch, or what came back for it). */
  write(batch: Buffer, bytes: number, position: number): Promise<Buffer>;
}

/**
 * The plain writer: a positioned write per 256 KiB on the event loop's thread pool (larger writes make the kernel
 * allocate larger page-cache folios, which cost more system time per byte on this project's VMs: see base/page-cache-write.ts).
 */
function fileWriter(handle: FileHandle): BatchWriter {
  return {
    batchBytes: 256 * 1024,
    write: async (batch, bytes, position) => {
      await writeAt(handle, batch.subarray(0, bytes), position);
      return batch;
    },
  };
}

/** A verified part's writer: it writes the part's batches and hashes them from memory, in order. */
interface PartWriter extends BatchWriter {
  /** The hex digest of every byte written. */
  digest(): Promise<string>;
}

/**
 * The hash pool's writer: the worker writes each batch and hashes it from memory. Every batch is a message each way
 * between threads, ~40-70 µs of CPU apiece on a 2-core VM, so batches are large: fetching 2 GiB took 3.4 CPU s
 * with 1 MiB batches, 2.95 with 2 MiB, 2.9 with 4 MiB (medians of 4); peak RSS 131, 147, 180 MiB.
 */
function hashingWriter(hashed: { write: BatchWriter["write"]; digest(): Promise<string> }): PartWriter {
  return { batchBytes: 2 * 1024 * 1024, write: hashed.write, digest: hashed.digest };
}

/**
 * With two cores or fewer, the event loop writes and hashes a part's batches itself: the worker has no idle core to
 * run on, and each batch's two messages cost more CPU than they move off the loop. Small batches then cost nothing
 * in messages, and hold less memory (docs/performance.md, "Verified parts on the event loop").
 */
async function eventLoopPartWriter(kind: HashKind, fd: number): Promise<PartWriter> {
  const hash = await createHasher(kind);
  return {
    batchBytes: 256 * 1024,
    write: async (batch, bytes, position) => {
      const data = batch.subarray(0, bytes);
      writeInPieces(fd, data, position);
      hash.update(data);
      return batch;
    },
    digest: async () => hash.digest(),
  };
}

/**
 * A small object's file, written and closed with synchronous calls on the event loop: each hand-off to the thread
 * pool costs the event loop ~100-160 µs on a 2-core VM (a sleeping thread is woken, then the loop), more than a
 * write and a close (~20 µs for 64 KiB). Creating the file is usually as cheap (~25 µs), but on an ext4 whose block
 * group holds many recently deleted inodes it scans them (`recently_deleted` in the kernel: 300-700 µs seen here,
 * after a few thousand files were deleted), which synchronous opens would serialise on the event loop. So the
 * opens are timed, and once they average more than a hand-off costs, files are opened on the thread pool, as soon as
 * the request starts, overlapping the wait for its first byte. Fetching 2,000 × 64 KiB (means of 6): on a fresh
 * ext4, 0.92 s opening synchronously, 0.97 s on the thread pool, 0.94-0.96 s timed; on a churned one (~650 µs a
 * create), 2.09 s, 1.82 s and 1.83 s.
 */
class SmallFile implements BatchWriter {
  /**
   * The object's size rounded up to a power of two (a few pooled sizes): a 1 MiB batch for every 4 KiB object made
   * each file leave 1 MiB of buffer for the collector, and fetching 100,000 such files peaked at 157 MiB of buffers.
   */
  readonly batchBytes: number;
  private readonly opening: Promise<number>;

  constructor(path: string, size: number) {
    this.batchBytes = Math.min(INLINE_HASH_BYTES, 2 ** Math.ceil(Math.log2(Math.max(size, MIN_SMALL_BATCH_BYTES))));
    this.opening = createFile(path);
    this.opening.catch(() => undefined); // a request that fails first never awaits it: not an unhandled rejection
  }

  /** The file's descriptor, once it exists. */
  created(): Promise<number> {
    return this.opening;
  }

  async write(batch: Buffer, bytes: number, position: number): Promise<Buffer> {
    const fd = await this.opening;
    for (let done = 0; done < bytes;) done += writeSync(fd, batch, done, bytes - done, position + done);
    return batch;
  }

  async close(): Promise<void> {
    const fd = await this.opening.catch(() => undefined);
    if (fd !== undefined) closeSync(fd);
  }
}

/** Above this mean, a synchronous create costs the event loop more than a hand-off to the thread pool. */
const SLOW_CREATE_MS = 0.15;
/** A moving mean of this process's synchronous creates; once past SLOW_CREATE_MS, creates go to the thread pool. */
let createMs = 0;

const openOnThreadPool = promisify(openFile);

/** Creates `path` (exclusively); the synchronous create runs before this returns, as an async function's first part. */
async function createFile(path: string): Promise<number> {
  if (createMs > SLOW_CREATE_MS) return openOnThreadPool(path, "wx");
  const started = performance.now();
  try {
    return openSync(path, "wx");
  } finally {
    createMs += (performance.now() - started - createMs) / 16;
  }
}

/**
 * Consecutive chunks copied into one pooled buffer and written with one positioned write per batch instead of one
 * per socket read. Copying (not keeping the chunks) lets each socket chunk die young: chunks held across a write
 * were promoted to the old generation and their memory kept until a full GC, which cost ~60 MiB of peak RSS.
 */
class WriteBatch {
  private readonly writer: BatchWriter;
  private buffer: Buffer | undefined;
  private bytes = 0;
  private position = 0;

  constructor(writer: BatchWriter) {
    this.writer = writer;
  }

  /** Queues a chunk; a full batch is written, and the returned promise says when (undefined: nothing to wait for). */
  add(chunk: Buffer, position: number): Promise<void> | undefined {
    // A chunk is valid only during this call (store/chunk-body.ts), so all of it is copied now: a batch that fills is
    // written, and the rest goes into the next one. The last chunk of a response is a view of its connection's read
    // buffer, and the connection may already serve another request, whose answer would overwrite it. (Copying the
    // rest into a Buffer of its own instead, to add after the write, cost ~0.8 s more CPU and 80 MiB more peak RSS on
    // a 2 GiB fetch in 256 KiB batches: a new ArrayBuffer each batch, to allocate and collect.)
    let writing: Promise<void> | undefined;
    for (let copied = 0; copied < chunk.length;) {
      const buffer = (this.buffer ??= pooledBatch(this.writer.batchBytes));
      if (this.bytes === 0) this.position = position + copied;
      const n = chunk.copy(buffer, this.bytes, copied);
      this.bytes += n;
      copied += n;
      if (this.bytes < buffer.length) break;
      const written = this.flush(); // batches are handed to the writer in order; they may be written at once
      writing = writing ? Promise.all([writing, written]).then(() => undefined) : written;
    }
    return writing;
  }

  /** Writes what is queued and gives the buffer back to the pool. */
  async flush(): Promise<void> {
    const { buffer, bytes, position } = this;
    if (!buffer) return;
    this.buffer = undefined;
    this.bytes = 0;
    release(bytes === 0 ? buffer : await this.writer.write(buffer, bytes, position));
  }
}

/** Free batch buffers by size, reused across parts and files (one per request in flight at most, in practice). */
const batchBuffers = new Map<number, Buffer[]>();
const MAX_POOLED_BATCH_BYTES = 32 * 1024 * 1024;

/** A batch buffer of `size` bytes that owns its whole ArrayBuffer (the hash pool's writer hands it to a worker). */
function pooledBatch(size: number): Buffer {
  return batchBuffers.get(size)?.pop() ?? Buffer.allocUnsafeSlow(size);
}

function release(buffer: Buffer): void {
  const pool = batchBuffers.get(buffer.length) ?? [];
  batchBuffers.set(buffer.length, pool);
  if ((pool.length + 1) * buffer.length <= MAX_POOLED_BATCH_BYTES) pool.push(buffer);
}
/**
 * Objects up to this size are hashed on the event loop as they arrive: for 2,000 × 64 KiB, handing each file to a
 * worker (a message each way, the file opened and read again) cost more CPU and memory than the 80 µs of sha256.
 */
const INLINE_HASH_BYTES = 1024 * 1024;
/** The smallest batch of a small object: one page. */
const MIN_SMALL_BATCH_BYTES = 4096;

function checkSha256(label: string, size: number, expected: string | undefined, got: string): void {
  if (expected !== undefined && got !== expected) throw integrity(label, `expected ${size} bytes with sha256 ${expected}, got sha256 ${got}`);
}

export function integrity(label: string, what: string): AssetError {
  return new AssetError(`integrity check failed for ${label}: ${what}; nothing was kept`);
}

function newPart(index: number, start: number, end: number): Part {
  return { index, start, end, received: 0 };
}

/** The pause before another try of a read: the store layers' backoff. */
export function retryBackoff(attempt: number): Promise<void> {
  return sleep(backoffMs(attempt));
}

/**
 * Network failures and stalls are retried; integrity failures, local disk errors, missing objects, refusals, and
 * errors whose retries the store layers spent already (persistent) are not.
 */
export function retryable(err: unknown): boolean {
  if (err instanceof AssetError) return false;
  if (err instanceof StoreError) return err.temporary;
  return !LOCAL_ERRORS.has((err as NodeJS.ErrnoException).code ?? "");
}

const LOCAL_ERRORS = new Set(["ENOSPC", "EDQUOT", "EACCES", "EPERM", "EROFS", "EBADF", "EISDIR"]);
