// The layers every backend runs in (openStore applies them): retry → error context + scrubbing → timeouts → backend.
// A backend says what an error is (classify); these decide what to do about it, the same way for every store.
import { randomUUID } from "node:crypto";
import type { Readable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { stallGuard } from "../stall-guard.ts";
import type { Backend, Body, ByteRange, Condition, ListOptions, SourceExpectation, Store, StoredObject, StoreError, StoreOp } from "../store.ts";
import type { TimeBudget } from "../tuning.ts";
import { ErrorContext, type ErrorSource } from "./error-context.ts";
import { delayBeforeRetry, retrying } from "./retry.ts";
import { idleError, withDeadline } from "./timeout.ts";

/** An upload is allowed at least this rate before its deadline passes (on top of the idle timeout). */
const MIN_UPLOAD_BYTES_PER_SEC = 64 * 1024;

export function layered(backend: Backend, budget: TimeBudget): LayeredStore {
  return new LayeredStore(backend, budget);
}

/** How long one try of an upload of `size` bytes may take. */
export function uploadDeadlineMs(budget: TimeBudget, size: number): number {
  return budget.idleTimeoutMs + Math.ceil((size / MIN_UPLOAD_BYTES_PER_SEC) * 1000);
}

/**
 * The layers as calls: each operation's tries under a deadline, failures put in context (store, operation, key,
 * credentials scrubbed) and retried while temporary. LayeredStore runs a Backend's calls through them; a client
 * that is not a Store (the OCI registry client) runs its requests through them the same way.
 */
export class Operations {
  readonly budget: TimeBudget;
  readonly context: ErrorContext;

  constructor(source: ErrorSource, budget: TimeBudget) {
    this.budget = budget;
    this.context = new ErrorContext(source);
  }

  /** One operation, retried while temporary; `call` gets the try's number (from 1). */
  run<T>(
    op: StoreOp,
    what: string,
    key: string,
    call: (attempt: number) => Promise<T>,
    how: { deadlineMs?: number; discard?: (late: T) => void } = {},
  ): Promise<T> {
    return retrying(this.budget, (attempt) => this.attempt(op, what, key, () => call(attempt), how.deadlineMs ?? this.budget.idleTimeoutMs, how.discard));
  }

  /** One try under its deadline, its failure in context. */
  async attempt<T>(op: StoreOp, what: string, key: string, call: () => Promise<T>, deadlineMs: number, discard?: (late: T) => void): Promise<T> {
    try {
      return await withDeadline(deadlineMs, call, discard);
    } catch (err) {
      throw this.context.wrap(err, op, what, key);
    }
  }

  /** A response body under the stall guard, its failures in context. */
  guarded(body: Readable, op: StoreOp, what: string, key: string): Readable {
    const idle = this.budget.idleTimeoutMs;
    return stallGuard(
      body,
      idle,
      () => this.context.wrap(idleError(idle, "no data"), op, what, key),
      (err) => this.context.wrap(err, op, what, key),
    );
  }
}

export class LayeredStore implements Store {
  /** The backend inside, for what only one backend has (a file store's folder); its failures are raw. */
  readonly backend: Backend;
  private readonly budget: TimeBudget;
  private readonly operations: Operations;

  constructor(backend: Backend, budget: TimeBudget) {
    this.backend = backend;
    this.budget = budget;
    this.operations = new Operations(backend, budget);
  }

  get url(): string {
    return this.backend.url;
  }
  get writable(): boolean {
    return this.backend.writable;
  }
  get listable(): boolean {
    return this.backend.listable;
  }

  head(key: string): Promise<StoredObject | undefined> {
    return this.run("head", `read ${key}`, key, () => this.backend.head(key));
  }

  read(key: string): Promise<{ data: Buffer; etag: string } | undefined> {
    return this.run("read", `read ${key}`, key, () => this.backend.read(key));
  }

  async openRead(key: string, range?: ByteRange): Promise<Readable> {
    const what = `read ${key}${range ? ` (bytes ${range.start}-${range.end})` : ""}`;
    const source = await this.run("openRead", what, key, () => this.backend.openRead(key, range), { discard: (late) => late.destroy() });
    return this.operations.guarded(source, "openRead", what, key);
  }

  async *list(prefix: string, options?: ListOptions): AsyncIterable<StoredObject> {
    const what = `list ${prefix || "the store"}`;
    const seen = new Set<string>();
    const started = Date.now();
    // A listing that fails part-way starts again and yields only the objects it had not yielded yet.
    for (let attempt = 1; ; attempt++) {
      const iterator = this.backend.list(prefix, options)[Symbol.asyncIterator]();
      let failure: StoreError | undefined;
      try {
        for (;;) {
          let next: IteratorResult<StoredObject>;
          try {
            next = await this.operations.attempt("list", what, prefix, () => iterator.next(), this.budget.idleTimeoutMs);
          } catch (err) {
            failure = err as StoreError;
            break;
          }
          if (next.done) return;
          if (seen.has(next.value.key)) continue;
          seen.add(next.value.key);
          yield next.value;
        }
      } finally {
        // The backend's listing ends here too: after a failure, or when the caller stops early.
        void iterator.return?.().catch(() => undefined);
      }
      await sleep(delayBeforeRetry(failure!, attempt, started, this.budget));
    }
  }

  write(key: string, body: Body, condition?: Condition): Promise<boolean> {
    const deadline = uploadDeadlineMs(this.budget, Buffer.isBuffer(body) ? body.length : body.size);
    const id = randomUUID();
    let retried = false;
    // Only a body that can be sent again is retried (bytes in memory, a file); a stream would arrive half-read.
    const budget = Buffer.isBuffer(body) || "file" in body ? this.budget : { ...this.budget, retries: 0 };
    return retrying(budget, async () => {
      try {
        return await this.operations.attempt("write", `write ${key}`, key, () => this.backend.write(key, body, condition, { id, retried }), deadline);
      } finally {
        retried = true; // a next try, if any, follows a try whose outcome we may not have seen
      }
    });
  }

  copy(sourceKey: string, destKey: string, expected?: SourceExpectation): Promise<boolean> {
    // A server-side copy sends no byte while the server works: its try is bounded by ASSETKIT_TIMEOUT instead.
    return this.run("copy", `copy ${sourceKey} to ${destKey}`, sourceKey, () => this.backend.copy(sourceKey, destKey, expected), {
      deadlineMs: this.budget.timeoutMs,
    });
  }

  /** Server-side copy from another store: the backend sees the other store's backend (a wrapper passes it on unwrapped). */
  async copyFrom(source: Store, sourceKey: string, destKey: string, expected?: SourceExpectation): Promise<boolean> {
    if (!this.backend.copyFrom) return false;
    const from = source instanceof LayeredStore ? source.backend : source;
    return this.run("copy", `copy ${source.url} ${sourceKey} to ${destKey}`, destKey, () => this.backend.copyFrom!(from, sourceKey, destKey, expected), {
      deadlineMs: this.budget.timeoutMs,
    });
  }

  delete(key: string): Promise<void> {
    return this.run("delete", `delete ${key}`, key, () => this.backend.delete(key));
  }

  /** One operation: tries under the deadline, failures in context, retried while temporary. */
  private run<T>(op: StoreOp, what: string, key: string, call: () => Promise<T>, how: { deadlineMs?: number; discard?: (late: T) => void } = {}): Promise<T> {
    return this.operations.run(op, what, key, call, how);
  }
}
