// What only the key-value layout supports yet (gc, prune, import straight from a store prefix):
// commands ask for it here and get a one-line usage error on any other layout.
import { UsageError } from "../base/errors.ts";
import type { AssetRegistry } from "./asset-registry.ts";
import { Registry } from "./registry.ts";

/** The key-value registry behind `registry`; else a usage error saying that `what` does not work on its store yet. */
export function keyValueRegistry(registry: AssetRegistry, what: string): Registry {
  if (registry instanceof Registry) return registry;
  throw new UsageError(`${what} is not supported on ${registry.url} yet (it works on s3://, gs://, az://, https:// and folder stores)`);
}
