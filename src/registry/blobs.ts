// The shared blobs of the content-addressed layout (docs/content-addressed.md): a publisher reuses the blobs its
// previous version lists without a request, and a sweeper (gc, prune: sweep.ts) deletes the blobs no meta lists. They meet
// at two objects, each written before the other's is read: the publisher's claim, and the asset's sweep marker.
// - A sweeper writes the marker ("running"), then lists the asset's claims: a claim younger than the grace period
//   is a publish that may reuse any blob, so it sweeps nothing; else it lists the metas, then deletes what none
//   lists, then writes the marker again ("done").
// - A publisher reads the marker before it reads the previous version's meta, and again once it holds its claim.
//   The same marker, not running, both times: no sweep ran meanwhile, and any later one sees the claim. Else it
//   waits for the sweep to end and reads the previous meta again.
// A sweep stops deleting after SWEEP_LIMIT_MS, so a sweeper that died holds no publisher longer than that.
import { setTimeout as sleep } from "node:timers/promises";
import { sweepKey } from "./layout.ts";
import type { Store } from "../store/store.ts";

/** The longest a sweep deletes; a publisher waits for a running one no longer (plus CLOCK_MARGIN_MS). */
export const SWEEP_LIMIT_MS = 10 * 60 * 1000;
/** Clocks of the sweeper and the publisher may disagree by this much. */
const CLOCK_MARGIN_MS = 60 * 1000;
const POLL_MS = 1000;

/** The sweep marker as a publisher reads it: its etag (undefined: never swept), and whether a sweep runs now. */
export interface SweepState {
  etag: string | undefined;
  running: boolean;
  until?: string;
}

export async function readSweep(store: Store, name: string): Promise<SweepState> {
  const object = await store.read(sweepKey(name));
  if (!object) return { etag: undefined, running: false };
  let marker: { state?: unknown; until?: unknown } = {};
  try {
    marker = JSON.parse(object.data.toString("utf8")) as typeof marker;
  } catch {
    // a damaged marker runs no sweep: the next sweeper replaces it
  }
  const until = typeof marker.until === "string" ? Date.parse(marker.until) : NaN;
  const running = marker.state === "running" && Date.now() < until + CLOCK_MARGIN_MS;
  return { etag: object.etag, running, ...(running ? { until: marker.until as string } : {}) };
}

/**
 * Called once the publisher holds its claim, with the marker read before the previous meta was: true when a sweep
 * ran or runs since (it may have deleted a blob that meta lists), after waiting for a running one to end; the
 * caller then reads the previous meta again. Without `before`, only waits for a running sweep.
 */
export async function sweptSince(store: Store, name: string, before: SweepState | undefined, notify: (message: string) => void): Promise<boolean> {
  let now = await readSweep(store, name);
  if (before && now.etag === before.etag && !now.running && !before.running) return false;
  if (now.running) notify(`waiting for the sweep of ${name}'s unreferenced blobs to end (${sweepKey(name)}; it stops by ${now.until})`);
  while (now.running) {
    await sleep(POLL_MS);
    now = await readSweep(store, name);
  }
  return true;
}
