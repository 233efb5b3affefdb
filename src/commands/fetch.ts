import pMap from "p-map";
import type { Context } from "../context.ts";
import { UsageError } from "../errors.ts";
import { lockEntry, loadLock, parseSpecs, resolveInStore, specsOrDefaults } from "./resolution.ts";
import type { ResolvedAsset } from "./resolve.ts";

const SPEC_CONCURRENCY = 4;

export interface FetchedAsset extends ResolvedAsset {
  /** The local file or folder of the asset, or of its sub-part when the spec names one. */
  path: string;
  /** True when a complete local copy was already there: no byte was downloaded. */
  local: boolean;
  verified: boolean;
}

/**
 * Downloads what the specs name into the assets dir, verified. A spec pinned to one version (by the lockfile or
 * by naming it whole) whose complete local copy exists costs no store request at all.
 */
export async function fetchCommand(ctx: Context, specs: string[], options: { frozen?: boolean } = {}): Promise<{ resolved: FetchedAsset[] }> {
  const frozen = options.frozen ?? false;
  const lock = await loadLock(ctx);
  const wanted = parseSpecs(specsOrDefaults(ctx, specs, lock));
  if (wanted.length === 0) throw new UsageError("nothing to fetch: give specs, or list them under assets: in assetkit.yml");

  const resolved = await pMap(
    wanted,
    async ({ spec, parsed }): Promise<FetchedAsset> => {
      const entry = lockEntry(lock, spec, frozen, ctx.lockfilePath);
      // Only the scheme's versions exist locally, so a numeric spec naming a local copy is a whole version.
      const pinned = entry?.version ?? (parsed.selector.kind === "numeric" ? parsed.selector.text : undefined);
      if (pinned) {
        const copy = await ctx.assetsDir.localCopy(parsed.name, pinned, parsed.subPath);
        if (copy && (!entry || entry.digest === null || copy.digest === entry.digest)) {
          return {
            spec,
            name: parsed.name,
            version: pinned,
            digest: copy.digest ?? entry?.digest ?? null,
            path: ctx.assetsDir.pathOf(parsed.name, pinned, parsed.subPath),
            local: true,
            verified: copy.verified,
          };
        }
      }
      const r = await resolveInStore(ctx, spec, parsed, lock, frozen);
      const meta = r.meta!;
      const what = `${r.name}:${r.version}${parsed.subPath ? `[${parsed.subPath}]` : ""}`;
      const total = meta.size ?? 0;
      let done = 0;
      const copy = await ctx.assetsDir.materialise(r.name, r.version, meta, (rel) => ctx.registry.openFile(r.name, r.version, rel), parsed.subPath, (n) => {
        done += n;
        ctx.reporter.progress?.(done, total, what);
      });
      if (copy.downloaded) {
        ctx.reporter.info(`fetched ${what}${copy.verified ? "" : " (unverified: its meta has no checksums)"}`);
      }
      return {
        spec,
        name: r.name,
        version: r.version,
        digest: r.digest,
        ...(meta.size !== undefined ? { size: meta.size } : {}),
        path: copy.path,
        local: !copy.downloaded,
        verified: copy.verified,
      };
    },
    { concurrency: SPEC_CONCURRENCY },
  );
  return { resolved };
}
