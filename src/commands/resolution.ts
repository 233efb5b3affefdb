// Spec → exact version: through the lockfile when it has the spec, else by asking the store.
import type { Context } from "./context.ts";
import { AssetError } from "../base/errors.ts";
import type { LockEntry, Lockfile } from "../project/lockfile.ts";
import type { VersionMeta } from "../registry/manifest.ts";
import { formatSpec, parseSpec, selectorText, type AssetSpec } from "../registry/spec.ts";
import { signatureKey } from "../registry/layout.ts";
import { checkSignature, TrustError, type TrustPolicy } from "../trust/policy.ts";

export interface Resolution {
  /** The spec in canonical form: the lockfile key and the `spec` of every JSON output. */
  spec: string;
  parsed: AssetSpec;
  name: string;
  version: string;
  digest: string | null;
  /** Present when the store was asked. */
  meta?: VersionMeta;
  locked: boolean;
}

export function canonicalSpec(parsed: AssetSpec): string {
  return formatSpec({ name: parsed.name, version: selectorText(parsed.selector), subPath: parsed.subPath });
}

/** Parses every spec first, so one bad spec fails the command before any store request. */
export function parseSpecs(specs: string[]): { spec: string; parsed: AssetSpec }[] {
  return specs.map((text) => {
    const parsed = parseSpec(text);
    return { spec: canonicalSpec(parsed), parsed };
  });
}

/** The lockfile, when there is one; a lockfile made for another store is reported and still used. */
export async function loadLock(ctx: Context): Promise<Lockfile | undefined> {
  const lock = await ctx.readLock();
  if (lock && lock.store !== ctx.registry.url) {
    ctx.reporter.warn(`${ctx.lockfilePath} was made for the store ${lock.store}, not ${ctx.registry.url}; digests are checked against ${ctx.registry.url}`);
  }
  return lock;
}

/** The spec's lockfile entry; with `frozen`, a spec the lockfile lacks is an error. */
export function lockEntry(lock: Lockfile | undefined, spec: string, frozen: boolean, lockfilePath: string): LockEntry | undefined {
  const entry = lock?.assets[spec];
  if (frozen && !entry) {
    throw new AssetError(`${spec} is not in ${lockfilePath} (--frozen): run 'assetkit lock ${spec}' and commit the lockfile`);
  }
  return entry;
}

/**
 * Asks the store for the version (the locked one, `entry`, or the one the spec picks) and checks the locked digest.
 * Without `withMeta` the digest comes from the asset's index when it records one: no request per spec.
 */
export async function resolveInStore(
  ctx: Context,
  spec: string,
  parsed: AssetSpec,
  entry: LockEntry | undefined,
  { withMeta = true }: { withMeta?: boolean } = {},
): Promise<Resolution> {
  if (entry) {
    const meta = withMeta ? await ctx.registry.meta(entry.name, entry.version) : undefined;
    const digest = meta ? (meta.digest ?? null) : await ctx.registry.digestOf(entry.name, entry.version);
    if (entry.digest !== null && digest !== entry.digest) {
      throw new AssetError(
        `${spec}: ${entry.name}:${entry.version} in ${ctx.registry.url} has digest ${digest ?? "(none)"}, but ${ctx.lockfilePath} locked ${entry.digest}`,
      );
    }
    return { spec, parsed, name: entry.name, version: entry.version, digest: entry.digest, ...(meta ? { meta } : {}), locked: true };
  }
  if (!withMeta) return { spec, parsed, ...(await ctx.registry.resolveDigest(parsed)), locked: false };
  const { name, version, meta } = await ctx.registry.resolve(parsed);
  return { spec, parsed, name, version, digest: meta.digest ?? null, meta, locked: false };
}

/** The specs to work on: those given, else the config's `assets:`, else every spec in the lockfile. */
export function specsOrDefaults(ctx: Context, given: string[], lock: Lockfile | undefined): string[] {
  if (given.length > 0) return given;
  if (ctx.config.assets.length > 0) return ctx.config.assets;
  return Object.keys(lock?.assets ?? {});
}

/**
 * Under the project's trust policy, checks a resolved version's signature (one GET of its `.sig`) before any byte
 * of it is used (callers check every spec before downloading any); true when it was checked, false without a policy.
 * A failure's message ends with `outcome`: what the caller then did not do.
 */
export async function checkTrusted(ctx: Context, name: string, version: string, meta: VersionMeta, outcome = "nothing installed"): Promise<boolean> {
  const policy = ctx.config.trust;
  if (!policy) return false;
  try {
    await checkStoredSignature(ctx, policy, name, version, meta);
  } catch (err) {
    if (err instanceof TrustError) throw new TrustError(`${err.message}; ${outcome}`, err.failure);
    throw err;
  }
  return true;
}

/** Checks the signature of a version in the context's store under `policy` (one GET of its `.sig`). */
export async function checkStoredSignature(ctx: Context, policy: TrustPolicy, name: string, version: string, meta: VersionMeta): Promise<void> {
  const where = `${signatureKey(name, version)} in ${ctx.registry.url}`;
  checkSignature(policy, { name, version, ...meta }, await ctx.registry.signature(name, version), where);
}
