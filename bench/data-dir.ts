// Where the benchmark keeps MinIO's data, the datasets and every download. By default a tmpfs (/dev/shm) when it
// has room: the benchmark compares clients, not this machine's disk. Why: on a journal-less ext4 (this project's
// VMs) the inode allocator skips inodes freed in the last 60 s (360 s while their table block is dirty), testing
// each one on every create. After a run deleted thousands of files, creating 2,000 empty files took 1.1-1.2 s
// instead of ~10 ms, so a small-file run's time depended on what the runs before it had deleted (±15% between
// runs of one tool, in MinIO's writes as in the downloads). On tmpfs the same runs vary by ~3%.
import { statfs } from "node:fs/promises";
import os from "node:os";
import { assertFreeSpace } from "./datasets.ts";

const GiB = 1024 ** 3;
const TMPFS = "/dev/shm";
const TMPFS_MAGIC = 0x01021994;
/** Memory left to the tools and MinIO besides what the data takes in RAM. */
const HEADROOM = 4 * GiB;

export interface DataDir {
  path: string;
  /** For the report: "tmpfs" or "disk". */
  kind: "tmpfs" | "disk";
  /** Why this one, for the log. */
  why: string;
}

/** `explicit` (--dir) when given; else tmpfs when it can hold `needed` bytes and RAM too; else the temp dir. */
export async function chooseDataDir(explicit: string | undefined, needed: number): Promise<DataDir> {
  if (explicit) {
    await assertFreeSpace(explicit, needed);
    const tmpfs = (await statfs(explicit)).type === TMPFS_MAGIC;
    return { path: explicit, kind: tmpfs ? "tmpfs" : "disk", why: "--dir" };
  }
  const shm = await statfs(TMPFS).catch(() => undefined);
  const room = shm ? shm.bavail * shm.bsize : 0;
  if (shm?.type === TMPFS_MAGIC && room >= needed && os.freemem() >= needed + HEADROOM) {
    return { path: TMPFS, kind: "tmpfs", why: `tmpfs, ${(needed / GiB).toFixed(1)} GiB needed` };
  }
  await assertFreeSpace(os.tmpdir(), needed);
  return {
    path: os.tmpdir(),
    kind: "disk",
    why: `${TMPFS} ${shm ? `has ${(room / GiB).toFixed(1)} GiB free and RAM ${(os.freemem() / GiB).toFixed(1)} GiB` : "is missing"}; ${(needed / GiB).toFixed(1)} GiB needed`,
  };
}
