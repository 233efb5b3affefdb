// assets.lock: each requested spec → the exact version and digest it resolved to, so that a PR check
// reproduces a resolution exactly. JSON with a stable key order and a final newline, for clean diffs.
import { promises as fs } from "node:fs";
import { UsageError } from "../base/errors.ts";
import { tempSibling } from "../base/temp-path.ts";

export interface LockEntry {
  name: string;
  version: string;
  /** null for versions without checksums (published by modelkit). */
  digest: string | null;
}

export interface Lockfile {
  lockfileVersion: 1;
  store: string;
  assets: Record<string, LockEntry>;
}

export async function readLockfile(file: string): Promise<Lockfile | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new UsageError(`cannot read the lockfile ${file}: ${(err as Error).message}`);
  }
  return parseLockfile(text, file);
}

/** Validates a lockfile's text; `where` names it in errors (a path, or a file at a git ref). */
export function parseLockfile(text: string, where: string): Lockfile {
  const bad = (why: string): never => {
    throw new UsageError(`${where} is not a valid assetkit lockfile: ${why}`);
  };
  let doc: Lockfile;
  try {
    doc = JSON.parse(text) as Lockfile;
  } catch {
    return bad("not JSON");
  }
  if (doc?.lockfileVersion !== 1) bad(`unsupported lockfileVersion ${JSON.stringify(doc?.lockfileVersion)}`);
  if (typeof doc.store !== "string") bad("store is missing");
  if (typeof doc.assets !== "object" || doc.assets === null) bad("assets is missing");
  for (const [spec, entry] of Object.entries(doc.assets)) {
    if (typeof entry?.name !== "string" || typeof entry.version !== "string" || !(typeof entry.digest === "string" || entry.digest === null)) {
      bad(`the entry for ${JSON.stringify(spec)} needs name, version and digest`);
    }
  }
  return doc;
}

function formatLockfile(lock: Lockfile): string {
  const assets: Record<string, LockEntry> = {};
  for (const spec of Object.keys(lock.assets).sort()) {
    const { name, version, digest } = lock.assets[spec]!;
    assets[spec] = { name, version, digest };
  }
  return JSON.stringify({ lockfileVersion: 1, store: lock.store, assets }, null, 2) + "\n";
}

/** Written to a temporary sibling and renamed, so a reader never sees half a lockfile. */
export async function writeLockfile(file: string, lock: Lockfile): Promise<void> {
  const temp = tempSibling(file);
  await fs.writeFile(temp, formatLockfile(lock));
  await fs.rename(temp, file);
}
