// Removes what failed publishes left behind (claims, data of versions without a meta, incomplete uploads),
// older than a grace period, so a publish in progress is never touched. Complete versions that `.versions` does
// not list are reported and kept, unless --remove-unlisted.
import type { Context } from "./context.ts";
import { UsageError } from "../base/errors.ts";
import { collectGarbage, planGc, type GcTotals } from "../registry/gc.ts";
import { sweepBlobs, type SweepOutcome } from "../registry/sweep.ts";
import { formatBytes, parseDuration } from "../base/units.ts";
import { keyValueRegistry } from "../registry/key-value.ts";
import type { OciLayout } from "../registry/oci/oci-layout.ts";
import { isOciLayout } from "../registry/oci/kind.ts";

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
  const olderThan = options.olderThan ?? DEFAULT_GC_GRACE;
  const graceMs = parseDuration(olderThan, "--older-than");
  const dryRun = options.dryRun ?? false;
  if (isOciLayout(ctx.registry)) return ociGc(ctx.registry, olderThan, graceMs, dryRun);
  const registry = keyValueRegistry(ctx.registry, "gc");
  if (!registry.writable || !registry.listable) throw new UsageError(`${registry.url} is read-only or cannot be listed: run gc against the writable store`);
  const plan = await planGc(registry, graceMs, options.removeUnlisted ?? false);
  const kept = new Set(plan.unlisted.map((v) => `${v.name}:${v.version}`));

  const lines: string[] = [];
  const planned: GcTotals = { claims: 0, versions: 0, objects: 0, bytes: 0, uploads: plan.uploads.length, uploadBytes: 0, blobs: 0, blobBytes: 0 };
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
  // After the leftovers: the blobs only an unfinished version listed are unreferenced now.
  for (const name of await registry.assets()) {
    const swept = await sweepBlobs(registry, name, { graceMs, dryRun });
    removed.blobs += swept.deleted.blobs;
    removed.blobBytes += swept.deleted.bytes;
    lines.push(...sweepLines(name, swept, dryRun));
  }
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

/** What a sweep of an asset's blobs did (or, dry, would do), for gc's and prune's plans: nothing when it has none. */
export function sweepLines(name: string, swept: SweepOutcome, dryRun: boolean): string[] {
  if (swept.state === "none") return [];
  if (swept.state === "busy") return [`kept the blobs of ${name}: ${swept.why}`];
  const { blobs, bytes } = swept.deleted;
  return [
    ...(blobs ? [`${dryRun ? "remove" : "removed"} ${blobs} blob(s) of ${name} that no version lists, ${formatBytes(bytes)}`] : []),
    ...(swept.recent ? [`kept ${swept.recent} unlisted blob(s) of ${name}: written within the grace period (a publish may be running)`] : []),
  ];
}

/**
 * gc on an OCI store: assetkit's own tags (holds, claims, markers) older than the grace period; every version is
 * complete there (one tag PUT commits it), so there is nothing "unlisted". `claims` counts the tags removed.
 */
async function ociGc(registry: OciLayout, olderThan: string, graceMs: number, dryRun: boolean): Promise<GcResult> {
  const plan = await registry.gcPlan(graceMs);
  const { removed, refused } = dryRun ? { removed: plan.leftovers, refused: [] } : await registry.removeLeftovers(plan.leftovers);
  const tags = (leftovers: { tags: string[] }[]) => leftovers.reduce((sum, l) => sum + l.tags.length, 0);
  const note = refused.length
    ? `${registry.url} refuses tag deletion (405): ${tags(refused)} hold, claim or marker tag(s) older than ${olderThan} stay (${refused
        .slice(0, 3)
        .map((l) => l.tags[0])
        .join(
          ", ",
        )}${refused.length > 3 ? ", …" : ""}); they only tag manifests that exist anyway and hide no version${registry.deletesThroughPackages ? ` (through GitHub's Packages API a manifest goes with all its tags: these share theirs with a version, or with the claims of publishes that may be running)` : ": remove them with the registry's own tools where it has any"}`
    : "on oci:// stores claim(s) counts hold, claim and marker tags; untagged manifests and their blobs are reclaimed by the registry's own garbage collection";
  return {
    store: registry.url,
    dryRun,
    olderThan,
    removed: { claims: tags(removed), versions: 0, objects: 0, bytes: 0, uploads: 0, uploadBytes: 0, blobs: 0, blobBytes: 0 },
    plan: removed.map((l) => l.line),
    recent: plan.recent,
    unlisted: [],
    note,
  };
}
