// The cross-run cache as commands see it: one entry per immutable asset version, kept between CI runs. The Action
// provides one over the Actions cache (src/github/cache.ts); the CLI has none. What comes out of a cache is not
// trusted: its files are hashed and the asset digest recomputed and compared with the expected digest before
// anything lands in the assets dir, so a locked spec restored from the cache needs no store request at all.
import { lstat } from "node:fs/promises";
import path from "node:path";
import type { AssetsDir } from "./assets-dir.ts";
import { assetDigest, prepareInput, type HashingOptions, type PreparedInput } from "../registry/manifest.ts";

/** The identity of a cache entry: equal digests mean equal content, so the digest is what a hit is checked against. */
export interface CachedVersion {
  store: string;
  name: string;
  version: string;
  digest: string;
}

export interface CrossRunCache {
  /**
   * Restores the entry of `version` into a staging place and calls `use` with the restored file or folder, which
   * is removed afterwards (`use` moves what it keeps). Undefined on a miss; failures of the cache service are
   * warnings and count as a miss.
   */
  restore<T>(version: CachedVersion, use: (content: string) => Promise<T>): Promise<T | undefined>;
  /** Saves the complete local copy `content` (a file, or a folder holding `files`) as the entry of `version`; never throws. */
  save(version: CachedVersion, content: string, files: readonly string[]): Promise<void>;
}

/**
 * Installs `version` from the cross-run cache into the assets dir if the cache has it and its content has the
 * expected digest (a mismatch is discarded with a warning, and the caller downloads as usual). The store is not
 * asked. With `subPath`, the whole version is restored, and only when it has that part.
 */
export async function restoreVerified(
  cache: CrossRunCache,
  assetsDir: AssetsDir,
  warn: (message: string) => void,
  version: CachedVersion,
  subPath?: string,
): Promise<{ size: number } | undefined> {
  return cache.restore(version, async (content) => {
    const found = await matchRestored(content, version.digest);
    if (!found || found.digest !== version.digest) {
      warn(
        `cache: the cached ${version.name}:${version.version} has digest ${found?.digest ?? "(unreadable)"}, not ${version.digest}: ignored, fetching from the store`,
      );
      return undefined;
    }
    if (subPath && !found.files.some((f) => f.path === subPath || f.path.startsWith(`${subPath}/`))) return undefined;
    await assetsDir.install(version.name, version.version, content, found.isDirectory, { digest: version.digest, verified: true });
    return { size: found.size };
  });
}

/**
 * Hashes restored content as the meta schemas do, until one gives `digest`: part hashes (BLAKE3, schema 3) are in
 * the digest of metas with large files; without them it is the digest of the same files under schema 1. A version
 * published under schema 2 (sha256 parts) is hashed once more. Undefined when unreadable (see hashRestored).
 */
async function matchRestored(content: string, digest: string): Promise<PreparedInput | undefined> {
  const found = await hashRestored(content);
  if (!found || found.digest === digest || !found.files.some((f) => f.parts)) return found;
  const withoutParts = assetDigest(found.files.map(({ parts: _, ...file }) => file));
  if (withoutParts === digest) return { ...found, digest };
  const schema2 = await hashRestored(content, { partAlgorithm: "sha256" });
  return schema2?.digest === digest ? schema2 : found;
}

/** Walks and hashes restored content; undefined when it is unreadable or holds links (a real copy holds files only). */
async function hashRestored(content: string, options?: HashingOptions): Promise<PreparedInput | undefined> {
  try {
    if ((await lstat(content)).isSymbolicLink()) return undefined;
    const input = await prepareInput(content, options);
    // prepareInput takes a link inside the folder as the file it points to: refuse instead.
    if (input.files.some((f) => f.source !== (input.isDirectory ? path.join(content, ...f.path.split("/")) : path.resolve(content)))) return undefined;
    return input;
  } catch {
    return undefined;
  }
}
