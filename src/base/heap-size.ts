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

/**
 * Keeps V8's heap near what is live. The young generation stays at its first size (1 MiB semispaces) instead of
 * growing to 16 MiB ones: each small file leaves garbage (a request's objects, the wrappers of the buffers it read)
 * that holds those buffers until a scavenge, and a large young generation scavenges rarely (20,000 × 4 KiB to and
 * from a folder store peaked at 155 and 164 MiB, 126 and 104 MiB with this, at no more CPU). The old generation
 * grows by 10% of what a full collection left live (HEAP_GROWING_PERCENT) instead of by up to 4×: what outlives
 * two scavenges while 16 transfers are in flight is mostly garbage, which otherwise piled up to twice the live heap
 * (100,000 × 4 KiB published to a folder store: 154 MiB of heap, 53 live, 270 MiB peak; 179 MiB with this, at the
 * same user CPU; docs/performance.md, "Many small files"). Node's command line can set either (`--max-semi-space-size=4`,
 * `--heap-growing-percent`), but a bin cannot pass it portably (`#!/usr/bin/env -S` fails on BusyBox and the
 * BSDs); V8 reads both at each resize, so they are set here. Call it once the modules are loaded: start-up
 * allocates several MiB of code and data, which a 1 MiB young generation scavenges many times over. Set before the
 * CLI's modules loaded, `assetkit --version` took ~40 ms more CPU (185–210 against 145–175 ms, 3 × 10 runs); set
 * after, the young generation has grown to 2 MiB semispaces by then, and 20,000 × 4 KiB published and fetched at
 * the same peak RSS (123–126 and 98–105 MiB) with less CPU.
 */
export function keepHeapSmall(): void {
  process.getBuiltinModule("node:v8").setFlagsFromString("--semi-space-growth-factor=1");
  process.getBuiltinModule("node:v8").setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

const HEAP_GROWING_PERCENT = 10;
