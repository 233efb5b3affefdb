// Deleting the blobs of the content-addressed layout that no meta lists (gc, prune), by the protocol of blobs.ts:
// the sweep marker first, then the asset's claims (a publish running may reuse any blob: nothing is swept), then
// every meta, then the blobs; a blob written within the grace period stays.
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { readSweep, SWEEP_LIMIT_MS } from "./blobs.ts";
import { blobDigest, blobPrefix, metaVersion, sweepKey } from "./layout.ts";
import type { Registry } from "./registry.ts";

export interface SweepOutcome {
  /** "busy": a publish or another sweep of the asset runs: nothing was swept. */
  state: "swept" | "busy" | "none";
  why?: string;
  deleted: { blobs: number; bytes: number };
  /** Unreferenced blobs written within the grace period (a crashed publish's, younger than gc may touch): kept. */
  recent: number;
}

/**
 * Deletes the blobs of `name` that no meta of the asset lists (complete or not, listed in `.versions` or not) and
 * that were written before `now - graceMs`; with `dryRun`, only counts them.
 */
export async function sweepBlobs(registry: Registry, name: string, options: { graceMs: number; dryRun: boolean; now?: Date }): Promise<SweepOutcome> {
  const { store } = registry;
  const outcome: SweepOutcome = { state: "none", deleted: { blobs: 0, bytes: 0 }, recent: 0 };
  const first = await store.list(blobPrefix(name))[Symbol.asyncIterator]().next();
  if (first.done) return outcome; // no blob: nothing to sweep, no marker written
  const cutoff = (options.now ?? new Date()).getTime() - options.graceMs;
  const busy = (why: string): SweepOutcome => ({ ...outcome, state: "busy", why });

  const current = await store.read(sweepKey(name));
  if (current && (await readSweep(store, name)).running) return busy(`another sweep of ${name}'s blobs is running (${sweepKey(name)})`);
  const started = Date.now();
  const marker = (state: string) =>
    Buffer.from(
      JSON.stringify({
        state,
        token: randomUUID(),
        by: "assetkit",
        host: hostname(),
        pid: process.pid,
        at: new Date().toISOString(),
        until: new Date(started + SWEEP_LIMIT_MS).toISOString(),
      }) + "\n",
    );
  if (!options.dryRun && !(await store.write(sweepKey(name), marker("running"), current ? { ifMatch: current.etag } : { ifAbsent: true }))) {
    return busy(`another sweep of ${name}'s blobs started meanwhile`);
  }
  try {
    const referenced = new Set<string>();
    for await (const object of store.list(`${name}/`, { shallow: true })) {
      const rest = object.key.slice(name.length + 1);
      if (rest.includes("/")) continue;
      if (rest.endsWith(".claim") && (object.modified?.getTime() ?? Infinity) > cutoff) {
        return busy(`${object.key}: a publish of ${name} is running, and may reuse any blob`);
      }
      const version = metaVersion(name, object.key);
      if (version === undefined) continue;
      // A meta that cannot be read might list any blob: nothing is swept.
      const meta = await registry.storedMeta(name, version).catch(() => undefined);
      if (!meta) return busy(`${object.key} cannot be read, so the blobs it lists are unknown`);
      if (meta.layout !== "content-addressed") continue;
      for (const file of meta.files) referenced.add(file.sha256!);
      for (const shard of meta.document.assetkit?.shards ?? []) referenced.add(shard.sha256);
    }
    for await (const blob of store.list(blobPrefix(name))) {
      const sha256 = blobDigest(name, blob.key);
      if (sha256 === undefined || referenced.has(sha256)) continue;
      if ((blob.modified?.getTime() ?? Infinity) > cutoff) {
        outcome.recent++;
        continue;
      }
      if (Date.now() > started + SWEEP_LIMIT_MS) return busy(`the sweep of ${name} ran out of its ${SWEEP_LIMIT_MS / 60000} minutes: run gc again`);
      if (!options.dryRun) await store.delete(blob.key);
      outcome.deleted.blobs++;
      outcome.deleted.bytes += blob.size;
    }
    outcome.state = "swept";
    return outcome;
  } finally {
    if (!options.dryRun) await store.write(sweepKey(name), marker("done"));
  }
}
