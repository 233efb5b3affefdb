// Unpacking a downloaded .tar, .tar.gz/.tgz or .zip into a folder, safely: every entry's path must stay inside
// the folder (no '..', no absolute path), links, devices and FIFOs are refused, and limits on the total
// unpacked size and the number of entries stop archive bombs. The formats are parsed by tar-stream and yauzl;
// files are hashed as they are written, so the publish needs no second read.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import tarStream from "tar-stream";
import yauzl from "yauzl";
import { AssetError } from "../base/errors.ts";
import type { FileEntry } from "../registry/manifest.ts";
import { relativePathProblem } from "../registry/paths.ts";
import { formatBytes } from "../base/units.ts";
import { stagedPath } from "./staging.ts";

export type ArchiveKind = "tar" | "tar.gz" | "zip";

export interface UnpackLimits {
  /** Total bytes of all unpacked files. */
  maxBytes: number;
  /** Entries of any kind (files and folders). */
  maxEntries: number;
}

const GiB = 1024 ** 3;
export const DEFAULT_UNPACK_LIMITS: UnpackLimits = { maxBytes: 50 * GiB, maxEntries: 100_000 };

/** The archive format of a file, by its name or else its Content-Type; undefined for a plain file. */
export function archiveKind(name: string, contentType?: string): ArchiveKind | undefined {
  const lower = name.toLowerCase();
  if (lower.endsWith(".tar.gz") || lower.endsWith(".tgz")) return "tar.gz";
  if (lower.endsWith(".tar")) return "tar";
  if (lower.endsWith(".zip")) return "zip";
  const type = contentType?.split(";")[0]?.trim().toLowerCase();
  if (type === "application/x-tar") return "tar";
  if (type === "application/x-gtar" || type === "application/x-tgz" || type === "application/x-compressed-tar") return "tar.gz";
  if (type === "application/zip" || type === "application/x-zip-compressed") return "zip";
  return undefined;
}

/** Unpacks `archive` into `dest` (an empty private folder) and returns the publish input of the files kept by `accept`. */
export async function unpack(kind: ArchiveKind, archive: string, dest: string, limits: UnpackLimits, accept: (rel: string) => boolean): Promise<void> {
  const unpacker = new Unpacker(dest, limits, accept);
  if (kind === "zip") await unzip(archive, unpacker);
  else await untar(archive, kind === "tar.gz", unpacker);
  if (unpacker.files.length === 0) throw refused("the archive holds no files to import");
}

type EntryType = "file" | "directory" | "symlink" | "hard link" | "device or FIFO";

class Unpacker {
  readonly files: (FileEntry & { source: string })[] = [];
  private entries = 0;
  private bytes = 0;
  private readonly dest: string;
  private readonly limits: UnpackLimits;
  private readonly accept: (rel: string) => boolean;

  constructor(dest: string, limits: UnpackLimits, accept: (rel: string) => boolean) {
    this.dest = dest;
    this.limits = limits;
    this.accept = accept;
  }

  /** Checks an entry before any of its bytes is read: the relative path to write it at, or undefined to skip it. */
  admit(name: string, type: EntryType, declaredSize: number, linkTarget?: string): string | undefined {
    if (++this.entries > this.limits.maxEntries) throw refused(`the archive has more than ${this.limits.maxEntries} entries (--max-entries)`);
    if (type !== "file" && type !== "directory") {
      const to = linkTarget ? ` to ${JSON.stringify(linkTarget)}` : "";
      throw refused(`archive entry ${JSON.stringify(name)} is a ${type}${to}: links and special files are refused`);
    }
    // Archivers write "./a" and folders as "a/": neither is an escape, so both are normalised first.
    let rel = name;
    while (rel.startsWith("./")) rel = rel.slice(2);
    if (type === "directory") rel = rel.replace(/\/+$/, "");
    if (type === "directory" && (rel === "" || rel === ".")) return undefined;
    const problem = relativePathProblem(rel);
    if (problem) throw refused(`archive entry ${JSON.stringify(name)}: ${problem}`);
    if (type === "directory" || !this.accept(rel)) return undefined;
    this.count(declaredSize);
    return rel;
  }

  /** Writes a file entry, counting its actual bytes against the limit (a header may understate them). */
  async write(rel: string, content: AsyncIterable<Buffer>, declaredSize: number): Promise<void> {
    const file = await stagedPath(this.dest, rel);
    const hash = createHash("sha256");
    let size = 0;
    let overshoot = 0; // bytes past the declared size, already counted
    const counted = async function* (this: void, chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) {
        size += chunk.length;
        if (size - declaredSize > overshoot) {
          count(size - declaredSize - overshoot);
          overshoot = size - declaredSize;
        }
        hash.update(chunk);
        yield chunk;
      }
    };
    const count = (bytes: number): void => this.count(bytes);
    try {
      await pipeline(content, counted, createWriteStream(file, { flags: "wx" }));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "EEXIST") throw refused(`archive entry ${JSON.stringify(rel)} appears twice`);
      throw err;
    }
    this.files.push({ path: rel, size, sha256: hash.digest("hex"), source: file });
  }

  private count(bytes: number): void {
    this.bytes += bytes;
    if (this.bytes > this.limits.maxBytes) throw refused(`the archive unpacks to more than ${formatBytes(this.limits.maxBytes)} (--max-unpacked-size)`);
  }
}

function refused(why: string): AssetError {
  return new AssetError(`cannot import: ${why}; nothing was published`);
}

async function untar(archive: string, gzipped: boolean, unpacker: Unpacker): Promise<void> {
  const extract = tarStream.extract();
  const feeding = pipeline([createReadStream(archive), ...(gzipped ? [createGunzip()] : []), extract]);
  feeding.catch(() => undefined); // awaited below; a failure inside the loop destroys the stream first
  try {
    for await (const entry of extract) {
      const { name, type, size = 0, linkname } = entry.header;
      const rel = unpacker.admit(name, tarType(type), size, linkname);
      if (rel === undefined) entry.resume();
      else await unpacker.write(rel, entry as AsyncIterable<Buffer>, size);
    }
    await feeding;
  } catch (err) {
    extract.destroy();
    throw err instanceof AssetError ? err : refused(`the archive cannot be read (${(err as Error).message})`);
  }
}

function tarType(type: tarStream.Header["type"] | undefined): EntryType {
  switch (type) {
    case "file":
    case "contiguous-file":
    case undefined:
      return "file";
    case "directory":
      return "directory";
    case "symlink":
      return "symlink";
    case "link":
      return "hard link";
    default:
      return "device or FIFO";
  }
}

async function unzip(archive: string, unpacker: Unpacker): Promise<void> {
  let zip: yauzl.ZipFile;
  try {
    zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
      yauzl.open(archive, { lazyEntries: true, autoClose: false }, (err, z) => (err ? reject(err) : resolve(z))),
    );
  } catch (err) {
    throw refused(`the archive cannot be read (${(err as Error).message})`);
  }
  try {
    await new Promise<void>((resolve, reject) => {
      // yauzl refuses absolute and '..' names itself, naming the entry: reported as a refusal.
      zip.on("error", (err: Error) => reject(refused(`archive entry rejected: ${err.message}`)));
      zip.on("end", resolve);
      zip.on("entry", (entry: yauzl.Entry) => {
        unzipEntry(zip, entry, unpacker).then(() => zip.readEntry(), reject);
      });
      zip.readEntry();
    });
  } finally {
    zip.close();
  }
}

async function unzipEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, unpacker: Unpacker): Promise<void> {
  const rel = unpacker.admit(entry.fileName, zipType(entry), entry.uncompressedSize);
  if (rel === undefined) return;
  const content = await new Promise<Readable>((resolve, reject) =>
    zip.openReadStream(entry, (err, s) =>
      err ? reject(refused(`archive entry ${JSON.stringify(entry.fileName)} cannot be read (${err.message})`)) : resolve(s),
    ),
  );
  await unpacker.write(rel, content, entry.uncompressedSize);
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

/** A zip entry's kind, from its name and (when made on Unix) the file mode in its external attributes. */
function zipType(entry: yauzl.Entry): EntryType {
  const mode = (entry.externalFileAttributes >>> 16) & S_IFMT;
  if (entry.fileName.endsWith("/") || mode === S_IFDIR) return "directory";
  if (mode === S_IFLNK) return "symlink";
  if (mode !== 0 && mode !== S_IFREG) return "device or FIFO";
  return "file";
}
