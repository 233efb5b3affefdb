// Where MinIO keeps its data during the benchmark: by default a tmpfs (/dev/shm) when it has room, so that the
// server's own disk work does not blur the comparison of clients (the store is remote, in real use). Why: on a
// journal-less ext4 (this project's VMs) the inode allocator skips inodes freed in the last 60 s (360 s while their
// table block is dirty), testing each one on every create. MinIO creates and deletes files for every object it
// writes, and frees deleted objects from its trash later, on its own schedule; after a publish case, creating
// 2,000 empty files in the same file system took 1.1-1.2 s instead of ~50 ms, so one tool's run paid for the
// deletions of the runs before it (small-file ratios swung ±15% between full runs). The datasets and the tools'
// downloads stay on disk, as a user's files are.
import { statfs } from "node:fs/promises";
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
