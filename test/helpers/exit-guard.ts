// Loaded into every test file's process by scripts/test.ts. A file whose tests have all ended but whose process is
// still alive 30 s later is held by something a test left open (a socket, a server, a child, a timer): the guard
// names what, and exits 1. That file then fails at once, instead of holding the suite until CI's time limit runs out
// with nothing said (as a proxy's leaked upstream socket once did).
import { after } from "node:test";

const GRACE_MS = Number(process.env.ASSETKIT_TEST_EXIT_GRACE_MS ?? 30_000); // shorter only in the guard's own test

after(() => {
  setTimeout(() => {
    const held = process.getActiveResourcesInfo().filter((kind) => kind !== "PipeWrap" && kind !== "TTYWrap"); // stdio
    process.stderr.write(`exit guard: every test of this file ended ${GRACE_MS / 1000} s ago, and the process is still held by: ${held.join(", ")}\n`);
    process.exit(1);
  }, GRACE_MS).unref();
});
