// The local assets directory (contract, modelkit's layout): a file asset at <dir>/<name>/<version>, a folder
// asset under <dir>/<name>/<version>/. A version appears there only complete and verified: it is assembled in a
// temporary sibling and renamed into place, and a marker (modelkit's .SUCCESS files) records its digest.
import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import type { Readable } from "node:stream";
import { AssetError } from "../base/errors.ts";
import { mapSettling } from "../base/map-settling.ts";
import type { VersionMeta } from "../registry/manifest.ts";
import { assetNameProblem, relativePathProblem } from "../registry/paths.ts";
import type { ByteRange } from "../store/store.ts";
import { TEMP_MARK, tempSibling } from "../base/temp-path.ts";
import { Transfers, type TransferProgress } from "../transfer/engine.ts";
import type { ResolvedAsset } from "../registry/registry.ts";

/** modelkit's completion marker of a folder version, at its top: no file of the asset may have that path. */
const FOLDER_MARKER = ".SUCCESS";

/**
 * Why a version with these file paths cannot be kept faithfully in an assets dir, or undefined: a top-level
 * `.SUCCESS` would be overwritten by the marker (which modelkit looks for there), and a name with the temporary
 * mark would be taken for a killed fetch's leftover and removed.
 */
export function reservedPathProblem(paths: readonly string[], isDirectory: boolean): string | undefined {
  if (isDirectory && paths.includes(FOLDER_MARKER)) {
    return `a top-level ${FOLDER_MARKER} file is reserved for the completion marker of the local assets dir (modelkit's layout); rename it or move it into a sub-folder`;
  }
  const temporary = paths.find((p) => p.includes(TEMP_MARK));
  return temporary === undefined ? undefined : `${JSON.stringify(temporary)}: names containing ${TEMP_MARK} are reserved for assetkit's temporary files`;
}

export interface LocalCopy {
  /** The asset digest recorded when the copy was verified; undefined for copies written by modelkit. */
  digest?: string;
  verified: boolean;
  /** The pin of the trust policy its signature was verified under (docs/trust.md, section 7), if any. */
  trust?: string;
  /** Who signed it, as that policy named the signer (`key:<hint>`); absent when the policy allowed it unsigned. */
  signer?: string;
}

/** What a copy's marker records of its signature check: the policy's pin and the signer found. */
export type TrustRecord = Pick<LocalCopy, "trust" | "signer">;

/**
 * The one freshness rule: a complete local copy serves a version of digest `digest` when it recorded that digest,
 * when it recorded none (modelkit wrote it; versions are immutable), or when no digest is asked for (null: a
 * modelkit meta, or a version named whole with no lockfile entry).
 */
export function serves(copy: LocalCopy | undefined, digest: string | null | undefined): copy is LocalCopy {
  return copy !== undefined && (digest == null || copy.digest === undefined || copy.digest === digest);
}

export interface Materialised extends LocalCopy {
  path: string;
  /** False when a complete local copy was already there. */
  downloaded: boolean;
}

/** A spec's version as fetch leaves it in the assets dir (or, --in-place, where the store holds it). */
export interface FetchedAsset extends ResolvedAsset {
  /** The local file or folder of the asset, or of its sub-part when the spec names one. */
  path: string;
  /** True when a complete local copy was already there: no byte was downloaded. */
  local: boolean;
  /** True when it was restored from the cross-run cache (and verified against its digest), not downloaded. */
  cached: boolean;
  verified: boolean;
  /** Under a trust policy, who signed the version (`key:<hint>`); null without a policy or when its rule allows it unsigned. */
  signer: string | null;
}

/** A version with a local copy, for prune-local. */
export interface LocalVersion {
  name: string;
  version: string;
  path: string;
  size: number;
  lastUsed: Date;
}

/** Opens a file of the version, or a byte range of it. */
export type OpenFile = (relPath: string, range?: ByteRange) => Promise<Readable>;

export class AssetsDir {
  readonly root: string;
  /** One request pool for every download into this dir, whatever the number of assets fetched at once. */
  readonly transfers: Transfers;

  constructor(root: string, transfers: Transfers) {
    this.root = path.resolve(root);
    this.transfers = transfers;
  }

  /** Where publish keeps the hash records of the folders it read (see registry/hash-record.ts). */
  get hashRecordDir(): string {
    return path.join(this.root, ".assetkit", "hashes");
  }

  /** Where a version (or one part of it) lives locally; refuses anything that would land outside the dir. */
  pathOf(name: string, version: string, subPath?: string): string {
    const parts = [name, version, ...(subPath ? [subPath] : [])];
    const problem =
      assetNameProblem(name) ??
      relativePathProblem(version) ??
      (version.includes("/") ? "a version has no '/'" : undefined) ??
      (subPath ? relativePathProblem(subPath) : undefined);
    const full = path.join(this.root, ...parts.flatMap((p) => p.split("/")));
    if (problem || !full.startsWith(this.root + path.sep)) {
      throw new AssetError(`refusing to write ${JSON.stringify(parts.join("/"))} outside the assets dir ${this.root}${problem ? `: ${problem}` : ""}`);
    }
    return full;
  }

  private markerOf(name: string, version: string, isDirectory: boolean, subPath?: string): string {
    const versionPath = this.pathOf(name, version);
    if (subPath) {
      const id = createHash("sha256").update(subPath).digest("hex").slice(0, 16);
      return path.join(path.dirname(versionPath), `.${version}.parts`, `${id}.SUCCESS`);
    }
    return isDirectory ? path.join(versionPath, FOLDER_MARKER) : path.join(path.dirname(versionPath), `.${version}.SUCCESS`);
  }

  /** The complete local copy of a version, or of the part `subPath` of it, if there is one. Reads no store. */
  async localCopy(name: string, version: string, subPath?: string): Promise<LocalCopy | undefined> {
    const stat = await fs.stat(this.pathOf(name, version)).catch(() => undefined);
    if (!stat) return undefined;
    const whole = await readMarker(this.markerOf(name, version, stat.isDirectory()));
    if (whole || !subPath || !stat.isDirectory()) return whole;
    return readMarker(this.markerOf(name, version, true, subPath));
  }

  /**
   * Records in the marker of a complete copy (or of its part `subPath`) the pin of the trust policy its version's
   * signature was just verified under and its signer, so that the next fetch under that policy needs no store request.
   */
  async recordTrust(name: string, version: string, subPath: string | undefined, trust: TrustRecord): Promise<void> {
    const stat = await fs.stat(this.pathOf(name, version)).catch(() => undefined);
    if (!stat) return;
    const markers = [this.markerOf(name, version, stat.isDirectory()), ...(subPath && stat.isDirectory() ? [this.markerOf(name, version, true, subPath)] : [])];
    for (const marker of markers) {
      const copy = await readMarker(marker);
      if (copy) return writeMarker(marker, { ...copy, trust: trust.trust, signer: trust.signer });
    }
  }

  /**
   * Makes a complete, verified local copy of `name:version` (only the part `subPath` when given), downloading
   * what is missing. Several processes on one dir: one downloads, the others wait for its lock and reuse.
   * `trust`: the pin of the policy the version's signature was just verified under and its signer, recorded in its marker.
   */
  async materialise(
    name: string,
    version: string,
    meta: VersionMeta,
    open: OpenFile,
    subPath?: string,
    onProgress?: (progress: TransferProgress) => void,
    trust?: TrustRecord,
  ): Promise<Materialised> {
    const target = this.pathOf(name, version, subPath);
    // Under a trust policy only a copy of the verified meta's digest serves (not modelkit's copies, which record none).
    const usable = (copy: LocalCopy | undefined): copy is LocalCopy => serves(copy, meta.digest) && (trust === undefined || copy.digest === meta.digest);
    const ready = await this.localCopy(name, version, subPath);
    if (usable(ready)) return { ...ready, path: target, downloaded: false };

    const files = filesUnder(meta, subPath, `${name}:${version}`);
    const reserved = reservedPathProblem(
      files.map((f) => f.path),
      meta.isDirectory,
    );
    if (reserved) throw new AssetError(`cannot fetch ${name}:${version} into an assets dir: ${reserved}`);

    const release = await this.lock(name, version);
    try {
      const again = await this.localCopy(name, version, subPath);
      if (usable(again)) return { ...again, path: target, downloaded: false };
      await this.removeLeftovers(name, version);
      const copy = { digest: meta.digest, verified: files.every((f) => f.sha256 !== undefined), ...trust };
      const label = (rel: string): string => `${name}:${version}${rel ? `/${rel}` : ""}`;
      const progress: TransferProgress = { bytes: 0, totalBytes: files.reduce((sum, f) => sum + (f.size ?? 0), 0), files: 0, totalFiles: files.length };
      const onBytes = (n: number): void => {
        progress.bytes += n;
        onProgress?.(progress);
      };
      const folders = new Map<string, Promise<unknown>>(); // one mkdir per folder, not per file
      const fetchTo = async (file: VersionMeta["files"][number], dest: string): Promise<void> => {
        const folder = path.dirname(dest);
        if (!folders.has(folder)) folders.set(folder, fs.mkdir(folder, { recursive: true }));
        await folders.get(folder);
        await this.transfers.download(
          (range) => open(file.path, range),
          dest,
          { ...file, ...(meta.partSize !== undefined ? { partSize: meta.partSize, partAlgorithm: meta.partAlgorithm } : {}) },
          label(file.path),
          onBytes,
        );
        progress.files++;
        onProgress?.(progress);
      };
      if (subPath) await this.materialiseParts(name, version, files, fetchTo, copy, subPath);
      else {
        const download = meta.isDirectory
          ? async (temp: string) => {
              await mapSettling(files, (f) => fetchTo(f, path.join(temp, ...f.path.split("/"))), this.transfers.settings.concurrency);
            }
          : (temp: string) => fetchTo(files[0]!, temp);
        await this.materialiseWhole(name, version, meta.isDirectory, download, copy);
      }
      return { ...copy, path: target, downloaded: true };
    } finally {
      await release();
    }
  }

  /**
   * Puts a complete copy of `name:version` that the caller has verified (restored from a cross-run cache) in
   * place as a download would, moving the file or folder `source` in. A copy already there with its digest stays.
   */
  async install(name: string, version: string, source: string, isDirectory: boolean, copy: LocalCopy): Promise<void> {
    const release = await this.lock(name, version);
    try {
      if (serves(await this.localCopy(name, version), copy.digest)) return;
      await this.materialiseWhole(name, version, isDirectory, (temp) => move(source, temp), copy);
    } finally {
      await release();
    }
  }

  /** Fills a temporary sibling of the version (`fill` writes the file, or the folder's files), then renames it into place with its marker. */
  private async materialiseWhole(name: string, version: string, isDirectory: boolean, fill: (temp: string) => Promise<void>, copy: LocalCopy): Promise<void> {
    const target = this.pathOf(name, version);
    const temp = tempSibling(target);
    try {
      await fill(temp);
      if (isDirectory) {
        await writeMarker(path.join(temp, FOLDER_MARKER), copy);
        await replace(target, temp);
      } else {
        const marker = this.markerOf(name, version, false);
        await fs.rm(marker, { force: true });
        await replace(target, temp);
        await writeMarker(marker, copy);
      }
    } finally {
      await fs.rm(temp, { recursive: true, force: true });
    }
  }

  private async materialiseParts(
    name: string,
    version: string,
    files: VersionMeta["files"],
    fetchTo: (file: VersionMeta["files"][number], dest: string) => Promise<void>,
    copy: LocalCopy,
    subPath: string,
  ): Promise<void> {
    const versionPath = this.pathOf(name, version);
    await mapSettling(
      files,
      async (f) => {
        const dest = path.join(versionPath, ...f.path.split("/"));
        const temp = tempSibling(dest);
        try {
          await fetchTo(f, temp);
          await fs.rename(temp, dest);
        } catch (err) {
          // Only on failure: a removal that finds nothing still costs an lstat on the thread pool per file.
          await fs.rm(temp, { force: true });
          throw err;
        }
      },
      this.transfers.settings.concurrency,
    );
    await writeMarker(this.markerOf(name, version, true, subPath), copy);
  }

  /** Records that `name:version` was used now (fetched, or found complete): prune-local removes the least recently used first. */
  async recordUse(name: string, version: string): Promise<void> {
    const record = this.useRecordOf(name, version);
    await fs.mkdir(path.dirname(record), { recursive: true });
    const temp = tempSibling(record);
    await fs.writeFile(temp, new Date().toISOString() + "\n");
    await fs.rename(temp, record);
  }

  private useRecordOf(name: string, version: string): string {
    return path.join(this.root, ".assetkit", "used", ...name.split("/"), version);
  }

  /** Every version with a copy here (whole, or some parts of it), with its size and when it was last used. */
  async localVersions(): Promise<LocalVersion[]> {
    const out: LocalVersion[] = [];
    const visit = async (dir: string, name: string[]): Promise<void> => {
      const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
      const names = new Set(entries.map((e) => e.name));
      for (const entry of entries) {
        if (entry.name.includes(TEMP_MARK) || (name.length === 0 && entry.name === ".assetkit")) continue;
        const asset = name.join("/");
        const full = path.join(dir, entry.name);
        const marker = /^\.(.+)\.(SUCCESS|parts)$/.exec(entry.name);
        if (marker && names.has(marker[1]!) && (marker[2] === "SUCCESS" || !(await exists(path.join(dir, marker[1]!, ".SUCCESS"))))) {
          out.push(await this.describe(asset, marker[1]!, path.join(dir, marker[1]!), full));
        } else if (entry.isDirectory() && !entry.name.startsWith(".")) {
          if (await exists(path.join(full, ".SUCCESS"))) out.push(await this.describe(asset, entry.name, full, path.join(full, ".SUCCESS")));
          else if (!names.has(`.${entry.name}.parts`)) await visit(full, [...name, entry.name]);
        }
      }
    };
    await visit(this.root, []);
    return out;
  }

  private async describe(name: string, version: string, copy: string, marker: string): Promise<LocalVersion> {
    const used = await fs.readFile(this.useRecordOf(name, version), "utf8").then(
      (t) => new Date(t.trim()),
      () => undefined,
    );
    // Without a use record (a copy made before records existed, or by modelkit): when it was made.
    const lastUsed = used && !Number.isNaN(used.getTime()) ? used : (await fs.stat(marker)).mtime;
    return { name, version, path: copy, size: await sizeOf(copy), lastUsed };
  }

  /**
   * Removes the local copy of a version unless a fetch holds it now (false then), with its use record; the
   * markers go first (remove()).
   */
  async removeUnlessHeld(name: string, version: string): Promise<boolean> {
    let release: () => Promise<void>;
    try {
      release = await this.lock(name, version, false);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ELOCKED") return false;
      throw err;
    }
    try {
      await this.remove(name, version);
      await fs.rm(this.useRecordOf(name, version), { force: true });
      return true;
    } finally {
      await release();
    }
  }

  /**
   * Removes what killed fetches left of any version of `name` beside the versions (temporary copies, copies
   * moved aside, half-written markers), each version only while no process holds its lock: a fetch in progress
   * keeps its temporary files. Touches no store. Best effort: a dir this process cannot write (a read-only
   * volume of prefetched assets) keeps them, and the fetch goes on.
   */
  async sweep(name: string): Promise<void> {
    const folder = path.dirname(this.pathOf(name, "0")); // the folder of any version of the asset
    const entries = await fs.readdir(folder).catch(() => [] as string[]);
    const versions = new Set(entries.map(leftoverVersion).filter((v): v is string => v !== undefined && !relativePathProblem(v) && !v.includes("/")));
    for (const version of versions) {
      // Fails at once (ELOCKED) while a fetch holds the lock: its files are no leftovers.
      const release = await this.lock(name, version, false).catch(() => undefined);
      if (!release) continue;
      await this.removeLeftovers(name, version)
        .catch(() => undefined)
        .finally(() => release().catch(() => undefined));
    }
  }

  /** Removes the leftovers of killed fetches of `name:version`: the caller holds its lock, so nobody is writing them. */
  private async removeLeftovers(name: string, version: string): Promise<void> {
    const versionPath = this.pathOf(name, version);
    const folder = path.dirname(versionPath);
    const entries = await fs.readdir(folder).catch(() => [] as string[]);
    const beside = entries.filter((e) => leftoverVersion(e) === version).map((e) => path.join(folder, e));
    // Inside a partial folder copy and its part markers: files a killed fetch of a part was writing.
    const inside = [...(await temporaryFiles(versionPath)), ...(await temporaryFiles(path.join(folder, `.${version}.parts`)))];
    await Promise.all([...beside, ...inside].map((p) => fs.rm(p, { recursive: true, force: true })));
  }

  /** Deletes the local copy of a version with its markers; the markers go first, so a half-deleted copy never looks complete. */
  async remove(name: string, version: string): Promise<void> {
    const target = this.pathOf(name, version);
    const stat = await fs.stat(target).catch(() => undefined);
    if (stat) await fs.rm(this.markerOf(name, version, stat.isDirectory()), { force: true });
    await fs.rm(path.join(path.dirname(target), `.${version}.parts`), { recursive: true, force: true });
    await fs.rm(target, { recursive: true, force: true });
  }

  /**
   * The inter-process lock of one entry of an asset (a version; sync also locks "current", which no version can
   * be named). Released by calling the function it returns. `wait` false fails at once (code ELOCKED) when
   * another process holds it.
   */
  async lock(name: string, version: string, wait = true): Promise<() => Promise<void>> {
    const lockPath = path.join(this.root, ".assetkit", "locks", ...name.split("/"), version);
    await fs.mkdir(path.dirname(lockPath), { recursive: true });
    // Waits as long as a large download may take; a lock whose holder died goes stale after 30 s.
    const retries = wait ? { retries: 7200, factor: 1, minTimeout: 250, maxTimeout: 500 } : 0;
    // Loaded here, not at start: proper-lockfile brings graceful-fs and signal-exit (~20 ms at every start otherwise).
    const { lock } = (await import("proper-lockfile")).default;
    return lock(lockPath, { realpath: false, stale: 30_000, retries });
  }
}

export function filesUnder(meta: VersionMeta, subPath: string | undefined, what: string): VersionMeta["files"] {
  if (!subPath) return meta.files;
  if (!meta.isDirectory) throw new AssetError(`${what} is a single file: it has no part [${subPath}]`);
  const files = meta.files.filter((f) => f.path === subPath || f.path.startsWith(`${subPath}/`));
  if (files.length === 0) throw new AssetError(`${what} has no file or folder ${subPath}`);
  return files;
}

/** Renames `temp` onto `target`, moving aside whatever was there (a partial copy) and removing it after. */
async function replace(target: string, temp: string): Promise<void> {
  const old = `${tempSibling(target)}-old`;
  const moved = await fs.rename(target, old).then(
    () => true,
    () => false,
  );
  await fs.rename(temp, target);
  if (moved) await fs.rm(old, { recursive: true, force: true });
}

/** Renames `from` to `to`, copying instead across file systems. */
async function move(from: string, to: string): Promise<void> {
  await fs.mkdir(path.dirname(to), { recursive: true });
  try {
    await fs.rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EXDEV") throw err;
    await fs.cp(from, to, { recursive: true });
    await fs.rm(from, { recursive: true, force: true });
  }
}

async function readMarker(marker: string): Promise<LocalCopy | undefined> {
  const text = await fs.readFile(marker, "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as { digest?: unknown; verified?: unknown; trust?: unknown; signer?: unknown };
    return {
      ...(typeof parsed.digest === "string" ? { digest: parsed.digest } : {}),
      verified: parsed.verified === true,
      ...(typeof parsed.trust === "string" ? { trust: parsed.trust } : {}),
      ...(typeof parsed.signer === "string" ? { signer: parsed.signer } : {}),
    };
  } catch {
    return { verified: false }; // modelkit's empty marker: complete, but not checked by us
  }
}

async function writeMarker(marker: string, copy: LocalCopy): Promise<void> {
  await fs.mkdir(path.dirname(marker), { recursive: true });
  const temp = tempSibling(marker);
  await fs.writeFile(temp, JSON.stringify({ digest: copy.digest, verified: copy.verified, trust: copy.trust, signer: copy.signer }) + "\n");
  await fs.rename(temp, marker);
}

async function exists(file: string): Promise<boolean> {
  return fs.lstat(file).then(
    () => true,
    () => false,
  );
}

/** Bytes of a file, or of every file under a folder. */
async function sizeOf(file: string): Promise<number> {
  const stat = await fs.lstat(file).catch(() => undefined);
  if (!stat?.isDirectory()) return stat?.size ?? 0;
  const entries = await fs.readdir(file);
  let total = 0;
  for (const entry of entries) total += await sizeOf(path.join(file, entry));
  return total;
}

/**
 * The version whose fetch left `entry` beside the versions of an asset, or undefined when it is no leftover:
 * a temporary sibling `.<version>` + mark (a copy being assembled, or one moved aside by replace()), or that of
 * a file asset's marker, `..<version>.SUCCESS` + mark.
 */
function leftoverVersion(entry: string): string | undefined {
  const mark = entry.indexOf(TEMP_MARK);
  if (!entry.startsWith(".") || mark < 0) return undefined;
  const base = entry.slice(1, mark);
  if (!base.startsWith(".")) return base;
  // Of hidden files only markers: others (sync's state file) belong to whoever writes them.
  return base.endsWith(".SUCCESS") ? base.slice(1, -".SUCCESS".length) : undefined;
}

/** Every file or folder under the folder `dir` (at any depth, not through a link) whose name carries the temporary mark. */
async function temporaryFiles(dir: string): Promise<string[]> {
  if (
    !(await fs.lstat(dir).then(
      (s) => s.isDirectory(),
      () => false,
    ))
  )
    return [];
  const entries = await fs.readdir(dir, { recursive: true }).catch(() => [] as string[]);
  return entries.filter((e) => path.basename(e).includes(TEMP_MARK)).map((e) => path.join(dir, e));
}
