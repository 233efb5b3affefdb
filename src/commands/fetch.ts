import pMap from "p-map";
import type { Context } from "./context.ts";
import { restoreVerified } from "../local/cross-run-cache.ts";
import { AssetError, UsageError } from "../base/errors.ts";
import { fetchInPlace, inPlaceRoot } from "./fetch-in-place.ts";
import { checkTrusted, lockEntry, loadLock, parseSpecs, policyChange, resolveInStore, specsOrDefaults, trustRecord, type Trusted } from "./resolution.ts";
import { serves, type FetchedAsset, type TrustRecord } from "../local/assets-dir.ts";
import type { LockEntry } from "../project/lockfile.ts";
import type { AssetSpec } from "../registry/spec.ts";
import type { VersionMeta } from "../registry/manifest.ts";

const SPEC_CONCURRENCY = 4;

/**
 * Downloads what the specs name into the assets dir, verified. A spec pinned to one version (by the lockfile or
 * by naming it whole) whose complete local copy exists costs no store request at all; nor does a locked spec that
 * the cross-run cache (ctx.crossRunCache) holds. Whole versions downloaded are saved to that cache. With `inPlace`
 * (a local or mounted store), versions are checked where they lie and nothing is copied. Under a trust policy
 * every version's signature is checked before any version is downloaded: one that fails installs nothing.
 */
export async function fetchCommand(
  ctx: Context,
  specs: string[],
  options: { frozen?: boolean; inPlace?: boolean } = {},
): Promise<{ resolved: FetchedAsset[] }> {
  const frozen = options.frozen ?? false;
  const inPlace = options.inPlace ? inPlaceRoot(ctx) : undefined;
  const lock = await loadLock(ctx);
  // The pin is what a reviewed lockfile claims: --frozen holds the run to it; otherwise versions are checked under the policy in force.
  const changed = policyChange(ctx, lock);
  if (changed && frozen) throw new AssetError(`${changed} (--frozen)`);
  if (changed) ctx.reporter.warn(`${changed}; checking signatures under the policy in force`);
  const wanted = parseSpecs(specsOrDefaults(ctx, specs, lock));
  if (wanted.length === 0) throw new UsageError("nothing to fetch: give specs, or list them under assets: in assetkit.yml");

  const planned = await pMap(
    wanted,
    ({ spec, parsed }) => {
      const entry = lockEntry(lock, spec, frozen, ctx.lockfilePath);
      return inPlace ? fetchInPlace(ctx, inPlace, spec, parsed, entry) : obtain(ctx, spec, parsed, entry);
    },
    { concurrency: SPEC_CONCURRENCY },
  );
  const resolved = await pMap(planned, (p) => (typeof p === "function" ? p() : p), { concurrency: SPEC_CONCURRENCY });
  // When each version was last used, for prune-local; best effort (a read-only assets dir still serves its copies).
  await Promise.all(resolved.map((a) => ctx.assetsDir.recordUse(a.name, a.version).catch(() => undefined)));
  return { resolved };
}

/** A version as the ladder knows it: exact, with the digest its copy must have (null: any complete copy serves). */
interface Known {
  name: string;
  version: string;
  digest: string | null;
}

/**
 * The fetch ladder, one rung after another, each decided once: a complete local copy that serves the digest (the
 * assets dir's one freshness rule), else the cross-run cache checked against the digest, else the store. The first
 * two rungs are tried before any store request when the version is known without the store (locked, or named
 * whole), and again once the store resolved a version that was not known. Under a trust policy, a local copy
 * serves before the store is asked only if it was verified under the same policy (its marker's pin) and, when
 * locked, by the signer the lockfile pins; the
 * cross-run cache (which holds no signature) is not used, and a version from the store is returned as its
 * download, to run once every spec passed its signature check.
 */
async function obtain(ctx: Context, spec: string, parsed: AssetSpec, entry: LockEntry | undefined): Promise<FetchedAsset | (() => Promise<FetchedAsset>)> {
  const policy = ctx.config.trust;
  await ctx.assetsDir.sweep(parsed.name);
  // Only the scheme's versions exist locally, so a numeric or date spec naming a local copy is a whole version.
  const named = parsed.selector.kind === "numeric" || parsed.selector.kind === "date" ? parsed.selector.text : undefined;
  const pinned: Known | undefined = entry ?? (named === undefined ? undefined : { name: parsed.name, version: named, digest: null });
  // Set once the version's signature passed: a copy with the meta's digest then holds signed bytes.
  let trusted: Trusted | undefined = undefined;
  const fromLocalOrCache = async (known: Known, size?: { size?: number }): Promise<FetchedAsset | undefined> => {
    const copy = await ctx.assetsDir.localCopy(known.name, known.version, parsed.subPath);
    // Under a policy a copy serves when verified under it (by the signer the lockfile pins, if it pins one), or
    // when it holds the digest of the meta just verified.
    const usable =
      !policy ||
      (trusted !== undefined && copy?.digest !== undefined && copy.digest === known.digest) ||
      (copy?.trust === policy.pin && (entry?.signer === undefined || copy.signer === entry.signer));
    if (serves(copy, known.digest) && usable) {
      const signer = trusted ? trusted.signer?.id : copy.signer;
      if (policy && (copy.trust !== policy.pin || copy.signer !== signer)) {
        await ctx.assetsDir.recordTrust(known.name, known.version, parsed.subPath, { trust: policy.pin, ...(signer ? { signer } : {}) });
      }
      const digest = copy.digest ?? known.digest;
      return {
        spec,
        ...known,
        digest,
        ...size,
        path: ctx.assetsDir.pathOf(known.name, known.version, parsed.subPath),
        local: true,
        cached: false,
        verified: copy.verified,
        signer: policy ? (signer ?? null) : null,
      };
    }
    if (!ctx.crossRunCache || !known.digest || policy) return undefined;
    const digest = known.digest;
    const restored = await restoreVerified(
      ctx.crossRunCache,
      ctx.assetsDir,
      (m) => ctx.reporter.warn(m),
      { store: ctx.registry.url, ...known, digest },
      parsed.subPath,
    );
    if (!restored) return undefined;
    ctx.reporter.info(`restored ${known.name}:${known.version} from the cache`);
    const path = ctx.assetsDir.pathOf(known.name, known.version, parsed.subPath);
    return { spec, ...known, digest, size: restored.size, path, local: false, cached: true, verified: true, signer: null };
  };
  const early = pinned && (await fromLocalOrCache(pinned));
  if (early) return early;

  const r = await resolveInStore(ctx, spec, parsed, entry);
  const meta = r.meta!;
  const size = meta.size !== undefined ? { size: meta.size } : {};
  trusted = await checkTrusted(ctx, r.name, r.version, meta, undefined, entry);
  // The store named a version (or a digest) the first rungs could not look for, or a copy they could not trust is trusted now.
  if (trusted || !pinned || pinned.version !== r.version || (pinned.digest === null && r.digest !== null)) {
    const late = await fromLocalOrCache({ name: r.name, version: r.version, digest: r.digest }, size);
    if (late) return late;
  }
  return () => download(ctx, spec, parsed, r.name, r.version, r.digest, meta, trustRecord(trusted));
}

/** Downloads a resolved (and, under a policy, verified) version into the assets dir. */
async function download(
  ctx: Context,
  spec: string,
  parsed: AssetSpec,
  name: string,
  version: string,
  digest: string | null,
  meta: VersionMeta,
  trust: TrustRecord | undefined,
): Promise<FetchedAsset> {
  const r = { name, version, digest };
  const size = meta.size !== undefined ? { size: meta.size } : {};
  const what = `${r.name}:${r.version}${parsed.subPath ? `[${parsed.subPath}]` : ""}`;
  const copy = await ctx.assetsDir.materialise(
    r.name,
    r.version,
    meta,
    (rel, range) => ctx.registry.openFile(r.name, r.version, rel, range),
    parsed.subPath,
    (p) => ctx.reporter.progress?.(p.bytes, p.totalBytes, what, { done: p.files, total: p.totalFiles }),
    trust,
  );
  if (copy.downloaded) {
    ctx.reporter.info(`fetched ${what}${copy.verified ? "" : " (unverified: its meta has no checksums)"}`);
    if (!parsed.subPath && r.digest) {
      const files = meta.files.map((f) => f.path);
      await ctx.crossRunCache?.save({ store: ctx.registry.url, name: r.name, version: r.version, digest: r.digest }, copy.path, files);
    }
  }
  return {
    spec,
    name: r.name,
    version: r.version,
    digest: r.digest,
    ...size,
    path: copy.path,
    local: !copy.downloaded,
    cached: false,
    verified: copy.verified,
    signer: trust?.signer ?? null,
  };
}
