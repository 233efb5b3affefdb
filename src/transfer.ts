// Moving bytes from a store into local files. One bounded pool of requests serves every file and every part, so
// 2,000 small objects and one large one keep the same number of requests in flight. Large objects are read as
// parallel byte ranges written at their offsets; sha256 is computed in the same pass, in byte order: parts that
// arrive ahead of the hashed position wait in memory, and at most `bufferedParts` of them exist at once across all
// files, so memory stays bounded whatever the sizes. A request that fails or stalls mid-way (the store layers'
// stall guard fails it) is retried, by the store layers' policy, from the bytes it already delivered.
import { createHash, type Hash } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { AssetError } from "./errors.ts";
import { Limiter } from "./store/limiter.ts";
import { StoreError, type ByteRange } from "./store/store.ts";
import { delayBeforeRetry } from "./store/layers/retry.ts";
import { DEFAULT_TUNING, type Tuning } from "./store/tuning.ts";

export interface Expected {
  size?: number;
  sha256?: string;
}

/** How far a transfer is, out of what it needs. */
export interface TransferProgress {
  bytes: number;
  totalBytes: number;
  files: number;
  totalFiles: number;
}

/** Opens the object, or the given range of it. */
export type OpenObject = (range?: ByteRange) => Promise<Readable>;

export interface TransferSettings extends Tuning {
  /** Ranged parts held in memory ahead of the hashed position, across all files: memory ≤ this × partSize. */
  bufferedParts: number;
}

/** Memory for parts read ahead of the hashed position (the process's own footprint comes on top). */
const READ_AHEAD_BYTES = 32 * 1024 * 1024;

export function transferSettings(tuning: Tuning = DEFAULT_TUNING): TransferSettings {
  return { ...tuning, bufferedParts: Math.max(2, Math.floor(READ_AHEAD_BYTES / tuning.partSize)) };
}

interface Part {
  start: number;
  /** Inclusive, as in an HTTP range. */
  end: number;
  received: number;
  /** Bytes received but not yet hashed (only while an earlier part is still arriving). */
  pending: Buffer[];
  complete: boolean;
}

export class Transfers {
  readonly settings: TransferSettings;
  private readonly requests: Limiter;
  private readonly readAhead: Limiter;

  constructor(settings: TransferSettings = transferSettings()) {
    this.settings = settings;
    this.requests = new Limiter(settings.concurrency);
    this.readAhead = new Limiter(settings.bufferedParts);
  }

  /**
   * Downloads an object into a new file at `dest`, checking size and sha256 against the meta. `label` names the
   * object in errors; the caller removes `dest` on failure (it lives in a temporary folder).
   */
  async download(openObject: OpenObject, dest: string, expected: Expected, label: string, onBytes?: (n: number) => void): Promise<void> {
    const handle = await open(dest, "wx");
    try {
      const hash = createHash("sha256");
      const size = expected.size;
      if (size === undefined) await this.requests.run(() => this.readWhole(openObject, handle, hash, label, onBytes));
      else if (size > this.settings.partSize) await this.readInParts(openObject, handle, hash, size, label, onBytes);
      else if (size > 0) {
        const whole = newPart(0, size - 1);
        await this.requests.run(() => this.readPart(openObject, handle, whole, size, label, { take: (chunk) => hash.update(chunk), onBytes }));
      }
      const sha256 = hash.digest("hex");
      if (expected.sha256 !== undefined && sha256 !== expected.sha256) {
        throw integrity(label, `expected ${size ?? "?"} bytes with sha256 ${expected.sha256}, got sha256 ${sha256}`);
      }
    } finally {
      await handle.close();
    }
  }

  /** An object of unknown size (a meta written by modelkit): one stream, which cannot be resumed. */
  private async readWhole(openObject: OpenObject, handle: FileHandle, hash: Hash, label: string, onBytes?: (n: number) => void): Promise<void> {
    const batch = new WriteBatch(handle);
    let position = 0;
    await this.pump(await openObject(), async (chunk) => {
      hash.update(chunk);
      await batch.add(chunk, position);
      position += chunk.length;
      onBytes?.(chunk.length);
    });
    await batch.flush();
  }

  /** Parts start in order, each once a read-ahead slot is free, and are hashed in order as their bytes arrive. */
  private async readInParts(openObject: OpenObject, handle: FileHandle, hash: Hash, size: number, label: string, onBytes?: (n: number) => void): Promise<void> {
    const { partSize } = this.settings;
    const parts: Part[] = [];
    for (let start = 0; start < size; start += partSize) parts.push(newPart(start, Math.min(size, start + partSize) - 1));
    const failed = new AbortController();
    let started = 0;
    let hashed = 0; // parts fully hashed; each gives its read-ahead slot back then
    const hashReady = (): void => {
      for (; hashed < started && !failed.signal.aborted; hashed++) {
        const part = parts[hashed]!;
        for (const chunk of part.pending) hash.update(chunk);
        part.pending = [];
        if (!part.complete) return;
        this.readAhead.release();
      }
    };
    const fail = (err: unknown): never => {
      if (!failed.signal.aborted) {
        failed.abort(err);
        for (let i = hashed; i < started; i++) this.readAhead.release(); // other files carry on
      }
      throw err;
    };
    const running: Promise<void>[] = [];
    for (const part of parts) {
      await this.readAhead.acquire();
      if (failed.signal.aborted) {
        this.readAhead.release();
        break;
      }
      started++;
      const take = (chunk: Buffer): void => {
        part.pending.push(chunk);
        hashReady();
      };
      running.push(this.requests.run(() => this.readPart(openObject, handle, part, size, label, { take, onBytes, cancelled: failed.signal })).then(hashReady, fail));
    }
    const failure = (await Promise.allSettled(running)).find((r) => r.status === "rejected");
    if (failure) throw failure.reason;
  }

  /** Reads one part (or a whole small object) into the file at its offset, retrying from the bytes already received. */
  private async readPart(
    openObject: OpenObject,
    handle: FileHandle,
    part: Part,
    size: number,
    label: string,
    how: { take: (chunk: Buffer) => void; onBytes?: ((n: number) => void) | undefined; cancelled?: AbortSignal },
  ): Promise<void> {
    const length = part.end - part.start + 1;
    const batch = new WriteBatch(handle);
    let started = Date.now();
    for (let attempt = 1; ; attempt++) {
      how.cancelled?.throwIfAborted();
      const from = part.start + part.received;
      const before = part.received;
      try {
        const source = await openObject(from === 0 && part.end === size - 1 ? undefined : { start: from, end: part.end });
        await this.pump(source, async (chunk) => {
          if (part.received + chunk.length > length) throw integrity(label, `the store sent more than the ${size} bytes the meta lists`);
          await batch.add(chunk, part.start + part.received);
          part.received += chunk.length;
          how.take(chunk);
          how.onBytes?.(chunk.length);
        }, how.cancelled);
        await batch.flush();
        // A response that ends cleanly but short: the object is shorter than the meta says.
        if (part.received < length) throw integrity(label, `the store sent ${part.start + part.received} of the ${size} bytes the meta lists`);
        part.complete = true;
        return;
      } catch (err) {
        await batch.flush(); // what arrived is good: keep it, and resume after it
        if (part.received > before) {
          // Progress was made: a flaky link is not a dead one, so the budget starts again.
          attempt = 1;
          started = Date.now();
        }
        const failure = how.cancelled?.aborted ? undefined : retryableFailure(err, label);
        if (!failure) throw err;
        // The store's own policy and budget: an error whose retries the layers spent already is persistent here too.
        await sleep(delayBeforeRetry(failure, attempt, started, this.settings));
      }
    }
  }

  /** Feeds each chunk to `take` (awaited: backpressure); a silent source is failed by the store layers' stall guard. */
  private async pump(source: Readable, take: (chunk: Buffer) => Promise<void>, cancelled?: AbortSignal): Promise<void> {
    const cancel = (): void => void source.destroy(cancelled?.reason as Error);
    cancelled?.addEventListener("abort", cancel, { once: true });
    try {
      for await (const chunk of source) {
        await take(chunk as Buffer);
      }
    } finally {
      cancelled?.removeEventListener("abort", cancel);
      source.destroy();
    }
  }
}

async function writeAt(handle: FileHandle, chunk: Buffer, position: number): Promise<void> {
  for (let done = 0; done < chunk.length; ) {
    const { bytesWritten } = await handle.write(chunk, done, chunk.length - done, position + done);
    done += bytesWritten;
  }
}

/** Consecutive chunks gathered into one positioned writev: one system call per MiB instead of per socket read. */
class WriteBatch {
  private readonly handle: FileHandle;
  private chunks: Buffer[] = [];
  private bytes = 0;
  private position = 0;

  constructor(handle: FileHandle) {
    this.handle = handle;
  }

  async add(chunk: Buffer, position: number): Promise<void> {
    if (this.chunks.length === 0) this.position = position;
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    if (this.bytes >= WRITE_BATCH_BYTES) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.chunks.length === 0) return;
    const { chunks, bytes, position } = this;
    this.chunks = [];
    this.bytes = 0;
    const { bytesWritten } = await this.handle.writev(chunks, position);
    if (bytesWritten < bytes) await writeAt(this.handle, Buffer.concat(chunks).subarray(bytesWritten), position + bytesWritten);
  }
}

const WRITE_BATCH_BYTES = 1024 * 1024;

function integrity(label: string, what: string): AssetError {
  return new AssetError(`integrity check failed for ${label}: ${what}; nothing was kept`);
}

function newPart(start: number, end: number): Part {
  return { start, end, received: 0, pending: [], complete: false };
}

/**
 * The failure as a retryable StoreError, or undefined when it is not worth a retry: integrity failures, local disk
 * errors, missing objects, refusals, and errors the store layers marked persistent (their retries spent).
 */
function retryableFailure(err: unknown, label: string): StoreError | undefined {
  if (err instanceof AssetError) return undefined;
  if (err instanceof StoreError) return err.temporary ? err : undefined;
  if (LOCAL_ERRORS.has((err as NodeJS.ErrnoException).code ?? "")) return undefined;
  return new StoreError("unavailable", `${label}: ${(err as Error)?.message ?? String(err)}`, { temporary: true, cause: err });
}

const LOCAL_ERRORS = new Set(["ENOSPC", "EDQUOT", "EACCES", "EPERM", "EROFS", "EBADF", "EISDIR"]);
