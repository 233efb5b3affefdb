// Spec → exact version: through the lockfile when it has the spec, else by asking the store.
import type { Context } from "./context.ts";
import { AssetError, UsageError } from "../base/errors.ts";
import type { LockEntry, Lockfile } from "../project/lockfile.ts";
import type { VersionMeta } from "../registry/manifest.ts";
import type { TrustRecord } from "../local/assets-dir.ts";
import { formatSpec, parseSpec, selectorText, type AssetSpec } from "../registry/spec.ts";
import { checkSignature, ruleFor, TrustError, type Signer, type TrustPolicy, type TrustRule } from "../trust/policy.ts";
import { checkAttestations } from "../trust/attestation.ts";

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
 * Why the lockfile's trust pin (docs/trust.md, section 7) is not the policy in force, or undefined when it is (or
 * there is no lockfile). A lockfile written before a policy pins none; one written under a policy that is gone pins one.
 */
export function policyChange(ctx: Context, lock: Lockfile | undefined): string | undefined {
  const pinned = lock?.trust;
  const current = ctx.config.trust?.pin;
  if (!lock || pinned === current) return undefined;
  const was = pinned ? `it pins ${pinned}` : "it pins no policy";
  const now = current ? `the policy in force is ${current}` : "no policy is in force";
  return `the trust policy changed since ${ctx.lockfilePath} was written (${was}, ${now}): run assetkit lock`;
}

/** What a trust check found: who signed the version (undefined when its rule allows it unsigned). */
export interface Trusted {
  /** The pin of the policy it passed under. */
  policy: string;
  signer: Signer | undefined;
}

/**
 * Under the project's trust policy, checks a resolved version's signature (one GET of its `.sig`) before any byte
 * of it is used (callers check every spec before downloading any); undefined without a policy. When the version
 * is locked (`entry`), its signer must be the one the lockfile pins. A failure's message ends with `outcome`: what
 * the caller then did not do.
 */
export async function checkTrusted(
  ctx: Context,
  name: string,
  version: string,
  meta: VersionMeta,
  outcome = "nothing installed",
  entry?: LockEntry,
): Promise<Trusted | undefined> {
  const policy = ctx.config.trust;
  if (!policy) return undefined;
  try {
    const signer = await checkStoredSignature(ctx, policy, name, version, meta);
    checkPinnedSigner(signer, entry, ctx.lockfilePath);
    return { policy: policy.pin, signer };
  } catch (err) {
    if (err instanceof TrustError) throw new TrustError(`${err.message}; ${outcome}`, err.failure);
    throw err;
  }
}

/** What a local copy's marker records of a passed check: the policy's pin and the signer. */
export function trustRecord(trusted: Trusted | undefined): TrustRecord | undefined {
  return trusted && { trust: trusted.policy, ...(trusted.signer ? { signer: trusted.signer.id } : {}) };
}

/**
 * Checks the signature of a version in the context's store under `policy` (one GET of its `.sig`), and its GitHub
 * attestation when the rule requires one; returns its signer.
 */
export async function checkStoredSignature(ctx: Context, policy: TrustPolicy, name: string, version: string, meta: VersionMeta): Promise<Signer | undefined> {
  const where = ctx.registry.signatureWhere(name, version);
  const signer = await checkSignature(policy, { name, version, ...meta }, await ctx.registry.signature(name, version), where, ctx.trustedRoots);
  const rule = ruleFor(policy, name);
  if (rule.requireAttestation && meta.digest) await checkGitHubAttestation(ctx, policy, rule, name, version, meta.digest);
  return signer;
}

/** A locked version must still be signed by the signer its entry pins: another one (even an allowed one) means its `.sig` was replaced. */
export function checkPinnedSigner(signer: Signer | undefined, entry: LockEntry | undefined, lockfilePath: string): void {
  if (entry?.signer === undefined || signer === undefined || signer.id === entry.signer) return;
  throw new TrustError(
    `${entry.name}:${entry.version}: signed by ${signer.id} (${signer.name}), but ${lockfilePath} pins ${entry.signer}: its signature was replaced after it was locked (if on purpose, run assetkit lock and review the change)`,
    "signer-changed",
  );
}

/** Lists the attestations of the version's digest in the repositories of the rule's keyless signers; one must pass. */
async function checkGitHubAttestation(ctx: Context, policy: TrustPolicy, rule: TrustRule, name: string, version: string, digest: string): Promise<void> {
  const label = `${name}:${version}`;
  const requires = `trust rule ${JSON.stringify(rule.match)} requires a GitHub attestation`;
  if (ctx.offline) throw new UsageError(`${label}: ${requires}, which cannot be checked offline (GitHub lists them)`);
  if (!ctx.githubToken) throw new UsageError(`${label}: ${requires}: give a GitHub token to list them (GITHUB_TOKEN; the Action's github-token)`);
  const repositories = [...new Set(rule.identities.flatMap((i) => (i.repository ? [i.repository] : [])))];
  const bundles: unknown[] = [];
  // Loaded here: the GitHub client (Octokit, its throttling and retries) would cost every CLI start-up otherwise.
  const { listAttestations } = await import("../github/attestations.ts");
  for (const repository of repositories) {
    try {
      bundles.push(...(await listAttestations(ctx.githubToken, repository, digest, (m) => ctx.reporter.warn(m))));
    } catch (err) {
      const e = err as { status?: number; message?: string };
      throw new AssetError(
        `${label}: cannot list the GitHub attestations of ${digest} in ${repository}: ${e.status ? `HTTP ${e.status}: ` : ""}${(e.message ?? String(err)).split("\n")[0]}`,
      );
    }
  }
  try {
    await checkAttestations(bundles, { name, version, digest }, rule.identities, await ctx.trustedRoots(policy), repositories.join(", "));
  } catch (err) {
    if (err instanceof AssetError) throw new TrustError(err.message, "no-attestation");
    throw err;
  }
}
