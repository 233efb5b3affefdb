// gc and prune on OCI stores (docs/oci.md §6.3, §5.4). gc removes assetkit's own tags that ended publishes left:
// hold tags, claims under which nothing was committed, withdrawn claims with their markers; a version tag, a
// channel tag, a move record and a committed slot's claim (its receipt) are never touched. prune deletes version
// tags only, in two phases: delete, wait `settle`, re-read the channels, put back any a channel moved onto. Both
// need tag deletion: where the registry refuses it (405), both go through GitHub's Packages API where the registry
// has it (ghcr.io: a manifest with all its tags; prune restores a version a channel moved onto), else gc reports
// what stays and prune is a usage error.
// Untagged manifests and blobs are left to the registry's own garbage collection.
import { setTimeout as sleep } from "node:timers/promises";
import { AssetError, UsageError } from "../../base/errors.ts";
import type { Manifest, OciClient } from "../../store/oci/client.ts";
import type { GitHubPackages } from "../../store/oci/github-packages.ts";
import { StoreError } from "../../store/store.ts";
import type { DeletedVersions } from "../prune.ts";
import { withdrawalMarker, type TagState } from "./tags.ts";

/** One assetkit tag gc would remove (a withdrawn claim goes with its marker), with the plan's line for it. */
export interface OciLeftover {
  repo: string;
  tags: string[];
  line: string;
}

export interface OciGcPlan {
  leftovers: OciLeftover[];
  /** The tags kept because they are younger than the grace period, as `<name>: <what>`. */
  recent: string[];
}

/** What a repository's tags leave for gc, given the cutoff (ms since the epoch): older tags go, newer ones stay. */
export function planRepositoryGc(name: string, repo: string, state: TagState, cutoffMs: number): OciGcPlan {
  const plan: OciGcPlan = { leftovers: [], recent: [] };
  for (const hold of state.holds) {
    if (hold.atMs > cutoffMs) plan.recent.push(`${name}: hold tag ${hold.tag}`);
    else plan.leftovers.push({ repo, tags: [hold.tag], line: `remove hold tag ${hold.tag} of ${name} (a publish that never removed it)` });
  }
  // A slot is committed when its version tag (or the channel's move record) exists; its claims then include the receipt.
  const committed = (slot: string) => state.tags.has(slot.startsWith("m.") ? `_${slot}` : slot);
  const claimed = new Set<string>();
  for (const claim of state.claims) {
    claimed.add(claim.cid);
    const withdrawn = state.withdrawn.has(claim.cid);
    if (!withdrawn && committed(claim.version)) continue;
    if (claim.atMs > cutoffMs) {
      plan.recent.push(`${name}: claim ${claim.tag}`);
      continue;
    }
    plan.leftovers.push(
      withdrawn
        ? { repo, tags: [claim.tag, withdrawalMarker(claim.cid)], line: `remove withdrawn claim ${claim.tag} of ${name} and its marker` }
        : { repo, tags: [claim.tag], line: `remove stale claim ${claim.tag} of ${name} (nothing was committed under it)` },
    );
  }
  // A marker whose claim is gone withdraws nothing (its claim's removal was interrupted).
  for (const cid of state.withdrawn) {
    if (!claimed.has(cid))
      plan.leftovers.push({ repo, tags: [withdrawalMarker(cid)], line: `remove marker ${withdrawalMarker(cid)} of ${name} (its claim is gone)` });
  }
  return plan;
}

/**
 * Deletes the leftovers' tags in order. Stops at the first tag the registry refuses to delete (405): what was
 * removed, and the leftovers that stay (all the rest: a registry refuses every tag deletion or none).
 */
export async function removeLeftovers(client: OciClient, leftovers: OciLeftover[]): Promise<{ removed: OciLeftover[]; refused: OciLeftover[] }> {
  const removed: OciLeftover[] = [];
  for (const [i, leftover] of leftovers.entries()) {
    try {
      for (const tag of leftover.tags) await client.deleteManifest(leftover.repo, tag);
    } catch (err) {
      if (err instanceof StoreError && err.code === "unsupported") return { removed, refused: leftovers.slice(i) };
      throw err;
    }
    removed.push(leftover);
  }
  return { removed, refused: [] };
}

/**
 * gc where tag deletion is refused but GitHub's Packages API deletes a manifest with all its tags (ghcr.io): each
 * package version whose every tag is a leftover goes (a dead publish's own manifest, with its hold and claims: no
 * other writer can tag it, its config being that publish's). One with any other tag stays (a hold left on a
 * committed version's manifest), and so does the early claims' shared stand-in (`standIn`, the same manifest for
 * every publisher: a live one may tag it between the listing and the deletion, which would delete its claim).
 */
export async function removeLeftoversThroughPackages(
  api: GitHubPackages,
  packageOf: (repo: string) => string,
  leftovers: OciLeftover[],
  standIn: string,
): Promise<{ removed: OciLeftover[]; refused: OciLeftover[] }> {
  const gone = new Set<string>(); // "<repo> <tag>"
  for (const repo of new Set(leftovers.map((l) => l.repo))) {
    const leftoverTags = new Set(leftovers.filter((l) => l.repo === repo).flatMap((l) => l.tags));
    const pkg = packageOf(repo);
    const doomed: { id: number; tags: string[] }[] = [];
    for await (const v of api.versions(pkg)) {
      if (v.digest !== standIn && v.tags.length > 0 && v.tags.every((t) => leftoverTags.has(t))) doomed.push(v);
    }
    for (const { id, tags } of doomed) {
      await api.deleteVersion(pkg, id);
      for (const tag of tags) gone.add(`${repo} ${tag}`);
    }
  }
  const removed = leftovers.filter((l) => l.tags.every((t) => gone.has(`${l.repo} ${t}`)));
  return { removed, refused: leftovers.filter((l) => !removed.includes(l)) };
}

/** Where prune deletes: the store, the asset's repository, and, where tags cannot be deleted, its package on GitHub. */
export interface VersionsAt {
  url: string;
  repo: string;
  name: string;
  settleMs: number;
  packages?: { api: GitHubPackages; name: string };
}

/**
 * Deletes version tags, then, `settleMs` later, puts back (same manifest bytes, same digest) those `protectedNow`
 * names: a channel moved onto them meanwhile. The manifests and their receipts stay. A registry refusing tag
 * deletion: through its package versions where it has GitHub's API (deletePackageVersions), else a usage error
 * before anything changes.
 */
export async function deleteVersionTags(
  client: OciClient,
  where: VersionsAt,
  versions: string[],
  protectedNow: () => Promise<Set<string>>,
): Promise<DeletedVersions> {
  const withdrawn = new Map<string, Manifest>();
  for (const version of versions) {
    const manifest = await client.getManifest(where.repo, version);
    if (!manifest) continue;
    try {
      await client.deleteManifest(where.repo, version);
    } catch (err) {
      if (withdrawn.size === 0 && err instanceof StoreError && err.code === "unsupported") {
        if (where.packages) return deletePackageVersions(client, { ...where, packages: where.packages }, versions, protectedNow);
        throw new UsageError(
          `prune cannot delete versions on ${where.url}: the registry refuses tag deletion (405) and has no packages API to delete through (ghcr.io's is GitHub's; ?packages-api=); nothing was deleted`,
        );
      }
      throw err;
    }
    withdrawn.set(version, manifest);
  }
  await sleep(where.settleMs);
  const keep = await protectedNow();
  const result: DeletedVersions = { deleted: [], reinstated: [] };
  for (const [version, manifest] of withdrawn) {
    if (keep.has(version)) {
      await client.putManifest(where.repo, version, manifest.data, manifest.mediaType);
      result.reinstated.push(version);
    } else result.deleted.push({ version, objects: 0, bytes: 0 });
  }
  return result;
}

/**
 * prune where tags cannot be deleted but GitHub's Packages API can delete (ghcr.io): each version's package version
 * (the one named by its manifest digest) goes with every tag on it, which must be only the version's own and
 * assetkit's (`_`: its receipt, holds, markers), else nothing is deleted; then, `settleMs` later, those a channel
 * moved onto meanwhile are restored (same manifest, same tags).
 */
async function deletePackageVersions(
  client: OciClient,
  where: VersionsAt & { packages: NonNullable<VersionsAt["packages"]> },
  versions: string[],
  protectedNow: () => Promise<Set<string>>,
): Promise<DeletedVersions> {
  const { api, name: pkg } = where.packages;
  const byDigest = new Map<string, { id: number; tags: string[] }>();
  for await (const v of api.versions(pkg)) byDigest.set(v.digest, v);
  const planned: { version: string; id: number }[] = [];
  for (const version of versions) {
    const manifest = await client.headManifest(where.repo, version);
    if (!manifest) continue;
    const found = byDigest.get(manifest.digest);
    if (!found) {
      throw new AssetError(
        `prune cannot delete ${where.name}:${version} on ${where.url}: GitHub lists no version ${manifest.digest} of package ${pkg}; nothing was deleted`,
      );
    }
    const others = found.tags.filter((t) => t !== version && !t.startsWith("_"));
    if (others.length > 0) {
      throw new AssetError(
        `prune cannot delete ${where.name}:${version} on ${where.url}: GitHub deletes a manifest with all its tags, and ${others.join(", ")} also name(s) it; nothing was deleted`,
      );
    }
    planned.push({ version, id: found.id });
  }
  for (const { id } of planned) await api.deleteVersion(pkg, id);
  await sleep(where.settleMs);
  const keep = await protectedNow();
  const result: DeletedVersions = { deleted: [], reinstated: [] };
  for (const { version, id } of planned) {
    if (keep.has(version)) {
      await api.restoreVersion(pkg, id);
      result.reinstated.push(version);
    } else result.deleted.push({ version, objects: 0, bytes: 0 });
  }
  return result;
}
