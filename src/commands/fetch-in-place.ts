// fetch --in-place: the versions a local or mounted store holds, checked where they lie and returned by their
// own paths. Nothing is copied into the assets dir (only a small marker of what was checked).
import type { Context } from "./context.ts";
import { UsageError } from "../base/errors.ts";
import { verifyInPlace } from "../local/in-place.ts";
import type { LockEntry } from "../project/lockfile.ts";
import type { AssetSpec } from "../registry/spec.ts";
import type { FetchedAsset } from "../local/assets-dir.ts";
import { checkTrusted, resolveInStore } from "./resolution.ts";

/** The store's folder, or a usage error naming why a remote store cannot be served in place. */
export function inPlaceRoot(ctx: Context): string {
  if (ctx.storeRoot === undefined) {
    throw new UsageError(
      `--in-place serves a local or mounted store (a folder or file://) where its files lie; ${ctx.registry.url} is remote: drop --in-place to download`,
    );
  }
  return ctx.storeRoot;
}

/** One spec of fetch --in-place, in the store folder `root`. */
export async function fetchInPlace(ctx: Context, root: string, spec: string, parsed: AssetSpec, entry: LockEntry | undefined): Promise<FetchedAsset> {
  const r = await resolveInStore(ctx, spec, parsed, entry);
  const trusted = await checkTrusted(ctx, r.name, r.version, r.meta!, undefined, entry);
  const copy = await verifyInPlace(root, ctx.assetsDir.root, r.name, r.version, r.meta!, parsed.subPath);
  if (copy.hashed > 0) ctx.reporter.info(`verified ${r.name}:${r.version} in place (${copy.hashed} file(s) hashed)`);
  return {
    spec,
    name: r.name,
    version: r.version,
    digest: r.digest,
    path: copy.path,
    local: true,
    cached: false,
    verified: copy.verified,
    signer: trusted?.signer?.id ?? null,
  };
}
