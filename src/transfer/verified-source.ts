// Another store's object as a write body that checks its bytes as they flow to the destination: exactly the
// expected size, and the expected sha256. The destination may read it whole or as ranges in parallel (multipart
// parts), in any order and more than once (a retried part): bytes are hashed in byte order, those that arrive
// ahead of the hashed position wait in memory, and a range that would wait there opens only once a read-ahead
// budget shared by every source of a copy has room for it, so memory stays bounded whatever the sizes. The
// stream that delivers the last missing bytes withholds its final chunk until the digest is checked, and fails
// instead on a mismatch: the destination never receives the whole object, so it commits nothing.
import { Readable } from "node:stream";
import type { ContentHasher, ContentHashes } from "../hashing/content-hash.ts";
import type { AssetError } from "../base/errors.ts";
import type { ByteRange, ObjectSource } from "../store/store.ts";
import { integrity, retryable, retryBackoff, type OpenObject } from "./engine.ts";

/** Bytes read ahead of the hashed position, across the sources of one copy. */
export class ReadAheadBudget {
  private free: number;
  private readonly waiting = new Set<() => void>();

  constructor(bytes: number) {
    this.free = bytes;
  }

  /** Takes `bytes` when there is room, or as soon as `unblocked()` holds; resolves whether it took them. */
  async take(bytes: number, unblocked: () => boolean): Promise<boolean> {
    for (;;) {
      if (unblocked()) return false;
      if (this.free >= bytes) {
        this.free -= bytes;
        return true;
      }
      await new Promise<void>((resolve) => this.waiting.add(resolve));
    }
  }

  give(bytes: number): void {
    this.free += bytes;
    this.wake();
  }

  /** Lets waiters look again (room was given back, or some source's hashed position moved). */
  wake(): void {
    const waiting = [...this.waiting];
    this.waiting.clear();
    for (const resolve of waiting) resolve();
  }
}

interface Reservation {
  /** Last byte of the range, inclusive: given back once hashing passed it. */
  end: number;
  bytes: number;
}

export interface VerifiedSourceOptions {
  /** Tries of one read; a try that delivered bytes does not count against them. */
  attempts: number;
  budget: ReadAheadBudget;
  /** Hashes the bytes in order: with parts for an import (the meta lists part hashes the source does not know). */
  hash: ContentHasher;
}

export class VerifiedSource implements ObjectSource {
  readonly size: number;
  /** Why the bytes were refused, once they were: a write that read them failed because of it. */
  failure: AssetError | undefined;
  private readonly openObject: OpenObject;
  private readonly sha256: string | undefined;
  private readonly label: string;
  private readonly options: VerifiedSourceOptions;
  private readonly hash: ContentHasher;
  /** What the bytes hash to, once every one was received. */
  hashes: ContentHashes | undefined;
  private hashed = 0;
  /** Chunks received beyond the hashed position, by offset. */
  private readonly ahead = new Map<number, Buffer>();
  private reservations: Reservation[] = [];
  private checked = false;

  constructor(openObject: OpenObject, expected: { size: number; sha256?: string | undefined }, label: string, options: VerifiedSourceOptions) {
    this.openObject = openObject;
    this.size = expected.size;
    this.sha256 = expected.sha256;
    this.label = label;
    this.options = options;
    this.hash = options.hash;
  }

  /** True once every byte was received and matched. */
  get verified(): boolean {
    return this.hashed === this.size && !this.failure;
  }

  async open(range?: ByteRange): Promise<Readable> {
    if (this.failure) throw this.failure;
    const start = range?.start ?? 0;
    const end = range?.end ?? this.size - 1;
    if (start < 0 || end >= this.size || (end < start && this.size > 0)) {
      throw integrity(this.label, `bytes ${start}-${end} asked of a ${this.size}-byte object`);
    }
    const bytes = end - start + 1;
    if (this.size === 0 && !this.checked) this.check();
    if (bytes > 0 && (await this.options.budget.take(bytes, () => start <= this.hashed))) this.reservations.push({ end, bytes });
    const stream = Readable.from(this.bytes(start, end), { objectMode: false });
    // A refusal is kept in this.failure and reported by the copy: a consumer that pipes the stream without
    // listening for its errors must not turn it into an uncaught exception.
    stream.on("error", () => undefined);
    return stream;
  }

  /** Gives back every reservation (the copy ended, well or badly). */
  dispose(): void {
    for (const r of this.reservations) this.options.budget.give(r.bytes);
    this.reservations = [];
    this.ahead.clear();
  }

  /** The bytes of [start, end] from the source, resumed after a failed read from the first byte not yet delivered. */
  private async *bytes(start: number, end: number): AsyncGenerator<Buffer> {
    let position = start;
    for (let attempt = 1; position <= end; attempt++) {
      const before = position;
      try {
        const whole = position === 0 && end === this.size - 1;
        for await (const chunk of await this.openObject(whole ? undefined : { start: position, end })) {
          const data = chunk as Buffer;
          if (position + data.length > end + 1) this.refuse(`the store sent more than the ${this.size} bytes expected`);
          this.take(position, data);
          position += data.length;
          if (this.failure) throw this.failure;
          yield data;
        }
        if (position <= end) this.refuse(`the store sent ${position} of the ${this.size} bytes expected`);
      } catch (err) {
        if (position > before) attempt = 1; // progress was made: a flaky link is not a dead one
        if (this.failure || !retryable(err) || attempt >= this.options.attempts) throw err;
        await retryBackoff(attempt);
      }
    }
  }

  /** Hashes what continues the hashed position (and what waited for it); keeps what is ahead. */
  private take(position: number, chunk: Buffer): void {
    if (position + chunk.length <= this.hashed) return; // a retried range re-reads bytes already hashed
    if (position > this.hashed) {
      const held = this.ahead.get(position);
      if (!held || held.length < chunk.length) this.ahead.set(position, chunk);
      return;
    }
    this.hash.update(chunk.subarray(this.hashed - position));
    this.hashed = position + chunk.length;
    this.drainAhead();
    this.giveBackPassed();
    if (this.hashed === this.size) this.check();
  }

  private drainAhead(): void {
    for (;;) {
      let next = this.ahead.get(this.hashed);
      if (next) this.ahead.delete(this.hashed);
      else {
        // Chunk boundaries of a retried range may differ from the first read's: look for any overlap.
        for (const [at, chunk] of this.ahead) {
          if (at + chunk.length <= this.hashed) this.ahead.delete(at);
          else if (at < this.hashed) {
            this.ahead.delete(at);
            next = chunk.subarray(this.hashed - at);
            break;
          }
        }
      }
      if (!next) return;
      this.hash.update(next);
      this.hashed += next.length;
    }
  }

  private giveBackPassed(): void {
    const kept: Reservation[] = [];
    for (const r of this.reservations) {
      if (r.end < this.hashed) this.options.budget.give(r.bytes);
      else kept.push(r);
    }
    this.reservations = kept;
    this.options.budget.wake(); // ranges waiting for this position may open now
  }

  private check(): void {
    this.checked = true;
    this.hashes = this.hash.digest();
    const { sha256 } = this.hashes;
    if (this.sha256 !== undefined && sha256 !== this.sha256) {
      this.refuse(`expected ${this.size} bytes with sha256 ${this.sha256}, got sha256 ${sha256}`);
    }
  }

  private refuse(what: string): never {
    this.failure ??= integrity(this.label, what);
    throw this.failure;
  }
}
