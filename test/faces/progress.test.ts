import { test } from "node:test";
import assert from "node:assert/strict";
import { createProgress } from "../../src/faces/progress.ts";

/** A sink writing to an array, on a clock the test moves. */
function sink(live: boolean) {
  const written: string[] = [];
  const clock = { t: 1_000_000 };
  const stream = { write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream;
  return { written, clock, progress: createProgress(stream, { live, now: () => clock.t }) };
}

test("a live line is drawn at most every 100 ms, and the end of the last transfer at once", () => {
  const { written, clock, progress } = sink(true);
  progress.update(0, 1000, "a", { done: 0, total: 10 });
  assert.equal(written.length, 1, "the first update draws");
  for (let i = 1; i < 9; i++) progress.update(i * 100, 1000, "a", { done: i, total: 10 });
  assert.equal(written.length, 1, "updates within 100 ms draw nothing");
  clock.t += 100;
  progress.update(900, 1000, "a", { done: 9, total: 10 });
  assert.equal(written.length, 2);
  assert.match(written[1]!, /a: 900 B \/ 1000 B, 9\/10 files/);
  clock.t += 1;
  progress.update(1000, 1000, "a", { done: 10, total: 10 });
  assert.equal(written.length, 3, "the finished transfer is drawn at once");
  assert.match(written[2]!, /10\/10 files/);
  progress.clear();
  assert.equal(written.at(-1), "\r\x1b[2K");
});

test("a live line waits for every transfer to finish before drawing out of turn", () => {
  const { written, clock, progress } = sink(true);
  progress.update(0, 100, "a");
  progress.update(0, 100, "b");
  clock.t += 1;
  progress.update(100, 100, "a");
  assert.equal(written.length, 1, "b is still running: not drawn within 100 ms");
  progress.update(100, 100, "b");
  assert.equal(written.length, 2);
  assert.match(written[1]!, /2 assets: 200 B \/ 200 B/);
});

test("in a log, a line every 5 s, none for a transfer shorter than that", () => {
  const { written, clock, progress } = sink(false);
  progress.update(0, 100, "a");
  clock.t += 4_000;
  progress.update(100, 100, "a");
  assert.deepEqual(written, []);
  clock.t += 1_000;
  progress.update(100, 200, "a");
  assert.equal(written.length, 1);
  assert.match(written[0]!, /^a: 100 B \/ 200 B, .*\n$/);
  clock.t += 4_999;
  progress.update(150, 200, "a");
  assert.equal(written.length, 1);
});
