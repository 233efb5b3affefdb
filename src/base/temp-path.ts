// Temporary siblings: files and folders are written beside their destination under a hidden name, then
// renamed into place, so a reader never sees half of one (rename is atomic within a folder).
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";

/** Marks temporary names, so listings can skip a writer's work in progress. */
export const TEMP_MARK = ".assetkit-tmp-";

export function tempSibling(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}${TEMP_MARK}${randomBytes(6).toString("hex")}`);
}

/** Writes a whole file through a temporary sibling and a rename: readers see the old content or the new, never half. */
export async function writeAtomically(file: string, data: string | Buffer): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const temp = tempSibling(file);
  try {
    await fs.writeFile(temp, data);
    await fs.rename(temp, file);
  } finally {
    await fs.rm(temp, { force: true });
  }
}
