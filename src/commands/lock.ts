import { relative } from "node:path";
import type { Context } from "./context.ts";
import { UsageError } from "../base/errors.ts";
import { writeLockfile, type LockEntry } from "../project/lockfile.ts";
import { loadLock, parseSpecs, resolveInStore } from "./resolution.ts";
import type { ResolvedAsset } from "../registry/registry.ts";

/**
 * Resolves specs into the lockfile. Specs already locked keep their version unless `update`. With specs given,
 * they are added to the lockfile; without, the config's `assets:` become the lockfile's whole content.
 */
export async function lockCommand(ctx: Context, specs: string[], options: { update?: boolean } = {}): Promise<{ lockfile: string; resolved: ResolvedAsset[] }> {
  const fromConfig = specs.length === 0;
  const wanted = parseSpecs(fromConfig ? ctx.config.assets : specs);
  if (wanted.length === 0) throw new UsageError("nothing to lock: give specs, or list them under assets: in assetkit.yml");
  const lock = await loadLock(ctx);
  const assets: Record<string, LockEntry> = fromConfig || !lock ? {} : { ...lock.assets };
  const resolved: ResolvedAsset[] = [];
  for (const { spec, parsed } of wanted) {
    const kept = options.update ? undefined : lock?.assets[spec];
    const entry: LockEntry = kept ?? (await resolveInStore(ctx, spec, parsed, undefined, { withMeta: false }));
    assets[spec] = { name: entry.name, version: entry.version, digest: entry.digest };
    resolved.push({ spec, ...assets[spec]! });
  }
  await writeLockfile(ctx.lockfilePath, { lockfileVersion: 1, store: ctx.registry.url, assets });
  ctx.reporter.info(`locked ${resolved.length} spec(s) in ${relative(process.cwd(), ctx.lockfilePath) || ctx.lockfilePath}`);
  return { lockfile: ctx.lockfilePath, resolved };
}
