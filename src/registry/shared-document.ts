// Read-modify-write of a small document many writers share (`.versions`, `.aliases`) by compare-and-swap on its
// etag, retried with backoff under contention: the one way the registry changes a shared document, so no update is lost.
import { setTimeout as sleep } from "node:timers/promises";
import { AssetError } from "../base/errors.ts";
import type { Store } from "../store/store.ts";

const MAX_ATTEMPTS = 200;

/**
 * `next` gets the current content (undefined when absent) and returns the new one, or undefined when nothing
 * needs to change. True when this call wrote.
 */
export async function updateDocument(store: Store, key: string, next: (current: Buffer | undefined) => Promise<string | undefined>): Promise<boolean> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const current = await store.read(key);
    const body = await next(current?.data);
    if (body === undefined) return false;
    if (await store.write(key, Buffer.from(body), current ? { ifMatch: current.etag } : { ifAbsent: true })) return true;
    await contentionBackoff(attempt);
  }
  throw new AssetError(`could not update ${key} in ${store.url} after ${MAX_ATTEMPTS} attempts (too much contention)`);
}

/** Randomised exponential backoff between compare-and-swap attempts on a contended document. */
function contentionBackoff(attempt: number): Promise<void> {
  return sleep(Math.min(500, 5 * 2 ** Math.min(attempt, 6)) * Math.random());
}
