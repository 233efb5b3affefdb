// Polling for what a background process (sync --watch) makes true.
import { setTimeout as sleep } from "node:timers/promises";

/** Polls `condition` every 100 ms until it gives a value; fails after `guardMs` (a hang guard, not a speed claim). */
export async function waitFor<T>(what: string, guardMs: number, condition: () => Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + guardMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${guardMs / 1000} s waiting for ${what}`);
    await sleep(100);
  }
}
