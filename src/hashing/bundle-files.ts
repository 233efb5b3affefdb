// Files that ship next to the bundle (dist/): where they are, whichever file of dist/ this code was bundled into.
import path from "node:path";
import { fileURLToPath } from "node:url";

/** True when this code runs from the bundle in dist/, false when Node runs the TypeScript sources in src/. */
export const BUNDLED = !import.meta.url.endsWith(".ts");

/** dist/ when bundled: this module lands in an entry file (dist/) or in a shared chunk (dist/chunks/, see scripts/build.ts). */
export function distDir(): string {
  const dir = path.dirname(fileURLToPath(import.meta.url));
  return path.basename(dir) === "chunks" ? path.dirname(dir) : dir;
}
