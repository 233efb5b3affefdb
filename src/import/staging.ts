// The private temporary folder an import downloads into before it publishes: files stream to disk (bounded
// memory whatever their size), nothing is written outside it, and it is removed afterwards whatever happens,
// also when the process is interrupted (Ctrl-C, a cancelled CI job).
import { rmSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

export async function withStaging<T>(work: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), "assetkit-import-"));
  // Removed synchronously, then the signal is raised again with this handler gone, so the process ends as it
  // would have (no event-loop turn in between in which a download could write again).
  const interrupted = (signal: NodeJS.Signals): void => {
    rmSync(dir, { recursive: true, force: true });
    for (const s of SIGNALS) process.removeListener(s, interrupted);
    process.kill(process.pid, signal);
  };
  for (const s of SIGNALS) process.once(s, interrupted);
  try {
    return await work(dir);
  } finally {
    for (const s of SIGNALS) process.removeListener(s, interrupted);
    await rm(dir, { recursive: true, force: true });
  }
}

/** The local file for `rel` (a path already checked by relativePathProblem) under `root`, its folders made. */
export async function stagedPath(root: string, rel: string): Promise<string> {
  const file = rel ? path.join(root, ...rel.split("/")) : path.join(root, "file");
  await mkdir(path.dirname(file), { recursive: true });
  return file;
}
