import type { Context } from "./context.ts";
import { UsageError } from "../base/errors.ts";
import type { ResolvedAsset } from "../registry/registry.ts";
import { lockEntry, loadLock, parseSpecs, resolveInStore, specsOrDefaults } from "./resolution.ts";

/** Spec → exact version, without downloading: from the lockfile when it has the spec, else from the store. */
export async function resolveCommand(ctx: Context, specs: string[], options: { frozen?: boolean } = {}): Promise<{ resolved: ResolvedAsset[] }> {
  const lock = await loadLock(ctx);
  const wanted = parseSpecs(specsOrDefaults(ctx, specs, lock));
  if (wanted.length === 0) throw new UsageError("nothing to resolve: give specs, or list them under assets: in assetkit.yml");
  const resolved: ResolvedAsset[] = [];
  for (const { spec, parsed } of wanted) {
    const entry = lockEntry(lock, spec, options.frozen ?? false, ctx.lockfilePath);
    if (entry && !options.frozen) {
      resolved.push({ spec, name: entry.name, version: entry.version, digest: entry.digest });
      continue;
    }
    const r = await resolveInStore(ctx, spec, parsed, entry, { withMeta: false });
    resolved.push({ spec, name: r.name, version: r.version, digest: r.digest, ...(r.meta?.size !== undefined ? { size: r.meta.size } : {}) });
  }
  return { resolved };
}
