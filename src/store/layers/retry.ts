// The retry layer: the one owner of retries for every store request (the SDKs' own retries are off). Only
// temporary errors are tried again, with exponential backoff and jitter, honouring a server's Retry-After; when the
// budget (ASSETKIT_RETRIES tries after the first, no new try after ASSETKIT_TIMEOUT) is spent the error is marked
// persistent, so no caller retries it again and budgets never multiply.
import { setTimeout as sleep } from "node:timers/promises";
import { StoreError } from "../store.ts";
import type { TimeBudget } from "../tuning.ts";

const FIRST_DELAY_MS = 200;
const MAX_DELAY_MS = 5_000;
/** A Retry-After beyond this is not waited for in full: the budget decides instead. */
const MAX_RETRY_AFTER_MS = 30_000;

/** The pause before try `attempt + 1`: exponential with jitter, at least what the server asked for. */
export function backoffMs(attempt: number, retryAfterMs?: number): number {
  const ceiling = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (attempt - 1));
  const jittered = ceiling / 2 + Math.random() * (ceiling / 2);
  return Math.max(jittered, Math.min(retryAfterMs ?? 0, MAX_RETRY_AFTER_MS));
}

/**
 * Runs `tryOnce` (given the try's number, from 1) until it succeeds, fails for good, or the budget is spent.
 * `toStoreError` turns whatever a try threw into a StoreError (non-StoreErrors pass through untouched when it
 * returns undefined: local failures, integrity errors).
 */
export async function retrying<T>(
  budget: TimeBudget,
  tryOnce: (attempt: number) => Promise<T>,
  toStoreError: (err: unknown) => StoreError | undefined = asStoreError,
): Promise<T> {
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await tryOnce(attempt);
    } catch (raw) {
      const err = toStoreError(raw);
      if (!err) throw raw;
      await sleep(delayBeforeRetry(err, attempt, started, budget));
    }
  }
}

/** How long to wait before trying again after `err` ended try `attempt`; throws `err` (marked persistent) instead when it is not worth it. */
export function delayBeforeRetry(err: StoreError, attempt: number, started: number, budget: TimeBudget): number {
  err.attempts = attempt;
  if (!err.temporary) throw err;
  const delay = backoffMs(attempt, err.retryAfterMs);
  if (attempt > budget.retries || Date.now() - started + delay > budget.timeoutMs) throw givenUp(err, attempt);
  return delay;
}

function asStoreError(err: unknown): StoreError | undefined {
  return err instanceof StoreError ? err : undefined;
}

/** The error marked persistent, its message saying how many tries were made. */
export function givenUp(err: StoreError, attempts: number): StoreError {
  err.temporary = false;
  err.attempts = attempts;
  if (attempts > 1) {
    const message = `${err.message} (gave up after ${attempts} tries)`;
    if (err.stack) err.stack = err.stack.replace(err.message, message);
    err.message = message;
  }
  return err;
}
