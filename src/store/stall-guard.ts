// A watchdog for response bodies: a download whose server stops sending fails instead of hanging.
import { Readable } from "node:stream";
import { TAKE_CHUNKS, takesChunks, type ChunkTaking } from "./chunk-body.ts";

/**
 * Passes `source` through, failing with `onStall()` when the reader has asked for bytes and none came for `ms`.
 * A slow reader (backpressure) never trips it: the clock only runs while the reader is waiting on the source.
 */
export function stallGuard(source: Readable, ms: number, onStall: () => Error, mapError?: (err: Error) => Error): Readable {
  let timer: NodeJS.Timeout | undefined;
  const disarm = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
  };
  const arm = () => {
    if (timer) timer.refresh();
    else timer = setTimeout(() => out.destroy(onStall()), ms);
  };
  const out = new Readable({
    read() {
      arm();
      // Read as a stream only once asked to: a body read by TAKE_CHUNKS must not start flowing into a buffer first.
      if (source.listenerCount("data") === 0) source.on("data", onData);
      source.resume();
    },
    destroy(err, callback) {
      disarm();
      if (!source.destroyed) source.destroy();
      callback(err);
    },
  });
  if (takesChunks(source)) {
    // The same watch over a body read by views: the clock runs between chunks, not while a chunk's promise is pending.
    const taking: ChunkTaking = {
      [TAKE_CHUNKS]: async (take) => {
        arm();
        try {
          await source[TAKE_CHUNKS]((chunk) => {
            const pending = take(chunk);
            if (!pending) return void arm();
            disarm();
            return pending.then(arm);
          });
        } catch (err) {
          throw out.errored ?? (mapError ? mapError(err as Error) : err);
        } finally {
          disarm();
        }
      },
    };
    Object.assign(out, taking);
  }
  const onData = (chunk: Buffer): void => {
    if (out.push(chunk)) arm();
    else {
      disarm();
      source.pause();
    }
  };
  source.once("end", () => {
    disarm();
    out.push(null);
  });
  source.on("error", (err) => {
    disarm();
    if (!out.destroyed) out.destroy(mapError ? mapError(err) : err);
  });
  return out;
}
