// Hashing off the event loop: a small pool of worker threads, one per core but one (the event loop moving the bytes
// keeps a core busy: on 2 cores a second worker added no hashing capacity, only its ~15 MiB), that hash byte ranges
// of local files, or write a download's bytes to its file and hash them on the way (writeStream).
// The main thread hands buffers over (transferred, not copied) or names a range a worker reads back from the page
// cache, so hashing overlaps with the network and the disk and spreads over every core. Small whole files are the
// exception (SMALL_FILE_BYTES): they are read and hashed on the event loop, a slice of a few ms at a time between I/O
// callbacks, because the round trip to a worker costs more than their hash (see hashFile). When their reads go to the
// disk (a dataset not in the page cache), they are read on the thread pool instead, several at once (COLD_READS).
// Ranges hashed independently (the parts of a large file) go to whichever worker is free; a running hash that
// grows range by range (a whole file whose parts arrive in order) stays in one worker, which keeps its state.
// A free worker takes queued ranges in batches (BATCH_BYTES, BATCH_JOBS): each message wakes the other thread,
// and one message per small file (publishing 2,000 × 64 KiB) cost the main thread ~40 µs a file.
import { hash } from "node:crypto";
import { close as fsClose, closeSync, open as fsOpen, openSync, read as fsRead, readSync } from "node:fs";
import { availableParallelism } from "node:os";
import { performance } from "node:perf_hooks";
import path from "node:path";
import type { Worker } from "node:worker_threads";
import { BUNDLED, distDir } from "./bundle-files.ts";
import type { HashKind } from "./part-hash.ts";

/** One range to hash, as the worker (worker.ts) receives it. */
export interface HashJob {
  id: number;
  /** The hash and its implementation (see part-hash.ts). */
  kind: HashKind;
  file: string;
  start: number;
  /** Exclusive. */
  end: number;
  /** A running hash to add the range to (created on first use); without one, the range is hashed alone. */
  stream?: number;
  /** Digest the running hash after this range (and forget it). */
  final?: boolean;
  /** The range's bytes, handed over: the worker writes them at `start` in the open file `fd` instead of reading `file`. */
  write?: { fd: number; data: ArrayBuffer };
}

export type Answer = { id: number; hex: string; data?: ArrayBuffer } | { id: number; error: string; code?: string };
type Done = { hex: string; data?: ArrayBuffer };

/** Queued ranges a free worker takes in one message: at most this many bytes (one range may exceed it alone) and jobs. */
const BATCH_BYTES = 1024 * 1024;
const BATCH_JOBS = 32;
/** Whole files up to this size are hashed on the event loop (see hashFile). */
const SMALL_FILE_BYTES = 256 * 1024;
/** The event loop hashes queued small files for this long at most before it lets I/O callbacks run. */
const SLICE_MS = 2;
/**
 * Reads from the disk, not the page cache: after COLD_STREAK small-file reads in a row slower than diskRead says,
 * the pool reads small files on the thread pool, COLD_READS at a time, and hashes each as it arrives. One read at a
 * time on the event loop waits for the disk file after file: `publish --if-changed` of 100,000 × 4 KiB with the page
 * cache dropped took 8.4-9.8 s that way, 4.7-5.1 s this way (the same files read 16 at a time by `xargs cat`: 2.4 s).
 * Reading 4 KiB (open, read, close) took ~5 µs from the page cache, 55-80 µs from this VM's disk (2,000 files each).
 */
const COLD_STREAK = 8;
const COLD_READS = 16;
/** Whether a read of `size` bytes that took `ms` came from the disk: over 25 µs, plus 1 ms a MB. */
const diskRead = (ms: number, size: number): boolean => ms > 0.025 + size / 1e6;

/** The worker's program: the bundled dist/hash-worker.js, or the source when Node runs src/. */
const WORKER_FILE = BUNDLED ? path.join(distDir(), "hash-worker.js") : new URL("./worker.ts", import.meta.url);

interface Pending {
  job: HashJob;
  /** Memory handed to the worker with the job. */
  transfer: ArrayBuffer[];
  resolve: (done: Done) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  /** Jobs of the running hashes this worker holds, in order. */
  pinned: Pending[];
  /** The jobs of the message the worker is on; empty when it is free. */
  busy: Pending[];
}

export class HashPool {
  readonly size: number;
  private slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private nextStream = 1;

  /** `slowRead`: tells a read from the disk (the default) from one from the page cache (a test gives its own). */
  private readonly slowRead: (ms: number, size: number) => boolean;
  constructor(size = Math.max(1, Math.min(availableParallelism() - 1, 8)), slowRead = diskRead) {
    this.size = size;
    this.slowRead = slowRead;
  }

  /** The hash (hex; sha256 unless `kind` says otherwise) of bytes [start, end) of `file`, on the first free worker. */
  async hashRange(file: string, start: number, end: number, kind: HashKind = "sha256"): Promise<string> {
    return (await this.submit({ id: this.nextId++, kind, file, start, end }, undefined)).hex;
  }

  /**
   * sha256 of a whole file of known size. A small file is hashed on the event loop (queued, then a slice at a time):
   * a worker's round trip (messages both ways, the worker reading the file back) cost more than hashing 64 KiB
   * (~45 µs with SHA extensions). Publishing 2,000 × 64 KiB to local MinIO took 0.78-0.84 CPU s instead of
   * 0.95-1.05 and 1.16-1.24 s instead of 1.30-1.41 (5 runs each), with no worker started: peak RSS 116 MiB, not 134.
   */
  hashFile(file: string, size: number): Promise<string> {
    if (size > SMALL_FILE_BYTES) return this.hashRange(file, 0, size);
    return new Promise((resolve, reject) => {
      if (this.smallFiles.push({ file, size, resolve, reject }) === 1) setImmediate(() => this.hashSmallFiles());
    });
  }

  private readonly smallFiles: { file: string; size: number; resolve: (hex: string) => void; reject: (err: Error) => void }[] = [];
  /** Whether COLD_STREAK reads in a row were slow: small files are read on the thread pool from then on. */
  get readingFromDisk(): boolean {
    return this.slowStreak >= COLD_STREAK;
  }
  private slowStreak = 0;
  private readsInFlight = 0;

  /** Hashes queued small files for SLICE_MS, then yields to I/O until the next turn of the loop. */
  private hashSmallFiles(): void {
    if (this.readingFromDisk) return this.readSmallFilesAhead();
    const until = performance.now() + SLICE_MS;
    let now: number;
    do {
      const job = this.smallFiles.shift()!;
      const started = performance.now();
      try {
        job.resolve(hash("sha256", readStart(job.file, job.size), "hex"));
      } catch (err) {
        job.reject(err as Error);
      }
      now = performance.now();
      this.slowStreak = this.slowRead(now - started, job.size) ? this.slowStreak + 1 : 0;
    } while (this.smallFiles.length > 0 && now < until && !this.readingFromDisk);
    if (this.smallFiles.length > 0) setImmediate(() => this.hashSmallFiles());
  }

  /** Keeps COLD_READS small files being read on the thread pool; each is hashed here as it arrives. */
  private readSmallFilesAhead(): void {
    while (this.readsInFlight < COLD_READS && this.smallFiles.length > 0) {
      const job = this.smallFiles.shift()!;
      this.readsInFlight++;
      readStartAsync(job.file, job.size)
        .then((data) => job.resolve(hash("sha256", data, "hex")), job.reject)
        .finally(() => {
          this.readsInFlight--;
          this.readSmallFilesAhead();
        });
    }
  }

  /**
   * A sha256 over consecutive ranges of one file, fed as they become available: `add` queues a range (they must
   * follow each other), `digest` the result once every range is in. The state lives in one worker.
   */
  stream(file: string): { add(start: number, end: number): void; digest(): Promise<string> } {
    const stream = this.nextStream++;
    const slot = this.slotFor(stream);
    const failures: Promise<Done>[] = [];
    return {
      add: (start, end) => {
        // Failures surface at digest(); until then the rejection is held, not unhandled.
        const added = this.submit({ id: this.nextId++, kind: "sha256", file, start, end, stream }, slot);
        added.catch(() => undefined);
        failures.push(added);
      },
      digest: async () => {
        const answers = await Promise.all([...failures, this.digestStream(stream, "sha256", slot)]);
        return answers.at(-1)!.hex;
      },
    };
  }

  /**
   * A hash of `kind` over bytes handed over in order, which the worker also writes into the open file `fd` at their
   * position: a download's part, hashed from memory rather than read back. A batch is a whole SharedArrayBuffer
   * (transferring plain ones cost ~100 µs a message); `write` resolves once it is written and hashed, and the caller
   * may fill it again. `digest` once every write is in.
   */
  writeStream(kind: HashKind, fd: number): { write(batch: Buffer, bytes: number, position: number): Promise<Buffer>; digest(): Promise<string> } {
    const stream = this.nextStream++;
    const slot = this.slotFor(stream);
    return {
      write: async (batch, bytes, position) => {
        if (batch.byteOffset !== 0 || batch.buffer.byteLength !== batch.length) throw new Error("writeStream: a batch must own its whole ArrayBuffer");
        const write = { fd, data: batch.buffer as ArrayBuffer };
        const done = await this.submit({ id: this.nextId++, kind, file: "", start: position, end: position + bytes, stream, write }, slot, [write.data]);
        return Buffer.from(done.data!);
      },
      digest: async () => (await this.digestStream(stream, kind, slot)).hex,
    };
  }

  private digestStream(stream: number, kind: HashKind, slot: Slot): Promise<Done> {
    return this.submit({ id: this.nextId++, kind, file: "", start: 0, end: 0, stream, final: true }, slot);
  }

  private slotFor(stream: number): Slot {
    this.start();
    return this.slots[stream % this.slots.length]!;
  }

  private submit(job: HashJob, pinnedTo: Slot | undefined, transfer: ArrayBuffer[] = []): Promise<Done> {
    this.start();
    return new Promise<Done>((resolve, reject) => {
      const pending = { job, transfer, resolve, reject };
      if (pinnedTo) pinnedTo.pinned.push(pending);
      else this.queue.push(pending);
      this.dispatch();
    });
  }

  private start(): void {
    if (this.slots.length > 0) return;
    for (let i = 0; i < this.size; i++) {
      // worker_threads loads with the first worker: runs that hash only small files never start one.
      const worker = new (process.getBuiltinModule("node:worker_threads").Worker)(WORKER_FILE, { name: `assetkit-hash-${i}` });
      const slot: Slot = { worker, pinned: [], busy: [] };
      worker.on("message", (answers: Answer[]) => this.answered(slot, answers));
      worker.on("error", (err) => this.crashed(slot, err));
      worker.unref(); // an idle pool never keeps the process alive (after the listeners: adding one refs the port)
      this.slots.push(slot);
    }
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.busy.length > 0) continue;
      const batch = slot.pinned.length > 0 ? [slot.pinned.shift()!] : this.takeBatch();
      if (batch.length === 0) continue;
      slot.busy = batch;
      slot.worker.ref(); // jobs in flight keep the process alive until they are answered
      slot.worker.postMessage(
        batch.map((p) => p.job),
        batch.flatMap((p) => p.transfer),
      );
    }
  }

  /** The next queued ranges for one message (see BATCH_BYTES). */
  private takeBatch(): Pending[] {
    const batch: Pending[] = [];
    let bytes = 0;
    while (this.queue.length > 0 && batch.length < BATCH_JOBS) {
      const size = this.queue[0]!.job.end - this.queue[0]!.job.start;
      if (batch.length > 0 && bytes + size > BATCH_BYTES) break;
      batch.push(this.queue.shift()!);
      bytes += size;
    }
    return batch;
  }

  private answered(slot: Slot, answers: Answer[]): void {
    const done = slot.busy;
    slot.busy = [];
    slot.worker.unref();
    answers.forEach((answer, i) => {
      if ("error" in answer) done[i]!.reject(Object.assign(new Error(answer.error), { code: answer.code }));
      else done[i]!.resolve(answer);
    });
    this.dispatch();
  }

  /** A worker that dies takes its jobs with it (they fail); the pool starts afresh on the next job. */
  private crashed(slot: Slot, err: Error): void {
    for (const pending of [...slot.busy, ...slot.pinned]) pending.reject(err);
    for (const other of this.slots) if (other !== slot) void other.worker.terminate();
    for (const pending of this.queue.splice(0)) pending.reject(err);
    this.slots = [];
  }
}

/** The first `size` bytes of `file`, in a buffer reused by the next call; rejects (as the worker does) when it is shorter. */
function readStart(file: string, size: number): Buffer {
  smallFileBuffer ??= Buffer.allocUnsafeSlow(SMALL_FILE_BYTES);
  const fd = openSync(file, "r");
  try {
    for (let at = 0; at < size;) {
      const n = readSync(fd, smallFileBuffer, at, size - at, at);
      if (n === 0) throw shortFile(file, at, size);
      at += n;
    }
  } finally {
    closeSync(fd);
  }
  return smallFileBuffer.subarray(0, size);
}

let smallFileBuffer: Buffer | undefined;

/** What reading a file that ends before `size` rejects with (as the worker does). */
function shortFile(file: string, at: number, size: number): Error {
  return Object.assign(new Error(`${file} ends at byte ${at}, before ${size}`), { code: "ESHORT" });
}

/**
 * readStart on the thread pool, into a buffer of its own. Callbacks, not fs/promises: a FileHandle and a promise per
 * step cost ~12 µs of CPU a file more (publish --if-changed of 100,000 cold files: 3.5-4.0 s of user CPU, not 2.2-2.4).
 */
function readStartAsync(file: string, size: number): Promise<Buffer> {
  const data = Buffer.allocUnsafe(size);
  return new Promise((resolve, reject) => {
    fsOpen(file, "r", (err, fd) => {
      if (err) return reject(err);
      const done = (failure: Error | null): void => fsClose(fd, () => (failure ? reject(failure) : resolve(data)));
      const readFrom = (at: number): void => {
        if (at === size) return done(null);
        fsRead(fd, data, at, size - at, at, (failure, n) => {
          if (failure) return done(failure);
          if (n === 0) return done(shortFile(file, at, size));
          readFrom(at + n);
        });
      };
      readFrom(0);
    });
  });
}

/** The process's pool, shared by fetch, publish, verify and cache restores. */
export const hashPool = new HashPool();
