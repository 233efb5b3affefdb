// The timeout layer: a try that receives no byte for ASSETKIT_IDLE_TIMEOUT fails with a temporary error. Calls race a
// deadline (an answer must come within it); response bodies pass through the one stall guard (stall-guard.ts).
// The deadline's AbortSignal reaches the backend through AsyncLocalStorage, so the Store interface stays as callers
// know it and a backend hands the signal to its SDK (operationSignal()) to free the abandoned request at once.
import { AsyncLocalStorage } from "node:async_hooks";
import { StoreError } from "../store.ts";

const deadlines = new AsyncLocalStorage<AbortSignal>();

/** The abort signal of the try in progress, for a backend to pass to its SDK; undefined outside the layers. */
export function operationSignal(): AbortSignal | undefined {
  return deadlines.getStore();
}

/** The try's abort signal as the SDKs' `abortSignal` option (S3 send options, Azure request options). */
export function abortOption(): { abortSignal?: AbortSignal } {
  const abortSignal = deadlines.getStore();
  return abortSignal ? { abortSignal } : {};
}

export function idleError(ms: number, what: "no answer" | "no data"): StoreError {
  return new StoreError("unavailable", `${what} for ${formatSeconds(ms)} (ASSETKIT_IDLE_TIMEOUT)`, { temporary: true });
}

export function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

/**
 * Runs `call` under a deadline of `ms`: past it, the call's signal aborts and a temporary StoreError rejects at once.
 * A result that arrives too late is handed to `discard` (a response stream nobody will read).
 */
export async function withDeadline<T>(ms: number, call: () => Promise<T>, discard?: (late: T) => void): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = idleError(ms, "no answer");
      controller.abort(err);
      reject(err);
    }, ms);
  });
  const running = deadlines.run(controller.signal, call);
  if (discard)
    void running.then(
      (late) => controller.signal.aborted && discard(late),
      () => undefined,
    );
  try {
    return await Promise.race([running, expired]);
  } finally {
    clearTimeout(timer);
  }
}
