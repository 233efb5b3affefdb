// Frees socket read buffers sooner. Node's HTTP client hands over a freshly allocated 64 KiB buffer per socket read;
// the transfer engine copies it and drops it at once, but its memory is only returned when V8 next collects, which
// it does by external-memory pressure (up to ~64 MiB of dead buffers) since their tiny wrappers barely fill the young
// generation. A minor (young-generation) collection every few MiB received frees them for ~1 ms each.

type Gc = (options: { type: "minor" | "major"; execution?: "sync" }) => void;

let gc: Gc | undefined | null;
let received = 0;

/** Counts bytes received; every COLLECT_EVERY bytes, collects the young generation. */
export function receivedBytes(n: number): void {
  received += n;
  if (received < COLLECT_EVERY) return;
  received = 0;
  if (gc === undefined) {
    // v8 and vm load here, at the first 16 MiB received, not at every start.
    process.getBuiltinModule("node:v8").setFlagsFromString("--expose-gc");
    gc = (process.getBuiltinModule("node:vm").runInNewContext("gc") as Gc | undefined) ?? null;
  }
  gc?.({ type: "minor" });
}

const COLLECT_EVERY = 16 * 1024 * 1024;
