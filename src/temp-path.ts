// Temporary siblings: files and folders are written beside their destination under a hidden name, then
// renamed into place, so a reader never sees half of one (rename is atomic within a folder).
import { randomBytes } from "node:crypto";
import path from "node:path";

/** Marks temporary names, so listings can skip a writer's work in progress. */
export const TEMP_MARK = ".assetkit-tmp-";

export function tempSibling(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}${TEMP_MARK}${randomBytes(6).toString("hex")}`);
}
