// Garbage of failed publishes, read from the store layout (layout.ts): a publisher killed mid-way leaves its
// claim, data and signature of a version without a `.meta` (never visible to readers) and, on S3, incomplete multipart uploads.
// Only what is older than a grace period is touched, so a publish in progress is left alone. A version with a
// `.meta` is complete: it is kept even when `.versions` does not list it, unless its removal is asked for.
import { assetsIn, claimKey, metaKey, parseVersionKey } from "./layout.ts";
import { claimDocument } from "./publish-protocol.ts";
import type { Registry } from "./registry.ts";
import { incompleteUploadsOf, type IncompleteUpload, type StoredObject } from "../store/store.ts";

/**
 * What one version left behind: "unfinished" (no meta: its data and claim), "unlisted" (a meta that `.versions`
 * does not list, removed only when asked: meta, data and claim go), or "stale-claim" (a complete version, listed
 * or kept unlisted, whose publisher died before deleting its claim: only the claim goes).
 */
export interface Leftover {
  name: string;
  version: string;
  kind: "unfinished" | "unlisted" | "stale-claim";
  /** The claim, when there is one, as listed. */
  claim?: StoredObject;
  /** Data objects to delete, the signature among them (none for a stale claim). */
  data: StoredObject[];
}

export interface GcPlan {
  leftovers: Leftover[];
  uploads: IncompleteUpload[];
  /** Versions with leftovers written within the grace period: a publish may be running, so they stay. */
  recent: { name: string; version: string }[];
  /** Versions with a meta that `.versions` does not list, left in place (their stale claim may still go). */
  unlisted: { name: string; version: string }[];
  /** Whether this store can leave incomplete uploads that gc can see (S3). */
  uploadsChecked: boolean;
}

export interface GcTotals {
  claims: number;
  versions: number;
  objects: number;
  bytes: number;
  uploads: number;
  uploadBytes: number;
  /** Blobs of the content-addressed layout that no meta lists (sweep.ts). */
  blobs: number;
  blobBytes: number;
}

interface VersionObjects {
  name: string;
  version: string;
  meta?: StoredObject;
  claim?: StoredObject;
  data: StoredObject[];
}

/**
 * Scans the whole store once and plans what a gc with this grace period removes; versions with a meta that
 * `.versions` does not list are removed only with `removeUnlisted`.
 */
export async function planGc(registry: Registry, graceMs: number, removeUnlisted: boolean, now = new Date()): Promise<GcPlan> {
  const store = registry.store;
  const cutoff = now.getTime() - graceMs;
  const objects: StoredObject[] = [];
  for await (const object of store.list("")) objects.push(object);
  const uploads: IncompleteUpload[] = [];
  const uploader = incompleteUploadsOf(store);
  if (uploader) for await (const upload of uploader.incompleteUploads("")) uploads.push(upload);

  const names = assetsIn(objects.map((o) => o.key));
  const groups = new Map<string, VersionObjects>();
  for (const object of objects) {
    const owner = parseVersionKey(object.key, names);
    if (!owner) continue;
    const id = `${owner.name}\0${owner.version}`;
    let group = groups.get(id);
    if (!group) groups.set(id, (group = { name: owner.name, version: owner.version, data: [] }));
    if (owner.kind === "meta") group.meta = object;
    else if (owner.kind === "claim") group.claim = object;
    else group.data.push(object);
  }

  const plan: GcPlan = { leftovers: [], uploads: [], recent: [], unlisted: [], uploadsChecked: uploader !== undefined };
  // A version is recent while anything of it (an object, or an upload still running) was written after the cutoff.
  const recentVersions = new Set<string>();
  for (const upload of uploads) {
    if (upload.started.getTime() > cutoff) {
      const owner = parseVersionKey(upload.key, names);
      if (owner) recentVersions.add(`${owner.name}\0${owner.version}`);
    } else plan.uploads.push(upload);
  }
  for (const [id, group] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
    const { name, version, meta, claim } = group;
    const unlisted = meta !== undefined && !(await registry.versions(name)).versions.includes(version);
    let kind: Leftover["kind"] | undefined;
    if (!meta) kind = claim || group.data.length > 0 ? "unfinished" : undefined;
    else if (unlisted && removeUnlisted) kind = "unlisted";
    else kind = claim ? "stale-claim" : undefined;
    if (!kind && !unlisted) continue;
    // Of a listed version only the claim tells whether its publisher may still be at work; otherwise any of it does.
    const written = (meta && !unlisted ? [claim] : [claim, meta, ...group.data]).filter((o): o is StoredObject => o !== undefined);
    // An object whose time the store does not report is taken as new: never deleted on a guess.
    if (recentVersions.has(id) || written.some((o) => (o.modified?.getTime() ?? Infinity) > cutoff)) {
      plan.recent.push({ name, version });
      continue;
    }
    if (unlisted && !removeUnlisted) plan.unlisted.push({ name, version });
    if (kind) plan.leftovers.push({ name, version, kind, ...(claim ? { claim } : {}), data: kind === "stale-claim" ? [] : group.data });
  }
  return plan;
}

/**
 * Removes what the plan found. Data goes before the claim, so no publisher can take the version while its old
 * data is being deleted; a version without a claim is claimed by gc first (and skipped if someone else has it).
 */
export async function collectGarbage(registry: Registry, plan: GcPlan, warn: (message: string) => void): Promise<GcTotals> {
  const store = registry.store;
  const totals: GcTotals = { claims: 0, versions: 0, objects: 0, bytes: 0, uploads: 0, uploadBytes: 0, blobs: 0, blobBytes: 0 };
  const uploader = incompleteUploadsOf(store);
  if (uploader) {
    for (const upload of plan.uploads) {
      await uploader.abortUpload(upload);
      totals.uploads++;
      totals.uploadBytes += upload.size;
    }
  }
  for (const leftover of plan.leftovers) {
    const keys = { meta: metaKey(leftover.name, leftover.version), claim: claimKey(leftover.name, leftover.version) };
    const what = `${leftover.name}:${leftover.version}`;
    if (leftover.claim) {
      // Another gc may have removed this claim and a new publisher taken the version since our scan.
      if ((await store.head(keys.claim))?.etag !== leftover.claim.etag) {
        warn(`gc: the claim of ${what} changed since the scan: left alone`);
        continue;
      }
    } else if (!(await store.write(keys.claim, claimDocument({ by: "assetkit gc", at: new Date().toISOString() }).body, { ifAbsent: true }))) {
      warn(`gc: ${what} is being published now: left alone`);
      continue;
    }
    // Its publisher finished after all: the version is complete now (a claim gc took itself is given back).
    const finished =
      leftover.kind === "unfinished"
        ? (await store.head(keys.meta)) !== undefined
        : leftover.kind === "unlisted" && (await registry.freshVersions(leftover.name)).versions.includes(leftover.version);
    if (finished) {
      if (!leftover.claim) await store.delete(keys.claim);
      continue;
    }
    if (leftover.kind === "unlisted") await store.delete(keys.meta);
    for (const object of leftover.data) {
      await store.delete(object.key);
      totals.objects++;
      totals.bytes += object.size;
    }
    await store.delete(keys.claim);
    if (leftover.claim) totals.claims++;
    if (leftover.kind !== "stale-claim") totals.versions++;
  }
  return totals;
}
