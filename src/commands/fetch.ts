import pMap from "p-map";
import type { Context } from "./context.ts";
import { restoreVerified } from "../local/cross-run-cache.ts";
import { UsageError } from "../base/errors.ts";
import { fetchInPlace, inPlaceRoot } from "./fetch-in-place.ts";
import { lockEntry, loadLock, parseSpecs, resolveInStore, specsOrDefaults } from "./resolution.ts";
import type { FetchedAsset } from "../local/assets-dir.ts";

const SPEC_CONCURRENCY = 4;

/**
 * Downloads what the specs name into the assets dir, verified. A spec pinned to one version (by the lockfile or
 * by naming it whole) whose complete local copy exists costs no store request at all; nor does a locked spec that
 * the cross-run cache (ctx.crossRunCache) holds. Whole versions downloaded are saved to that cache. With `inPlace`
 * (a local or mounted store), versions are checked where they lie and nothing is copied.
 */
export async function fetchCommand(
  ctx: Context,
  specs: string[],
  options: { frozen?: boolean; inPlace?: boolean } = {},
): Promise<{ resolved: FetchedAsset[] }> {
  const frozen = options.frozen ?? false;
  const inPlace = options.inPlace ? inPlaceRoot(ctx) : undefined;
  const lock = await loadLock(ctx);
  const wanted = parseSpecs(specsOrDefaults(ctx, specs, lock));
  if (wanted.length === 0) throw new UsageError("nothing to fetch: give specs, or list them under assets: in assetkit.yml");

  const resolved = await pMap(
    wanted,
    async ({ spec, parsed }): Promise<FetchedAsset> => {
      if (inPlace) return fetchInPlace(ctx, inPlace, spec, parsed, lock, frozen);
      const entry = lockEntry(lock, spec, frozen, ctx.lockfilePath);
      await ctx.assetsDir.sweep(parsed.name);
      // Only the scheme's versions exist locally, so a numeric or date spec naming a local copy is a whole version.
      const pinned = entry?.version ?? (parsed.selector.kind === "numeric" || parsed.selector.kind === "date" ? parsed.selector.text : undefined);
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
            cached: false,
            verified: copy.verified,
          };
        }
      }
      const fromCache = async (name: string, version: string, digest: string): Promise<FetchedAsset | undefined> => {
        if (!ctx.crossRunCache) return undefined;
        const restored = await restoreVerified(
          ctx.crossRunCache,
          ctx.assetsDir,
          (m) => ctx.reporter.warn(m),
          { store: ctx.store.url, name, version, digest },
          parsed.subPath,
        );
        if (!restored) return undefined;
        ctx.reporter.info(`restored ${name}:${version} from the cache`);
        return {
          spec,
          name,
          version,
          digest,
          size: restored.size,
          path: ctx.assetsDir.pathOf(name, version, parsed.subPath),
          local: false,
          cached: true,
          verified: true,
        };
      };
      if (entry?.digest) {
        const cached = await fromCache(entry.name, entry.version, entry.digest);
        if (cached) return cached;
      }
      const r = await resolveInStore(ctx, spec, parsed, lock, frozen);
      const meta = r.meta!;
      if (!entry?.digest && r.digest && !(await ctx.assetsDir.localCopy(r.name, r.version, parsed.subPath))) {
        const cached = await fromCache(r.name, r.version, r.digest);
        if (cached) return cached;
      }
      const what = `${r.name}:${r.version}${parsed.subPath ? `[${parsed.subPath}]` : ""}`;
      const copy = await ctx.assetsDir.materialise(
        r.name,
        r.version,
        meta,
        (rel, range) => ctx.registry.openFile(r.name, r.version, rel, range),
        parsed.subPath,
        (p) => ctx.reporter.progress?.(p.bytes, p.totalBytes, what, { done: p.files, total: p.totalFiles }),
      );
      if (copy.downloaded) {
        ctx.reporter.info(`fetched ${what}${copy.verified ? "" : " (unverified: its meta has no checksums)"}`);
        if (!parsed.subPath && r.digest) {
          await ctx.crossRunCache?.save(
            { store: ctx.store.url, name: r.name, version: r.version, digest: r.digest },
            copy.path,
            meta.files.map((f) => f.path),
          );
        }
      }
      return {
        spec,
        name: r.name,
        version: r.version,
        digest: r.digest,
        ...(meta.size !== undefined ? { size: meta.size } : {}),
        path: copy.path,
        local: !copy.downloaded,
        cached: false,
        verified: copy.verified,
      };
    },
    { concurrency: SPEC_CONCURRENCY },
  );
  // When each version was last used, for prune-local; best effort (a read-only assets dir still serves its copies).
  await Promise.all(resolved.map((a) => ctx.assetsDir.recordUse(a.name, a.version).catch(() => undefined)));
  return { resolved };
}
