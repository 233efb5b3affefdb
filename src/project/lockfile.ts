// assets.lock: each requested spec → the exact version and digest it resolved to, so that a PR check
// reproduces a resolution exactly. JSON with a stable key order and a final newline, for clean diffs.
// Version 2 (written only under a trust policy) also pins the policy and each version's signer (docs/trust.md,
// section 7): an older assetkit refuses it rather than re-locking and dropping the pins. Both versions are read.
import { promises as fs } from "node:fs";
import { UsageError } from "../base/errors.ts";
import { tempSibling } from "../base/temp-path.ts";

export interface LockEntry {
  name: string;
  version: string;
  /** null for versions without checksums (published by modelkit). */
  digest: string | null;
  /** Version 2: who signed the version (`key:<hint>`), absent when its trust rule allows it unsigned. */
  signer?: string;
}

export interface Lockfile {
  store: string;
  /** The pin of the trust policy the versions were checked under (`sha256:…`): present exactly in a version 2 lockfile. */
  trust?: string;
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
  let doc: Lockfile & { lockfileVersion?: unknown };
  try {
    doc = JSON.parse(text) as Lockfile;
  } catch {
    return bad("not JSON");
  }
  const version = doc?.lockfileVersion;
  if (version !== 1 && version !== 2) bad(`unsupported lockfileVersion ${JSON.stringify(version)} (this assetkit reads 1 and 2: upgrade it)`);
  if (typeof doc.store !== "string") bad("store is missing");
  if (version === 2 && (typeof doc.trust !== "string" || !doc.trust.startsWith("sha256:")))
    bad("a version 2 lockfile needs trust, the pin of its trust policy");
  if (version === 1 && doc.trust !== undefined) bad("trust is pinned only in a version 2 lockfile");
  if (typeof doc.assets !== "object" || doc.assets === null) bad("assets is missing");
  for (const [spec, entry] of Object.entries(doc.assets)) {
    if (typeof entry?.name !== "string" || typeof entry.version !== "string" || !(typeof entry.digest === "string" || entry.digest === null)) {
      bad(`the entry for ${JSON.stringify(spec)} needs name, version and digest`);
    }
    if (entry.signer !== undefined && (version === 1 || typeof entry.signer !== "string"))
      bad(`the entry for ${JSON.stringify(spec)} has a signer that is not a version 2 string`);
  }
  const { lockfileVersion: _version, ...lock } = doc;
  return lock;
}

function formatLockfile(lock: Lockfile): string {
  const assets: Record<string, LockEntry> = {};
  for (const spec of Object.keys(lock.assets).sort()) {
    const { name, version, digest, signer } = lock.assets[spec]!;
    assets[spec] = { name, version, digest, ...(lock.trust !== undefined && signer !== undefined ? { signer } : {}) };
  }
  const head = lock.trust === undefined ? { lockfileVersion: 1, store: lock.store } : { lockfileVersion: 2, store: lock.store, trust: lock.trust };
  return JSON.stringify({ ...head, assets }, null, 2) + "\n";
}

/** Written to a temporary sibling and renamed, so a reader never sees half a lockfile. */
export async function writeLockfile(file: string, lock: Lockfile): Promise<void> {
  const temp = tempSibling(file);
  await fs.writeFile(temp, formatLockfile(lock));
  await fs.rename(temp, file);
}
