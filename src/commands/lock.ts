import { relative } from "node:path";
import pMap from "p-map";
import type { Context } from "./context.ts";
import { UsageError } from "../base/errors.ts";
import { writeLockfile, type LockEntry } from "../project/lockfile.ts";
import { checkTrusted, loadLock, parseSpecs, resolveInStore } from "./resolution.ts";
import type { ResolvedAsset } from "../registry/registry.ts";
import { parseSpec, type AssetSpec } from "../registry/spec.ts";

const SPEC_CONCURRENCY = 4;

/**
 * Resolves specs into the lockfile. Specs already locked keep their version unless `update`. With specs given,
 * they are added to the lockfile; without, the config's `assets:` become the lockfile's whole content. Under a
 * trust policy every version it locks (kept ones too) has its signature checked first (one GET of its meta and
 * one of its `.sig`), and the lockfile (version 2) pins the policy and each version's signer; one failure writes nothing.
 */
export async function lockCommand(ctx: Context, specs: string[], options: { update?: boolean } = {}): Promise<{ lockfile: string; resolved: ResolvedAsset[] }> {
  const fromConfig = specs.length === 0;
  const wanted = parseSpecs(fromConfig ? ctx.config.assets : specs);
  if (wanted.length === 0) throw new UsageError("nothing to lock: give specs, or list them under assets: in assetkit.yml");
  const policy = ctx.config.trust;
  const lock = await loadLock(ctx);
  const assets: Record<string, LockEntry> = fromConfig || !lock ? {} : { ...lock.assets };
  const outcome = `nothing written to ${relative(process.cwd(), ctx.lockfilePath) || ctx.lockfilePath}`;
  /** The entry of a spec: kept or resolved, and under a policy checked and given its signer. */
  const entryOf = async (spec: string, parsed: AssetSpec, kept: LockEntry | undefined): Promise<LockEntry> => {
    if (!policy) return kept ?? (await resolveInStore(ctx, spec, parsed, undefined, { withMeta: false }));
    const r = await resolveInStore(ctx, spec, parsed, kept);
    const signer = (await checkTrusted(ctx, r.name, r.version, r.meta!, outcome))!.signer?.id;
    if (kept?.signer !== undefined && signer !== kept.signer)
      ctx.reporter.warn(`${spec}: ${r.name}:${r.version} is now signed by ${signer ?? "nobody"}, not ${kept.signer}`);
    return { name: r.name, version: r.version, digest: r.digest, ...(signer ? { signer } : {}) };
  };
  const resolved = await pMap(
    wanted,
    async ({ spec, parsed }) => {
      assets[spec] = await entryOf(spec, parsed, options.update ? undefined : lock?.assets[spec]);
      return { spec, name: assets[spec].name, version: assets[spec].version, digest: assets[spec].digest };
    },
    { concurrency: SPEC_CONCURRENCY },
  );
  // The other specs kept from the lockfile are checked too: the pin written says every entry passed this policy.
  const others = policy ? Object.keys(assets).filter((spec) => !resolved.some((r) => r.spec === spec)) : [];
  await pMap(others, async (spec) => (assets[spec] = await entryOf(spec, parseSpec(spec), assets[spec])), { concurrency: SPEC_CONCURRENCY });
  await writeLockfile(ctx.lockfilePath, { store: ctx.registry.url, ...(policy ? { trust: policy.pin } : {}), assets });
  ctx.reporter.info(`locked ${resolved.length} spec(s) in ${relative(process.cwd(), ctx.lockfilePath) || ctx.lockfilePath}`);
  return { lockfile: ctx.lockfilePath, resolved };
}
