// An import's source as the import command sees it (what pins its content, how to stage its files locally for
// publishing), and the staging steps the kinds of source share. open-source.ts picks the kind a URI names.
import { createHash } from "node:crypto";
import path from "node:path";
import pMap from "p-map";
import { AssetError } from "../base/errors.ts";
import type { FileEntry, HashingInput, ImportOrigin } from "../registry/manifest.ts";
import type { Store } from "../store/store.ts";
import type { OpenObject, Transfers } from "../transfer/engine.ts";
import { archiveKind, unpack, type UnpackLimits } from "./archive.ts";
import { pathMatcher, type PathFilter } from "./filter.ts";
import { stagedPath } from "./staging.ts";

export interface ImportSettings {
  filter: PathFilter;
  /** Unpack a single .tar, .tar.gz/.tgz or .zip into a folder asset (false: keep the archive as a file). */
  unpack: boolean;
  limits: UnpackLimits;
  transfers: Transfers;
  /** Opens the source's store with the run's tuning (Context.openStore). */
  openStore(uri: string): Promise<Store>;
  env: NodeJS.ProcessEnv;
  /** Bytes staged so far, out of those known to come. */
  onProgress?: (done: number, total: number) => void;
}

export interface Staged {
  /** The local file or folder to publish (inside the staging folder, or the source itself when it is local). */
  path: string;
  /** The source's pins, completed with what only the download tells (an archive's sha256). */
  origin: ImportOrigin;
}

export interface ImportSource {
  /** What pins the source, known before any byte is downloaded; `fingerprint` is set when that pins the content. */
  readonly origin: ImportOrigin;
  /** Downloads (and unpacks) the source into `dir`, a private temporary folder. */
  stage(dir: string): Promise<Staged>;
  /**
   * The files as a publisher's input that copies each one from its store straight into the destination (by the
   * service where it can, else streamed), hashed on the way: no local disk. Only sources that need no unpacking.
   */
  direct?(): HashingInput;
}

/** One object to download: its path in the asset ("" for a single-file asset) and what the source says of it. */
export interface RemoteFile {
  path: string;
  size?: number;
  sha256?: string;
  open: OpenObject;
  /** Names the object in errors. */
  label: string;
}

/**
 * Stages one remote file: downloaded as a single-file asset, or, when it is an archive (by `name` or
 * `contentType`) and unpacking is on, downloaded then unpacked into a folder asset. The origin gains its sha256.
 */
export async function stageFile(
  dir: string,
  file: RemoteFile,
  name: string,
  contentType: string | undefined,
  origin: ImportOrigin,
  settings: ImportSettings,
): Promise<Staged> {
  const kind = settings.unpack ? archiveKind(name, contentType) : undefined;
  const [downloaded] = await downloadAll(path.join(dir, kind ? "archive" : "file"), [file], settings);
  const { sha256, source } = downloaded!;
  if (!kind) return { path: source, origin: { ...origin, sha256 } };
  const files = path.join(dir, "files");
  await unpack(kind, source, files, settings.limits, pathMatcher(settings.filter));
  return { path: files, origin: { ...origin, sha256 } };
}

/**
 * sha256 over the URI, the pins and the settings that shape what is taken from the source (filters, unpacking):
 * equal fingerprints, equal imported content.
 */
export function fingerprint(uri: string, pins: unknown, settings: ImportSettings): string {
  const shaping = [settings.filter.include, settings.filter.exclude, settings.unpack];
  return (
    "sha256:" +
    createHash("sha256")
      .update(JSON.stringify([uri, pins, shaping]))
      .digest("hex")
  );
}

/**
 * Downloads every file into `root` through the transfer engine (parallel, ranged, resumed, hashed in the same
 * pass, checked against the sha256 the source lists when it lists one) and returns each file's place, size and sha256.
 */
export async function downloadAll(root: string, files: RemoteFile[], settings: ImportSettings): Promise<(FileEntry & { source: string })[]> {
  const total = files.reduce((sum, f) => sum + (f.size ?? 0), 0);
  let done = 0;
  const onBytes = (n: number): void => {
    done += n;
    settings.onProgress?.(done, Math.max(total, done));
  };
  // After a failure no file starts and no request opens, and every download in flight has ended before this
  // returns, so the caller can remove `root` without a late write recreating part of it.
  const failed = new AbortController();
  const stopped = (): AssetError => new AssetError("stopped: another file of the import failed");
  const staged = await pMap(
    files,
    async (file): Promise<FileEntry & { source: string }> => {
      if (failed.signal.aborted) throw stopped();
      try {
        const dest = await stagedPath(root, file.path);
        const expected = { ...(file.size !== undefined ? { size: file.size } : {}), ...(file.sha256 !== undefined ? { sha256: file.sha256 } : {}) };
        const open: OpenObject = (range) => (failed.signal.aborted ? Promise.reject(stopped()) : file.open(range));
        const got = await settings.transfers.download(open, dest, expected, file.label, onBytes);
        return { path: file.path, ...got, source: dest };
      } catch (err) {
        if (!failed.signal.aborted) failed.abort(err);
        throw err;
      }
    },
    { concurrency: settings.transfers.settings.concurrency, stopOnError: false },
  ).catch((err: unknown) => {
    throw failed.signal.aborted ? failed.signal.reason : err;
  });
  return staged;
}
