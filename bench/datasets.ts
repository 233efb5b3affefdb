// The benchmark's datasets, generated on the spot from random bytes (incompressible, every file different):
// one large file, many small files, and a mixed folder (one big file beside many 1 MiB files); opt-in, at the
// scale users reach: 100,000 files of 4 KiB in 1,000 folders (--scale) and one 20 GiB file (--huge).
import { randomFillSync } from "node:crypto";
import { open, mkdir, readdir, stat, statfs, writeFile } from "node:fs/promises";
import path from "node:path";

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
/** Large files are written in chunks of this size, each freshly randomised. */
const CHUNK = 16 * MiB;

export type DatasetId = "large" | "small" | "mixed" | "many" | "huge";
/** The datasets of a default run. */
export const DATASET_IDS: readonly DatasetId[] = ["large", "small", "mixed"];
/** Opt-in: --scale, --huge. */
export const SCALE_DATASET_IDS: readonly DatasetId[] = ["many"];
export const HUGE_DATASET_IDS: readonly DatasetId[] = ["huge"];
/** Counted in files (files/s, CPU ms per file), not bytes. */
export const FILE_COUNT_DATASETS: readonly DatasetId[] = ["small", "many"];

export interface Dataset {
  id: DatasetId;
  /** What it is, for tables: "2 GiB file", "2000 × 64 KiB". */
  title: string;
  /** The file (large) or folder (small, mixed) that is uploaded. */
  path: string;
  isFile: boolean;
  files: number;
  bytes: number;
}

interface Shape {
  /** A big file (the whole dataset when `count` is 0). */
  big: number;
  /** Plus `count` files of `each` bytes. */
  count: number;
  each: number;
  /** The small files spread over this many folders (1 when absent). */
  folders?: number;
}

/** Full sizes as the issue asks; --quick sizes keep every code path but run in seconds. */
export function datasetShapes(quick: boolean): Record<DatasetId, Shape> {
  return quick
    ? {
        large: { big: 64 * MiB, count: 0, each: 0 },
        small: { big: 0, count: 200, each: 64 * KiB },
        mixed: { big: 16 * MiB, count: 20, each: MiB },
        many: { big: 0, count: 2000, each: 4 * KiB, folders: 20 },
        huge: { big: 256 * MiB, count: 0, each: 0 },
      }
    : {
        large: { big: 2 * GiB, count: 0, each: 0 },
        small: { big: 0, count: 2000, each: 64 * KiB },
        mixed: { big: 256 * MiB, count: 200, each: MiB },
        many: { big: 0, count: 100_000, each: 4 * KiB, folders: 1000 },
        huge: { big: 20 * GiB, count: 0, each: 0 },
      };
}

export function datasetBytes(shape: Shape): number {
  return shape.big + shape.count * shape.each;
}

export function formatBytes(bytes: number): string {
  for (const [unit, size] of [
    ["GiB", GiB],
    ["MiB", MiB],
    ["KiB", KiB],
  ] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  return bytes >= MiB ? `${(bytes / MiB).toFixed(1)} MiB` : `${bytes} B`;
}

function title(shape: Shape): string {
  const many = `${shape.count} × ${formatBytes(shape.each)}${(shape.folders ?? 1) > 1 ? ` in ${shape.folders} folders` : ""}`;
  if (shape.count === 0) return `${formatBytes(shape.big)} file`;
  return shape.big ? `${formatBytes(shape.big)} + ${many}` : many;
}

/** Fails early, with the numbers, when `dir`'s filesystem has less than `needed` bytes free. */
export async function assertFreeSpace(dir: string, needed: number): Promise<void> {
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize;
  if (free < needed) {
    throw new Error(
      `not enough free disk under ${dir}: ${(free / GiB).toFixed(1)} GiB free, the benchmark needs about ${(needed / GiB).toFixed(1)} GiB (datasets, the store's copies, one download); try --quick`,
    );
  }
}

export async function makeDataset(root: string, id: DatasetId, shape: Shape): Promise<Dataset> {
  if (shape.count === 0) {
    const file = path.join(root, `${id}.bin`);
    await writeRandomFile(file, shape.big);
    return { id, title: title(shape), path: file, isFile: true, files: 1, bytes: shape.big };
  }
  const dir = path.join(root, id);
  const folders = shape.folders ?? 1;
  // One folder: parts/; more: parts/000/ … (changeOneFile changes parts' first file, in either layout).
  const folderOf = (i: number): string => (folders === 1 ? "parts" : path.join("parts", String(i % folders).padStart(String(folders - 1).length, "0")));
  for (let f = 0; f < folders; f++) await mkdir(path.join(dir, folderOf(f)), { recursive: true });
  if (shape.big) await writeRandomFile(path.join(dir, "big.bin"), shape.big);
  const digits = String(shape.count - 1).length;
  const content = Buffer.allocUnsafe(shape.each);
  for (let i = 0; i < shape.count; i++) {
    await writeFile(path.join(dir, folderOf(i), `part-${String(i).padStart(digits, "0")}.bin`), randomFillSync(content));
  }
  return { id, title: title(shape), path: dir, isFile: false, files: shape.count + (shape.big ? 1 : 0), bytes: datasetBytes(shape) };
}

/** Gives the first of a folder dataset's small files new random content; returns its size. */
export async function changeOneFile(dataset: Dataset): Promise<number> {
  return changeFiles(dataset, 1);
}

/** Gives `count` of a folder dataset's small files (the first ones, by path) new random content; returns their bytes. */
export async function changeFiles(dataset: Dataset, count: number): Promise<number> {
  const parts = path.join(dataset.path, "parts");
  const files = (await readdir(parts, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name))
    .sort()
    .slice(0, count);
  if (files.length < count) throw new Error(`${parts} has fewer than ${count} files`);
  let bytes = 0;
  for (const file of files) {
    const { size } = await stat(file);
    await writeFile(file, randomFillSync(Buffer.allocUnsafe(size)));
    bytes += size;
  }
  return bytes;
}

/** Bytes of all regular files under `dir` (a download's check: did the tool really fetch the data?). */
export async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) total += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

async function writeRandomFile(file: string, size: number): Promise<void> {
  const handle = await open(file, "w");
  try {
    const chunk = Buffer.allocUnsafe(Math.min(CHUNK, size));
    for (let written = 0; written < size;) {
      const n = Math.min(chunk.length, size - written);
      randomFillSync(chunk, 0, n);
      await handle.write(chunk, 0, n);
      written += n;
    }
  } finally {
    await handle.close();
  }
}
