// The Action's cross-run cache over @actions/cache: the runner's cache service (v1 at ACTIONS_CACHE_URL, which
// act's built-in server speaks, or v2 when ACTIONS_CACHE_SERVICE_V2 is set). One entry per immutable asset
// version. The cache is an optimisation only: an unavailable service, a read-only cache mode or a failed save is
// a warning, never a failure.
import * as cache from "@actions/cache";
import * as core from "@actions/core";
import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import type { CachedVersion, CrossRunCache } from "../local/cross-run-cache.ts";

const KEY_PREFIX = "assetkit-v1";
/** The cache service's limit. */
const MAX_KEY_LENGTH = 512;
/**
 * Where entries are staged, relative to the working directory (the workspace in a runner). @actions/cache hashes
 * the exact paths list into an entry's version and archives paths relative to the workspace, so an entry saved
 * by one run is found by another only through a path that is the same string in both: not RUNNER_TEMP, and under
 * act not even the workspace's absolute path, which change from run to run.
 */
const STAGING_DIR = ".assetkit/cache-staging";
/** The version's file, or its folder, inside an entry's staging folder. */
const CONTENT = "content";
/** @actions/cache's enableCrossOsArchive: part of every entry's version, so save and restore pass the same. */
const CROSS_OS = true;

/**
 * `assetkit-v1-<sha256(store)[:16]>-<name>@<version>-<digest hex>`: no commas (the name and version are made of
 * safe characters only), at most 512 characters (the readable middle is shortened when needed, which cannot
 * mix two versions up: equal digests mean equal content). A digest of another form (a hand-edited lockfile) is
 * hashed to the same length; nothing restored can match it anyway.
 */
export function cacheKey(version: CachedVersion): string {
  const hex = /^sha256:([0-9a-f]{64})$/.exec(version.digest)?.[1] ?? createHash("sha256").update(version.digest).digest("hex");
  const store = createHash("sha256").update(version.store).digest("hex").slice(0, 16);
  const fixed = `${KEY_PREFIX}-${store}--${hex}`.length;
  const readable = `${version.name}@${version.version}`.replace(/[^A-Za-z0-9._/+@-]/g, "_").slice(0, MAX_KEY_LENGTH - fixed);
  return `${KEY_PREFIX}-${store}-${readable}-${hex}`;
}

/** What this run may save; restoring is always allowed. */
export interface CacheBudget {
  /** Why nothing is saved (restore-only, or a branch outside cache-save-branches); undefined: saves are allowed. */
  noSave?: string;
  /** Versions larger than this many bytes are not saved. */
  maxSize?: number;
}

/**
 * Whether runs on `branch` save entries: always without patterns, else only when a glob matches the branch
 * (`main`, `release/*`), so pull request runs do not evict the entries the main branch relies on.
 */
export function savesOnBranch(patterns: readonly string[], branch: string): boolean {
  return patterns.length === 0 || patterns.some((p) => path.posix.matchesGlob(branch, p));
}

/**
 * The cross-run cache of this run, or undefined (with a warning) when the runner offers no cache service.
 * Entries are created and looked up with enableCrossOsArchive: the bytes of a version do not depend on the OS, so
 * Linux, macOS and Windows jobs share one entry per version.
 */
export function actionsCache(budget: CacheBudget = {}): CrossRunCache | undefined {
  if (!cache.isFeatureAvailable()) {
    core.warning("cache: no Actions cache service here (ACTIONS_CACHE_URL / ACTIONS_RESULTS_URL unset): every asset comes from the store");
    return undefined;
  }
  // Two specs of one version in one fetch would share a staging folder: one at a time per key.
  const busy = new Map<string, Promise<unknown>>();
  const exclusive = <T>(key: string, task: () => Promise<T>): Promise<T> => {
    const run = (busy.get(key) ?? Promise.resolve()).then(task, task);
    busy.set(
      key,
      run.catch(() => undefined),
    );
    return run;
  };

  return {
    restore: (version, use) => {
      const key = cacheKey(version);
      return exclusive(key, async () => {
        const { pattern, dir } = staging(key);
        await fs.rm(dir, { recursive: true, force: true });
        try {
          let hit: string | undefined;
          try {
            hit = await cache.restoreCache([pattern], key, [], {}, CROSS_OS);
          } catch (err) {
            core.warning(`cache: could not restore ${version.name}:${version.version}: ${(err as Error).message}`);
            return undefined;
          }
          // The service also matches keys by prefix: only this exact key is this version.
          if (hit !== key) return undefined;
          const content = path.join(dir, CONTENT);
          if (
            !(await fs.lstat(content).then(
              () => true,
              () => false,
            ))
          ) {
            core.warning(`cache: the entry ${key} holds no ${CONTENT}: ignored`);
            return undefined;
          }
          return await use(content);
        } finally {
          await removeStaging(dir);
        }
      });
    },
    save: (version, content, files) => {
      const key = cacheKey(version);
      const what = `${version.name}:${version.version}`;
      return exclusive(key, async () => {
        const { pattern, dir } = staging(key);
        try {
          if (budget.noSave) {
            core.info(`cache: not saving ${what}: ${budget.noSave}`);
            return;
          }
          const size = await bytesOf(content, files);
          if (budget.maxSize !== undefined && size > budget.maxSize) {
            core.info(`cache: not saving ${what}: ${size} bytes is above cache-max-size (${budget.maxSize} bytes)`);
            return;
          }
          await fs.rm(dir, { recursive: true, force: true });
          await stage(content, path.join(dir, CONTENT), files);
          // -1: not saved; @actions/cache has said why (read-only cache mode, the key taken by another job, …).
          if ((await cache.saveCache([pattern], key, {}, CROSS_OS)) === -1) {
            core.warning(`cache: ${version.name}:${version.version} was not saved to the cache; later runs fetch it from the store`);
          } else {
            core.info(`cache: saved ${version.name}:${version.version} (${key})`);
          }
        } catch (err) {
          core.warning(`cache: could not save ${version.name}:${version.version}: ${(err as Error).message}`);
        } finally {
          await removeStaging(dir);
        }
      });
    },
  };
}

async function bytesOf(content: string, files: readonly string[]): Promise<number> {
  let total = 0;
  for (const rel of files) total += (await fs.stat(rel ? path.join(content, ...rel.split("/")) : content)).size;
  return total;
}

function staging(key: string): { pattern: string; dir: string } {
  const pattern = `${STAGING_DIR}/${createHash("sha256").update(key).digest("hex").slice(0, 32)}`;
  return { pattern, dir: path.resolve(pattern) };
}

/** Removes a staging folder, and .assetkit/cache-staging and .assetkit when that leaves them empty: nothing stays behind in the workspace. */
async function removeStaging(dir: string): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true });
  for (const parent of [path.dirname(dir), path.dirname(path.dirname(dir))]) await fs.rmdir(parent).catch(() => undefined);
}

/** Links (copies, across file systems) the version's files, and only them (no markers), into the staging place. */
async function stage(content: string, dest: string, files: readonly string[]): Promise<void> {
  for (const rel of files) {
    const from = rel ? path.join(content, ...rel.split("/")) : content;
    const to = rel ? path.join(dest, ...rel.split("/")) : dest;
    await fs.mkdir(path.dirname(to), { recursive: true });
    await fs.link(from, to).catch(() => fs.copyFile(from, to));
  }
}
