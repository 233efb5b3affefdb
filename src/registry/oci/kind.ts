// Telling an OCI registry's layout from the others without loading its code: a command on any other store
// (resolve, show, gc, prune) would otherwise load the layout and its client at every start-up.
import type { AssetRegistry } from "../asset-registry.ts";
import type { OciLayout } from "./oci-layout.ts";

export function isOciLayout(registry: AssetRegistry): registry is OciLayout {
  return registry.kind === "oci";
}
