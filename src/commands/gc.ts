// Removes what failed publishes left behind (claims, data of versions without a meta, incomplete uploads),
// older than a grace period, so a publish in progress is never touched. Complete versions that `.versions` does
// not list are reported and kept, unless --remove-unlisted.
import type { Context } from "./context.ts";
import { UsageError } from "../base/errors.ts";
import { collectGarbage, planGc, type GcTotals } from "../registry/gc.ts";
import { parseDuration } from "../base/units.ts";
import { keyValueRegistry } from "../registry/key-value.ts";

export const DEFAULT_GC_GRACE = "24h";

/** The report line of a complete version that `.versions` does not list, which gc keeps. */
export const unlistedNote = (spec: string): string =>
  `note: ${spec} has a meta but is not listed in its .versions: left in place (--remove-unlisted removes it)`;

export interface GcResult {
  store: string;
  dryRun: boolean;
  olderThan: string;
  /** What was removed, or (dry run) what would be. */
  removed: GcTotals;
  /** One line per thing removed (or to remove), for the plan. */
  plan: string[];
  /** Versions left alone because something of them is newer than the grace period. */
  recent: string[];
  /** Versions with a meta that `.versions` does not list: left in place (without --remove-unlisted). */
  unlisted: string[];
  note?: string;
}

export async function gcCommand(ctx: Context, options: { olderThan?: string; dryRun?: boolean; removeUnlisted?: boolean }): Promise<GcResult> {
  const registry = keyValueRegistry(ctx.registry, "gc");
  if (!registry.writable || !registry.listable) throw new UsageError(`${registry.url} is read-only or cannot be listed: run gc against the writable store`);
  const olderThan = options.olderThan ?? DEFAULT_GC_GRACE;
  const graceMs = parseDuration(olderThan, "--older-than");
  const dryRun = options.dryRun ?? false;
  const plan = await planGc(registry, graceMs, options.removeUnlisted ?? false);
  const kept = new Set(plan.unlisted.map((v) => `${v.name}:${v.version}`));

  const lines: string[] = [];
  const planned: GcTotals = { claims: 0, versions: 0, objects: 0, bytes: 0, uploads: plan.uploads.length, uploadBytes: 0 };
  for (const upload of plan.uploads) {
    planned.uploadBytes += upload.size;
    lines.push(`abort incomplete upload of ${upload.key} (started ${upload.started.toISOString()}, ${upload.size} bytes in parts)`);
  }
  for (const l of plan.leftovers) {
    const bytes = l.data.reduce((sum, o) => sum + o.size, 0);
    planned.objects += l.data.length;
    planned.bytes += bytes;
    if (l.claim) planned.claims++;
    if (l.kind !== "stale-claim") planned.versions++;
    const data = `${l.data.length} data object(s), ${bytes} bytes${l.claim ? ", and its claim" : ""}`;
    const spec = `${l.name}:${l.version}`;
    lines.push(
      l.kind === "stale-claim"
        ? `remove the stale claim of ${spec} (the version is complete${kept.has(spec) ? " but not listed in .versions: it is kept" : ""})`
        : l.kind === "unlisted"
          ? `remove ${spec} (--remove-unlisted): complete but not listed in .versions; its meta, ${data}`
          : `remove ${spec}: no meta; ${data}`,
    );
  }
  const removed = dryRun ? planned : await collectGarbage(registry, plan, (m) => ctx.reporter.warn(m));
  const note = plan.uploadsChecked
    ? undefined
    : ctx.registry.url.startsWith("az://") || ctx.registry.url.includes(".blob.core.windows.net")
      ? "Azure: uncommitted blocks of interrupted uploads are discarded by the service itself after 7 days"
      : undefined;
  return {
    store: ctx.registry.url,
    dryRun,
    olderThan,
    removed,
    plan: lines,
    recent: plan.recent.map((v) => `${v.name}:${v.version}`),
    unlisted: [...kept],
    ...(note ? { note } : {}),
  };
}
