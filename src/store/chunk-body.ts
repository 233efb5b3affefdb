// Reading a response body without a Buffer per chunk. A body may offer TAKE_CHUNKS: it then hands each chunk to the
// consumer as a view of its own read buffer, valid only during the call, so a consumer that copies the bytes at once
// (the transfer engine batching them into positioned writes) costs no allocation and no stream events per chunk.
// Every body is still a Readable for everyone else.
import type { Readable } from "node:stream";
import { finished } from "node:stream/promises";

export const TAKE_CHUNKS = Symbol("assetkit.takeChunks");

/** Receives one chunk, valid only during the call; a returned promise holds the next chunk back until it settles. */
export type TakeChunk = (chunk: Buffer) => Promise<void> | undefined;

export interface ChunkTaking {
  /** Hands every remaining byte to `take`; settles when the body has ended and the last promise `take` gave settled. */
  [TAKE_CHUNKS](take: TakeChunk): Promise<void>;
}

export function takesChunks(source: Readable): source is Readable & ChunkTaking {
  return typeof (source as Partial<ChunkTaking>)[TAKE_CHUNKS] === "function";
}

/**
 * Feeds each chunk of `source` to `take`, holding the source back while a promise `take` returned is pending, and
 * destroys the source at the end. `onStreamChunk` sees each chunk of a source read as a stream (not by TAKE_CHUNKS).
 * Event-driven, not `for await`: no promise per chunk. On failure, waits for the pending promise before rethrowing,
 * so that whatever `take` counted has been handled.
 */
export async function pumpChunks(source: Readable, take: TakeChunk, cancelled?: AbortSignal, onStreamChunk?: (n: number) => void): Promise<void> {
  const cancel = (): void => void source.destroy(cancelled?.reason as Error);
  cancelled?.addEventListener("abort", cancel, { once: true });
  let pending: Promise<void> | undefined;
  try {
    if (takesChunks(source)) {
      source.on("error", () => undefined); // the same failure rejects TAKE_CHUNKS, where it is handled
      await source[TAKE_CHUNKS]((chunk) => {
        const next = take(chunk);
        if (next) pending = next;
        return next;
      });
      return;
    }
    const fail = (err: unknown): void => void source.destroy(err as Error);
    source.on("data", (chunk: Buffer) => {
      try {
        onStreamChunk?.(chunk.length);
        const next = take(chunk);
        if (!next) return;
        source.pause();
        pending = next.then(() => void source.resume(), fail);
      } catch (err) {
        fail(err);
      }
    });
    await finished(source);
    await pending;
  } finally {
    await pending?.catch(() => undefined);
    cancelled?.removeEventListener("abort", cancel);
    source.destroy();
  }
}
