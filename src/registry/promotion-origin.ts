// What a version copied by promote --to records at its destination, whichever layout holds it there.
import { AssetError } from "../base/errors.ts";
import type { AssetRegistry, PromotedFrom } from "./asset-registry.ts";
import type { VersionIndex } from "./version-index.ts";
import type { Scheme } from "./versioning.ts";

/**
 * The scheme `name:version` copied from `source` takes in `destination` (its URL), whose index for the asset is
 * `index`, and the `promoted_from` it records there. An asset new there takes the source's scheme (a modelkit
 * MAJOR.MINOR version stays one), not the configured one; a version that is not one of the destination's scheme is refused.
 */
export async function promotionOrigin(
  index: VersionIndex,
  destination: string,
  source: AssetRegistry,
  name: string,
  version: string,
  digest: string | null,
  promotion: Pick<PromotedFrom, "at" | "by" | "run_url">,
): Promise<{ scheme: Scheme; origin: PromotedFrom }> {
  const scheme = index.versions.length > 0 ? index.scheme : (await source.versions(name)).scheme;
  if (!scheme.isVersion(version)) throw new AssetError(`${name}:${version} is not a ${scheme.name} version, the scheme of ${name} in ${destination}`);
  const origin = { store: source.url, version, digest, at: promotion.at, by: promotion.by, ...(promotion.run_url ? { run_url: promotion.run_url } : {}) };
  return { scheme, origin };
}
