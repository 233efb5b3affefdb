// Serving a local or mounted store in place (a folder, file://, an NFS/EFS/S3 Files mount, a PVC): a version's
// files are checked where they lie (size and sha256 against the meta) and their own paths are used, so nothing
// is copied. A marker in the assets dir remembers each checked file's inode, mtime and size, so a later start
// hashes only the files that changed since: the cold start costs one verification.
import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import pMap from "p-map";
import { filesUnder } from "./assets-dir.ts";
import { AssetError } from "../base/errors.ts";
import { hashPool } from "../hashing/pool.ts";
import { dataKey } from "../registry/layout.ts";
import type { VersionMeta } from "../registry/manifest.ts";
import { writeAtomically } from "../base/temp-path.ts";

/** Files hashed at once: enough to keep a network file system busy, few enough not to thrash a local disk. */
const HASH_CONCURRENCY = 4;

export interface InPlaceCopy {
  /** The store's own path of the version, or of its sub-part. */
  path: string;
  /** False when the meta has no checksums (written by modelkit): sizes were checked, not content. */
  verified: boolean;
  /** Files hashed now (0 when the marker vouched for every file). */
  hashed: number;
}

interface Marker {
  digest: string | null;
  /** relpath → "inode-mtimeNs-size" of the file when it was hashed and matched the meta. */
  files: Record<string, string>;
}

/**
 * Checks `name:version` (or its part `subPath`) in the store folder `storeRoot` and returns its path there.
 * `markerRoot` is a local folder (the assets dir) for the markers. Throws AssetError when a file is missing,
 * not a regular file, or differs from the meta.
 */
export async function verifyInPlace(
  storeRoot: string,
  markerRoot: string,
  name: string,
  version: string,
  meta: VersionMeta,
  subPath?: string,
): Promise<InPlaceCopy> {
  const what = `${name}:${version}`;
  if (meta.layout !== "modelkit") {
    throw new AssetError(
      `${what} is stored content-addressed (its files are kept by sha256, not as a folder): it cannot be served in place; fetch it into an assets dir instead`,
    );
  }
  // The store folder holds each key as a path: the version's data key, and its files' below it.
  const storePath = (relPath?: string): string => path.join(storeRoot, ...dataKey(name, version, relPath).split("/"));
  const files = filesUnder(meta, subPath, what);
  const markerFile = path.join(
    markerRoot,
    ".assetkit",
    "in-place",
    createHash("sha256").update(storeRoot).digest("hex").slice(0, 16),
    ...name.split("/"),
    `${version}.json`,
  );
  const marker = await readMarker(markerFile, meta.digest ?? null);
  let hashed = 0;
  await pMap(
    files,
    async (file) => {
      const full = storePath(file.path);
      const label = `${what}${file.path ? `/${file.path}` : ""} at ${full}`;
      const stat = await fs.lstat(full, { bigint: true }).catch(() => undefined);
      if (!stat) throw new AssetError(`${label} is missing: the store folder does not hold this version completely`);
      if (!stat.isFile()) throw new AssetError(`${label} is not a regular file: refusing to serve it in place`);
      if (file.size !== undefined && Number(stat.size) !== file.size) throw mismatch(label, `${file.size} bytes expected, ${stat.size} found`);
      const token = `${stat.ino}-${stat.mtimeNs}-${stat.size}`;
      if (file.sha256 === undefined || marker.files[file.path] === token) return;
      const sha256 = await hashPool.hashFile(full, Number(stat.size));
      hashed++;
      if (sha256 !== file.sha256) {
        delete marker.files[file.path];
        throw mismatch(label, `sha256 ${file.sha256} expected, ${sha256} found`);
      }
      marker.files[file.path] = token;
    },
    { concurrency: HASH_CONCURRENCY },
  ).finally(() => (hashed > 0 ? writeAtomically(markerFile, JSON.stringify(marker) + "\n") : undefined));
  return {
    path: storePath(subPath),
    verified: files.every((f) => f.sha256 !== undefined),
    hashed,
  };
}

function mismatch(label: string, detail: string): AssetError {
  return new AssetError(`integrity check failed for ${label}: ${detail}; it is not served`);
}

/** The marker of a version, when it was made for the same digest; else an empty one. */
async function readMarker(file: string, digest: string | null): Promise<Marker> {
  try {
    const parsed = JSON.parse(await fs.readFile(file, "utf8")) as Partial<Marker>;
    if (parsed.digest === digest && parsed.files && typeof parsed.files === "object") return { digest, files: parsed.files };
  } catch {
    // absent or unreadable: everything is hashed
  }
  return { digest, files: {} };
}
