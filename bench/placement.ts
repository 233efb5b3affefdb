// Where the benchmark puts its files, so that the file system's state left by earlier runs does not decide a run's
// time. On a journal-less ext4 (this project's VMs) the inode allocator skips inodes freed in the last 60 s (360 s
// while their table block is dirty), testing each one on every create, in the group it allocates from: after a
// case deleted thousands of files, creating 2,000 empty files in a new folder of the same parent took 1.3 s instead
// of ~40 ms, so a tool's run paid for the deletions of the runs before it (small-file ratios swung ±15% between
// full runs). Two measures:
// - MinIO's data on a tmpfs (/dev/shm) by default, when it has room: MinIO creates and deletes files for every
//   object it writes, and the store is remote in real use.
// - The datasets and downloads stay on disk, as a user's files are, in a folder whose subfolders ext4 spreads over
//   its block groups as it does top-level ones (the T attribute, chattr(1)): each download's folder starts in
//   another group than the files deleted before it.
import { execFile } from "node:child_process";
import { statfs } from "node:fs/promises";
import { promisify } from "node:util";
import os from "node:os";
import { assertFreeSpace } from "./datasets.ts";

const GiB = 1024 ** 3;
const TMPFS = "/dev/shm";
const TMPFS_MAGIC = 0x01021994;
/** RAM left to the tools and MinIO besides what the store's data takes in it. */
const HEADROOM = 4 * GiB;

export interface StoreDir {
  path: string;
  /** For the report: "tmpfs" or "disk". */
  kind: "tmpfs" | "disk";
  /** Why this one, for the log. */
  why: string;
}

/** `explicit` (--store-dir) when given; else tmpfs when it and the RAM can hold `needed` bytes; else the temp dir. */
export async function chooseStoreDir(explicit: string | undefined, needed: number): Promise<StoreDir> {
  const need = `${(needed / GiB).toFixed(1)} GiB needed`;
  if (explicit) {
    await assertFreeSpace(explicit, needed);
    return { path: explicit, kind: (await statfs(explicit)).type === TMPFS_MAGIC ? "tmpfs" : "disk", why: `--store-dir, ${need}` };
  }
  const shm = await statfs(TMPFS).catch(() => undefined);
  const room = shm ? shm.bavail * shm.bsize : 0;
  if (shm?.type === TMPFS_MAGIC && room >= needed && os.freemem() >= needed + HEADROOM) {
    return { path: TMPFS, kind: "tmpfs", why: `tmpfs, ${need}` };
  }
  await assertFreeSpace(os.tmpdir(), needed);
  const short = shm ? `has ${(room / GiB).toFixed(1)} GiB free, RAM ${(os.freemem() / GiB).toFixed(1)} GiB` : "is missing";
  return { path: os.tmpdir(), kind: "disk", why: `${TMPFS} ${short}; ${need}` };
}

/** Sets the T attribute on `dir` (see above); the reason it could not, or undefined. */
export async function spreadSubfolders(dir: string): Promise<string | undefined> {
  try {
    await promisify(execFile)("chattr", ["+T", dir]);
    return undefined;
  } catch (err) {
    return (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
  }
}
