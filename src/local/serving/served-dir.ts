// The dir a sync serves from: the assets dir's layout (a version at <dir>/<name>/<version>) plus, per asset, a
// symlink <dir>/<name>/current switched from one complete, verified version to the next in one step: a new link
// renamed over the old one (rename is atomic), so a reader that resolves `current` once gets every file from the
// same version. A state file beside it records what `current` points at and the versions it pointed at before,
// which are kept (for in-flight readers and instant rollback) while older ones are deleted after the swap.
import { promises as fs } from "node:fs";
import path from "node:path";
import type { AssetsDir } from "../assets-dir.ts";
import { tempSibling, writeAtomically } from "../../base/temp-path.ts";

/** The link's name: never a version of either scheme. */
export const CURRENT = "current";
const STATE = ".current.json";

export interface ServedState {
  spec: string;
  version: string;
  digest: string | null;
  /** What `current` points at: a path relative to the asset's folder (a copy), or absolute (in place). */
  target: string;
  /** Versions `current` pointed at before, newest first, at most `keep` of them. */
  previous: string[];
}

export class ServedDir {
  readonly assets: AssetsDir;

  constructor(assets: AssetsDir) {
    this.assets = assets;
  }

  /** The `current` link of an asset. */
  linkOf(name: string): string {
    return this.assets.pathOf(name, CURRENT);
  }

  /** What `current` points at, when the link and the state file agree (else nothing is known to be served). */
  async state(name: string): Promise<ServedState | undefined> {
    const link = this.linkOf(name);
    const [text, target] = await Promise.all([
      fs.readFile(path.join(path.dirname(link), STATE), "utf8").catch(() => undefined),
      fs.readlink(link).catch(() => undefined),
    ]);
    if (text === undefined || target === undefined) return undefined;
    try {
      const state = JSON.parse(text) as ServedState;
      return state.target === target && Array.isArray(state.previous) ? state : undefined;
    } catch {
      return undefined;
    }
  }

  /** Where `current` should point for a local path of a version: relative inside the dir (it may be mounted elsewhere), else absolute. */
  targetFor(name: string, versionPath: string): string {
    const folder = path.dirname(this.linkOf(name));
    const relative = path.relative(folder, versionPath);
    return relative.startsWith("..") || path.isAbsolute(relative) ? versionPath : relative;
  }

  /**
   * Points `current` at `next.target` (under the asset's lock, so two syncs on one dir never interleave), then
   * deletes the local copies that are neither current nor among the `keep` previous versions. `changed` is false
   * when `current` already pointed there (another sync swapped first).
   */
  async swap(name: string, next: Omit<ServedState, "previous">, keep: number): Promise<{ before?: ServedState; changed: boolean }> {
    const release = await this.assets.lock(name, CURRENT);
    try {
      const before = await this.state(name);
      if (before?.target === next.target) return { before, changed: false };
      const link = this.linkOf(name);
      const temp = tempSibling(link);
      await fs.mkdir(path.dirname(link), { recursive: true });
      try {
        await fs.symlink(next.target, temp);
        await fs.rename(temp, link);
      } finally {
        await fs.rm(temp, { force: true });
      }
      const previous = [...new Set(before ? [before.version, ...before.previous] : [])].filter((v) => v !== next.version).slice(0, keep);
      await writeAtomically(path.join(path.dirname(link), STATE), JSON.stringify({ ...next, previous }) + "\n");
      await this.prune(name, new Set([next.version, ...previous]));
      return { ...(before ? { before } : {}), changed: true };
    } finally {
      await release();
    }
  }

  /** Deletes the complete local copies of `name` (those with a marker) whose version is not in `keep`. */
  private async prune(name: string, keep: ReadonlySet<string>): Promise<void> {
    const folder = path.dirname(this.linkOf(name));
    for (const entry of await fs.readdir(folder)) {
      if (entry.startsWith(".") || entry === CURRENT || keep.has(entry)) continue;
      if (await this.assets.localCopy(name, entry)) await this.assets.remove(name, entry); // else another asset's folder
    }
  }
}
