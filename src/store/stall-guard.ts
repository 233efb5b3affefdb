// A watchdog for response bodies: a download whose server stops sending fails instead of hanging.
import { Readable } from "node:stream";

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
      source.resume();
    },
    destroy(err, callback) {
      disarm();
      if (!source.destroyed) source.destroy();
      callback(err);
    },
  });
  source.on("data", (chunk: Buffer) => {
    if (out.push(chunk)) arm();
    else {
      disarm();
      source.pause();
    }
  });
  source.pause();
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
