// The private temporary folder an import downloads into before it publishes: files stream to disk (bounded
// memory whatever their size), nothing is written outside it, and it is removed afterwards whatever happens.
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

export async function withStaging<T>(work: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), "assetkit-import-"));
  try {
    return await work(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The local file for `rel` (a path already checked by relativePathProblem) under `root`, its folders made. */
export async function stagedPath(root: string, rel: string): Promise<string> {
  const file = rel ? path.join(root, ...rel.split("/")) : path.join(root, "file");
  await mkdir(path.dirname(file), { recursive: true });
  return file;
}
