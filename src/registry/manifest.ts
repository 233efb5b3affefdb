// What a version contains: walking and hashing a publisher's input, the asset digest, and the `.meta`
// document (modelkit's keys plus the `assetkit` block), built on publish and validated on every read.
//
// Meta schema 2 adds per-part hashes: a file larger than `part_size` (fixed at PART_SIZE when assetkit writes)
// lists the sha256 of each of its parts, so a download verifies every part on its own, on any core, and re-reads
// only a part that fails. Schema 3 is schema 2 with BLAKE3 part hashes (part-hash.ts): what assetkit writes for
// an asset with such a file (one without any is written as schema 2, which earlier releases read). The part
// hashes, and their algorithm, are inside the asset digest (see assetDigest): a store that rewrites them together
// with the data changes the digest, which the lockfile pins.
//
// Schema 4 is a sharded meta, written for a folder of many files (see storedDocuments): the file entries move into
// shard documents (`<version>.meta.<n>`, written before the `.meta`), which the `.meta` lists with the sha256 of
// each, so no document grows with the file count (none passes the store's document limit). The digest is
// the same as in schemas 2 and 3 (the same files give the same digest, sharded or not). modelkit's `contents` is
// kept while it fits in CONTENTS_BUDGET (modelkit still fetches the version), and left out above it: modelkit then
// fails on the missing key instead of fetching an empty folder.
import { lstatSync, promises as fs, readdirSync } from "node:fs";
import { createHash } from "node:crypto";
import path from "node:path";
import pMap from "p-map";
import { ContentHasher } from "../hashing/content-hash.ts";
import { AssetError, UsageError } from "../base/errors.ts";
import { hashPool } from "../hashing/pool.ts";
import { blake3Kind, partCheckKind, type PartAlgorithm } from "../hashing/part-hash.ts";
import { formatBytes } from "../base/units.ts";
import { comparePaths, relativePathProblem } from "./paths.ts";
import { HashRecord, racySince, STAMP_BYTES, statStamp, type HashRecordOptions } from "./hash-record.ts";
import type { LayoutName } from "./layout.ts";
import type { Store } from "../store/store.ts";

export interface FileEntry {
  /** '/'-separated path inside the version; "" for a single-file asset. */
  path: string;
  size: number;
  sha256: string;
  /** The hash of each `part_size` bytes, for files larger than one part: sha256 (schema 2) or BLAKE3 (schema 3). */
  parts?: string[];
}

/**
 * A file as a meta lists it: with `etag`, the token the store gave its object right after this version stored it
 * (S3 ETag, GCS generation, Azure ETag), which a later publish's server-side copy of it is made conditional on.
 * Not part of the asset digest: a store's token, not content (a promoted copy records its own store's).
 */
export type StoredFileEntry = FileEntry & { etag?: string };

/** The part size of the metas that assetkit writes: fixed, so equal content gives an equal digest. */
export const PART_SIZE = 16 * 1024 * 1024;
/** The smallest part size a meta may name (a smaller one would only multiply requests). */
const MIN_PART_SIZE = 1024;

export interface PreparedInput {
  isDirectory: boolean;
  /** Sorted by path, each with the local file it was read from. */
  files: (FileEntry & { source: string })[];
  digest: string;
  size: number;
  partSize: number;
  /** What the files' `parts` are hashed with: BLAKE3 for what assetkit publishes. */
  partAlgorithm: PartAlgorithm;
}

export interface Provenance {
  /** Who ran the publish (or promotion): the GitHub actor in Actions, the local user elsewhere. */
  actor?: string;
  repository?: string;
  sha?: string;
  ref?: string;
  run_url?: string;
  workflow?: string;
  /** Set by `assetkit import`: where the bytes came from and what pins them there. */
  import?: ImportOrigin;
}

/** The source of an imported version (credentials removed from the URI) and the tokens that pin its content. */
export interface ImportOrigin {
  uri: string;
  /** Hugging Face Hub: the revision asked for, and the commit sha it resolved to. */
  revision?: string;
  commit?: string;
  /** A downloaded archive's (or single file's) sha256. */
  sha256?: string;
  /** Object stores and HTTP: each source object's ETag or generation, by its path in the asset ("" for a single file). */
  etags?: Record<string, string>;
  /** sha256 over the URI and the pins: the same fingerprint means the same source content (--if-changed without a download). */
  fingerprint?: string;
}

export interface AssetMetaDocument {
  push_date: string;
  is_directory: boolean;
  /** Absent only from a sharded meta whose paths would not fit in CONTENTS_BUDGET. */
  contents?: string[];
  assetkit?: {
    schema: 1 | 2 | 3 | 4;
    digest: string;
    /** Schemas 2 to 4: the size of the parts that `parts` hashes. */
    part_size?: number;
    size: number;
    /** Each file's entry, with the store's etag of its object when assetkit recorded it (outside the digest); in shards for schema 4. */
    files: StoredFileEntry[];
    /** Schema 4: what the files' `parts` are hashed with, how many files there are, and the shards holding them, in order. */
    part_algorithm?: PartAlgorithm;
    file_count?: number;
    shards?: MetaShard[];
    /** "content-addressed": the files are kept by their sha256 (layout.ts blobKey), not under the version; absent: modelkit's layout. */
    layout?: "content-addressed";
    created_by: string;
    source: Provenance;
    metadata: Record<string, string>;
  };
  [extra: string]: unknown;
}

/** A shard of a schema-4 meta, as the `.meta` lists it: how many file entries it holds, and the sha256 of its bytes. */
export interface MetaShard {
  files: number;
  sha256: string;
}

/** A validated meta: every path is safe; sizes and hashes are known when assetkit wrote it. */
export interface VersionMeta {
  document: AssetMetaDocument;
  isDirectory: boolean;
  /** In path order (comparePaths), whatever order its writer used. */
  files: { path: string; size?: number; sha256?: string; parts?: string[]; etag?: string }[];
  /** Undefined for metas without checksums (written by modelkit): fetches of them are unverified. */
  digest?: string;
  size?: number;
  /** Schemas 2 and 3: the size of the parts that the files' `parts` hash, and with what. */
  partSize?: number;
  partAlgorithm?: PartAlgorithm;
  /** Where the files are stored (see layout.ts): a meta without checksums is always modelkit's. */
  layout: LayoutName;
}

/** Longer than any store's object token (S3 ETags are 34–38 characters, GCS generations 16 digits). */
const MAX_ETAG_LENGTH = 1024;

/** Local files checked at once (the hash pool itself bounds the hashing). */
const FILE_CONCURRENCY = 64;

/**
 * sha256 over `path NUL size NUL sha256 LF` for every file in path order: equal content, equal digest. A file
 * with part hashes adds `NUL part_size NUL` (schema 2) or `NUL part_size NUL blake3 NUL` (schema 3) and its part
 * hashes joined by "," before the LF, so the digest binds them and their algorithm; an asset with no file larger
 * than one part has the same digest under every schema.
 */
export function assetDigest(files: readonly FileEntry[], partSize?: number, partAlgorithm: PartAlgorithm = "sha256"): string {
  const hash = createHash("sha256");
  const algorithm = partAlgorithm === "blake3" ? "\0blake3" : "";
  // Fed ~64 KiB at a time: an update per file cost ~1 µs each. Files are mostly in path order already (as walked,
  // and as metas list them): sorted only when they are not.
  let pending = "";
  for (const f of inPathOrder(files)) {
    const parts = f.parts ? `\0${partSize}${algorithm}\0${f.parts.join(",")}` : "";
    pending += `${f.path}\0${f.size}\0${f.sha256}${parts}\n`;
    if (pending.length < 65536) continue;
    hash.update(pending);
    pending = "";
  }
  hash.update(pending);
  return `sha256:${hash.digest("hex")}`;
}

/** `files`, or a sorted copy of them when they are not in path order. */
function inPathOrder<F extends { path: string }, L extends readonly F[]>(files: L): L {
  return inOrder(files, (f) => f.path) as L;
}

/** `items`, or a copy sorted by comparePaths of their `pathOf` when they are not in that order. */
function inOrder<T>(items: readonly T[], pathOf: (item: T) => string): readonly T[] {
  for (let i = 1; i < items.length; i++) {
    if (comparePaths(pathOf(items[i - 1]!), pathOf(items[i]!)) > 0) return [...items].sort((a, b) => comparePaths(pathOf(a), pathOf(b)));
  }
  return items;
}

/** The byte ranges [start, end) of a file's parts. */
export function partRanges(size: number, partSize: number): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  for (let start = 0; start < size; start += partSize) out.push({ start, end: Math.min(size, start + partSize) });
  return out;
}

/**
 * Size, sha256 and (above one part) part hashes of a local file, hashed in the worker pool: the whole-file sha256
 * in one worker, the parts (BLAKE3 unless `partAlgorithm` says otherwise) on the others at the same time.
 */
export async function hashFile(
  file: string,
  partSize = PART_SIZE,
  knownSize?: number,
  partAlgorithm: PartAlgorithm = "blake3",
): Promise<Omit<FileEntry, "path">> {
  const size = knownSize ?? (await fs.stat(file)).size;
  const whole = hashPool.hashFile(file, size);
  // Which BLAKE3 runs is asked only for a file with parts: loading the native addon costs a few ms.
  const kind = size > partSize ? (partAlgorithm === "blake3" ? blake3Kind() : "sha256") : undefined;
  const parts = kind ? Promise.all(partRanges(size, partSize).map((r) => hashPool.hashRange(file, r.start, r.end, kind))) : undefined;
  parts?.catch(() => undefined); // awaited below, after the whole-file hash
  const sha256 = await whole;
  return { size, sha256, ...(parts ? { parts: await parts } : {}) };
}

/**
 * The paths of the files of a local copy of a version (`root` is the file itself for a single-file asset) that
 * are missing or differ from the meta. A file with part hashes is checked part by part, on every core, where
 * their hash runs fast here (part-hash.ts); else by its whole sha256. Both are bound to the digest.
 */
export async function changedFiles(root: string, meta: VersionMeta): Promise<string[]> {
  const changed = await pMap(
    meta.files,
    async (want) => ((await matchesEntry(want.path ? path.join(root, ...want.path.split("/")) : root, want, meta)) ? undefined : want.path),
    { concurrency: FILE_CONCURRENCY },
  );
  return changed.filter((p) => p !== undefined);
}

async function matchesEntry(file: string, want: VersionMeta["files"][number], meta: VersionMeta): Promise<boolean> {
  const size = await fs.stat(file).then(
    (s) => (s.isFile() ? s.size : -1),
    () => -1,
  );
  if (size < 0 || (want.size !== undefined && size !== want.size)) return false;
  const kind = want.parts && meta.partAlgorithm && partCheckKind(meta.partAlgorithm);
  if (want.parts && kind) {
    const parts = await Promise.all(partRanges(size, meta.partSize!).map((r) => hashPool.hashRange(file, r.start, r.end, kind)));
    return parts.every((hex, i) => hex === want.parts![i]);
  }
  return want.sha256 === undefined || (await hashPool.hashFile(file, size)) === want.sha256;
}

/** A publisher's input while it is being hashed: what to upload is known at once, the hashes as they come. */
export interface HashingInput {
  isDirectory: boolean;
  /** Sorted by path, with the local file each is read from (or, with `copyTo`, the remote object it names) and its size. */
  files: { path: string; source: string; size: number; copyTo?: CopyTo }[];
  size: number;
  /** The size of the parts that files larger than it list the hashes of. */
  partSize: number;
  /** Each file's hashes, by path, as soon as that file is hashed (undefined for a path it does not have). */
  hashes: { get(path: string): Promise<Omit<FileEntry, "path">> | undefined };
  /** The whole input, once every file is hashed. */
  prepared: Promise<PreparedInput>;
}

/** Writes a file that lives in another store to `key` of the destination, without local disk; its hashes come after. */
export type CopyTo = (destination: Store, key: string) => Promise<void>;

/** How a publisher's input is hashed: what assetkit publishes uses the defaults. */
export interface HashingOptions {
  /** PART_SIZE, or a small one in tests (to cross part boundaries cheaply). */
  partSize?: number;
  /** BLAKE3, or sha256 to recompute a schema-2 digest (a cross-run cache entry of a version published so). */
  partAlgorithm?: PartAlgorithm;
  /** Where the hash record is kept: files found as it records them are not read again (see hash-record.ts). */
  record?: HashRecordOptions;
}

/**
 * Walks a file or folder to publish (refusing what an object store cannot hold faithfully) and starts hashing it
 * in the worker pool: the caller can upload while the hashes are computed. With `record`, a file found as the hash
 * record of this input has it is not read, and the record is rewritten once every file is hashed.
 */
export async function startHashing(
  input: string,
  { partSize = PART_SIZE, partAlgorithm = "blake3", record: recordOptions }: HashingOptions = {},
): Promise<HashingInput> {
  const root = path.resolve(input);
  // Taken before any stat: a file changed after it may have been read half old, half new (see RACY_MARGIN_MS).
  const racy = racySince(recordOptions?.now);
  const stat = await fs.stat(root).catch(() => {
    throw new UsageError(`cannot publish ${input}: no such file or folder`);
  });
  const realRoot = await fs.realpath(root);
  let files: WalkedFile[];
  const walked = new WalkedFiles(root);
  if (stat.isFile()) files = [walked.add("", stat.size, statStamp(stat, racy), root)];
  else if (stat.isDirectory()) files = await walkFolder(walked, realRoot, racy);
  else throw new UsageError(`cannot publish ${input}: not a regular file or folder`);
  if (files.length === 0) throw new UsageError(`cannot publish ${input}: the folder holds no files`);

  // In path order, as they are uploaded: each file's hash is ready about when its upload wants it.
  files.sort((a, b) => comparePaths(a.path, b.path));
  // A record kept inside the input would be published with it, and change it at every run.
  const recordDir = recordOptions && path.resolve(recordOptions.dir);
  const inside = (dir: string): boolean => dir === realRoot || dir.startsWith(realRoot + path.sep) || dir === root || dir.startsWith(root + path.sep);
  const record = recordOptions && !inside(recordDir!) ? new HashRecord(recordOptions, realRoot, { partSize, partAlgorithm }) : undefined;
  const hashes = hashInOrder(
    files,
    (f) => {
      const found = record?.lookup(f.path, f.size, f.stamp);
      if (found) f.recordHashes(found.sha256, found.parts);
      return found !== undefined;
    },
    (f) => hashFile(f.source, partSize, f.size, partAlgorithm),
  );
  const hashing = hashingInput(stat.isDirectory(), files, hashes, partSize, partAlgorithm);
  if (!record) return hashing;
  // The record is rewritten before the input counts as hashed (a failed hashing leaves the old one, closed).
  const prepared = hashing.prepared.then(
    async (done) => {
      // The walked files, hashed in place (done.files are they): their stamps and sha256s as the table holds them.
      const recorded = function* () {
        for (const f of files) yield { path: f.path, stamp: f.stamp, size: f.size, sha256: f.sha256Bytes, ...(f.parts ? { parts: f.parts } : {}) };
      };
      await record.write(recorded(), files.length).catch(() => undefined); // only a cache: the next run hashes again
      return done;
    },
    (err: unknown) => {
      record.close();
      throw err;
    },
  );
  prepared.catch(() => undefined);
  return { ...hashing, prepared };
}

/** Files hashed at once by hashInOrder: enough to keep the hash pool busy. */
const HASH_AHEAD = 256;

/**
 * The files found by a walk, held compactly since a publish holds them all to its end (~640 bytes a file as plain
 * objects with hex hashes and text stamps, ~150 so; see test/registry/walked-files.test.ts): each file's sha256 (32
 * bytes) and stamp (four numbers) are kept in shared chunks, its part hashes and a link's target only for the files
 * that have them, and its local path is made from the walk's root when asked for (see WalkedFile).
 */
class WalkedFiles {
  // In chunks of CHUNK_ROWS files: an array grown by doubling held its old and new copies at once (96 MiB at 1,000,000 files).
  private readonly sha256s: Buffer[] = [];
  private hashed = new Uint8Array(CHUNK_ROWS);
  /** Each file's stamp (see statStamp), four numbers a file; a racy file's is not kept (`stamped` 0). */
  private readonly stamps: Float64Array[] = [];
  private stamped = new Uint8Array(CHUNK_ROWS);
  private count = 0;
  /** The part hashes of the files that have them, by row. */
  private readonly parts = new Map<number, string[]>();
  /** The local file of a link (what it points to), or of a single-file input, by row. */
  private readonly sources = new Map<number, string>();
  /** This table's files: their class knows the table, so that no file holds it (8 bytes each). */
  private readonly File: new (row: number, relPath: string, size: number) => WalkedFile;

  readonly root: string;

  constructor(root: string) {
    this.root = root;
    this.File = fileClassOf(this);
  }

  /** A file at `relPath` (its path in the input) of `size` bytes; `source`: where it is read from, when not root/relPath. */
  add(relPath: string, size: number, stamp: ReturnType<typeof statStamp>, source?: string): WalkedFile {
    const row = this.count++;
    if (row % CHUNK_ROWS === 0) {
      this.sha256s.push(Buffer.alloc(32 * CHUNK_ROWS));
      this.stamps.push(new Float64Array(4 * CHUNK_ROWS));
    }
    if (row === this.hashed.length) {
      this.hashed = grown(this.hashed);
      this.stamped = grown(this.stamped);
    }
    if (stamp) {
      this.stamps[Math.floor(row / CHUNK_ROWS)]!.set(stamp, 4 * (row % CHUNK_ROWS));
      this.stamped[row] = 1;
    }
    if (source !== undefined) this.sources.set(row, source);
    return new this.File(row, relPath, size);
  }

  /** The row's stamp as bytes (a view of its chunk), or undefined when racy. */
  stampOf(row: number): Uint8Array | undefined {
    if (!this.stamped[row]) return undefined;
    const chunk = this.stamps[Math.floor(row / CHUNK_ROWS)]!;
    return new Uint8Array(chunk.buffer, chunk.byteOffset + STAMP_BYTES * (row % CHUNK_ROWS), STAMP_BYTES);
  }

  sourceOf(row: number, relPath: string): string {
    return this.sources.get(row) ?? this.root + path.sep + (path.sep === "/" ? relPath : relPath.replaceAll("/", path.sep));
  }

  sha256Of(row: number): string | undefined {
    const at = 32 * (row % CHUNK_ROWS);
    return this.hashed[row] ? this.sha256s[Math.floor(row / CHUNK_ROWS)]!.toString("hex", at, at + 32) : undefined;
  }

  isHashed(row: number): boolean {
    return this.hashed[row] === 1;
  }

  /** The row's sha256 (a view of its chunk: all zeros until it is hashed). */
  sha256BytesOf(row: number): Uint8Array {
    const at = 32 * (row % CHUNK_ROWS);
    return this.sha256s[Math.floor(row / CHUNK_ROWS)]!.subarray(at, at + 32);
  }

  setSha256(row: number, hex: string): void {
    this.sha256s[Math.floor(row / CHUNK_ROWS)]!.write(hex, 32 * (row % CHUNK_ROWS), 32, "hex");
    this.hashed[row] = 1;
  }

  setSha256Bytes(row: number, sha256: Uint8Array): void {
    this.sha256s[Math.floor(row / CHUNK_ROWS)]!.set(sha256, 32 * (row % CHUNK_ROWS));
    this.hashed[row] = 1;
  }

  partsOf(row: number): string[] | undefined {
    return this.parts.get(row);
  }

  setParts(row: number, parts: string[] | undefined): void {
    if (parts) this.parts.set(row, parts);
    else this.parts.delete(row);
  }
}

/** The files a chunk of WalkedFiles holds: 512 KiB of sha256s and as much of stamps. */
const CHUNK_ROWS = 16384;

/** `array` copied into one twice its length. */
function grown(array: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const larger = new Uint8Array(2 * array.length);
  larger.set(array);
  return larger;
}

/** A class of the files of `table`, which they reach through their prototype. */
function fileClassOf(table: WalkedFiles): new (row: number, relPath: string, size: number) => WalkedFile {
  return class extends WalkedFile {
    protected override get table(): WalkedFiles {
      return table;
    }
  };
}

/**
 * A file found by the walk: its path and size of its own; its stamp for the hash record (see statStamp), where it
 * is read from, and its hashes once hashInOrder has them, from its WalkedFiles (no second record per file). Its
 * hashes are set as properties (hashingInput assigns them), so it is a FileEntry once hashed.
 */
abstract class WalkedFile {
  private readonly row: number;
  readonly path: string;
  size: number;

  constructor(row: number, relPath: string, size: number) {
    this.row = row;
    this.path = relPath;
    this.size = size;
  }

  /** Its table (its class's, see WalkedFiles). */
  protected abstract get table(): WalkedFiles;

  /** Its stamp's bytes (see statStamp), undefined when racy. */
  get stamp(): Uint8Array | undefined {
    return this.table.stampOf(this.row);
  }

  get source(): string {
    return this.table.sourceOf(this.row, this.path);
  }

  get sha256(): string | undefined {
    return this.table.sha256Of(this.row);
  }

  /** Whether its sha256 is known (without making its hex text). */
  get hashed(): boolean {
    return this.table.isHashed(this.row);
  }

  set sha256(hex: string) {
    this.table.setSha256(this.row, hex);
  }

  /** Its sha256 as bytes, as the table holds it (no hex made). */
  get sha256Bytes(): Uint8Array {
    return this.table.sha256BytesOf(this.row);
  }

  /** Sets its hashes as the hash record has them (its sha256 copied from `sha256`'s bytes). */
  recordHashes(sha256: Uint8Array, parts: string[] | undefined): void {
    this.table.setSha256Bytes(this.row, sha256);
    if (parts) this.parts = parts;
  }

  get parts(): string[] | undefined {
    return this.table.partsOf(this.row);
  }

  set parts(parts: string[] | undefined) {
    this.table.setParts(this.row, parts);
  }
}

/**
 * Hashes the files (sorted by path) HASH_AHEAD at a time in their order, writing each one's hashes onto it; `get`
 * gives a file's hashes (the file itself, hashed) by path. `known` (the hash record's) is asked of every file first,
 * in order: a file it knows (it sets its hashes) is not read. Nothing is held per file but what the meta needs: a
 * promise per file for the whole run (100 bytes each with its resolved value and settler) took ~40 MiB for 100,000
 * files, and a hash started for every file at once held a suspended call per file (~3 KiB). Only a file asked for
 * before it is hashed gets a promise.
 */
function hashInOrder(
  files: WalkedFile[],
  known: (file: WalkedFile) => boolean,
  hash: (file: WalkedFile) => Promise<Omit<FileEntry, "path">>,
): HashingInput["hashes"] {
  const waiting = new Map<number, PromiseWithResolvers<Omit<FileEntry, "path">>>();
  const failed = new Map<number, unknown>();
  // The file itself, once hashed (its sha256 is then defined): its hex is made only when read.
  const hashesOf = (file: WalkedFile): Omit<FileEntry, "path"> => file as Omit<FileEntry, "path">;
  const unknown: number[] = [];
  for (let index = 0; index < files.length; index++) if (!known(files[index]!)) unknown.push(index);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < unknown.length) {
      const index = unknown[next++]!;
      const file = files[index]!;
      try {
        const { sha256, parts } = await hash(file);
        file.sha256 = sha256;
        if (parts) file.parts = parts;
        waiting.get(index)?.resolve(hashesOf(file));
      } catch (err) {
        failed.set(index, err); // reaches whoever asks for this file's hashes
        waiting.get(index)?.reject(err);
      }
      waiting.delete(index);
    }
  };
  for (let i = 0; i < Math.min(HASH_AHEAD, unknown.length); i++) void worker();
  // Mostly asked in path order (hashingInput, the uploads).
  const indexOf = pathIndexer(files);
  return {
    get(p) {
      const index = indexOf(p);
      if (index < 0) return undefined;
      if (files[index]!.hashed) return Promise.resolve(hashesOf(files[index]!));
      if (failed.has(index)) return Promise.reject(failed.get(index));
      let waiter = waiting.get(index);
      if (!waiter) waiting.set(index, (waiter = Promise.withResolvers()));
      return waiter.promise;
    },
  };
}

/**
 * Finds items by path in `items` (sorted by comparePaths), for callers that mostly ask in path order: the item after
 * the last one found is tried first, else a binary search (indexOfPath).
 */
export function pathIndexer(items: readonly { path: string }[]): (p: string) => number {
  let last = -1;
  return (p) => {
    const index = items[last + 1]?.path === p ? last + 1 : indexOfPath(items, p);
    if (index >= 0) last = index;
    return index;
  };
}

/** The index of the file at `p` in files sorted by comparePaths, or -1. */
export function indexOfPath(files: readonly { path: string }[], p: string): number {
  return indexByPath(files, p, (f) => f.path);
}

/** The index of the item whose `pathOf` is `p` in items sorted by comparePaths of it, or -1. */
function indexByPath<T>(items: readonly T[], p: string, pathOf: (item: T) => string): number {
  for (let low = 0, high = items.length - 1; low <= high;) {
    const middle = (low + high) >>> 1;
    const order = comparePaths(pathOf(items[middle]!), p);
    if (order === 0) return middle;
    if (order < 0) low = middle + 1;
    else high = middle - 1;
  }
  return -1;
}

/** The input whose files are hashed by `hashes` (sorted here by path); `prepared` resolves once every one is. */
export function hashingInput(
  isDirectory: boolean,
  files: HashingInput["files"],
  hashes: HashingInput["hashes"],
  partSize: number,
  partAlgorithm: PartAlgorithm = "blake3",
): HashingInput {
  files.sort((a, b) => comparePaths(a.path, b.path));
  const prepared = (async (): Promise<PreparedInput> => {
    // One file at a time: an await per file at once held a suspended call per file (~800 bytes) until all were hashed.
    // Each file's hashes go onto its own record (a copy of each was a second record per file for the whole publish);
    // whoever reads the prepared files picks the fields it needs.
    for (const f of files) {
      const hashed = await hashes.get(f.path)!;
      if ((hashed as object) !== f) Object.assign(f, hashed); // a walked file is hashed in place (hashInOrder)
    }
    const entries = files as PreparedInput["files"];
    const digest = assetDigest(entries, partSize, partAlgorithm);
    return { isDirectory, files: entries, digest, size: entries.reduce((sum, f) => sum + f.size, 0), partSize, partAlgorithm };
  })();
  // Awaited by whoever needs them; until then a failure must not count as unhandled.
  prepared.catch(() => undefined);
  return { isDirectory, files, size: files.reduce((sum, f) => sum + f.size, 0), partSize, hashes, prepared };
}

/** The hashes of a stream of `size` bytes, in one pass, as hashFile gives them of a local file. */
export async function hashStream(stream: AsyncIterable<Buffer>, size: number, label: string, partSize = PART_SIZE): Promise<Omit<FileEntry, "path">> {
  const hasher = await ContentHasher.create(partSize);
  for await (const chunk of stream) hasher.update(chunk);
  const hashes = hasher.digest();
  if (hashes.size !== size) throw new AssetError(`${label}: read ${hashes.size} bytes, ${size} expected`);
  return hashes;
}

/** Walks and hashes a file or folder to publish, to the end (see startHashing). */
export async function prepareInput(input: string, options: HashingOptions = {}): Promise<PreparedInput> {
  return (await startHashing(input, options)).prepared;
}

/** An input already hashed, in the shape of one being hashed. */
export function hashedInput(input: PreparedInput): HashingInput {
  const { files } = input;
  const hashes: HashingInput["hashes"] = {
    get(p) {
      const index = indexOfPath(files, p);
      return index < 0 ? undefined : Promise.resolve(files[index]!);
    },
  };
  return { isDirectory: input.isDirectory, files: input.files, size: input.size, partSize: input.partSize, hashes, prepared: Promise.resolve(input) };
}

/**
 * The folder's files with their sizes. Each folder is listed and each entry lstat'ed synchronously: nothing else
 * runs while the input is walked, a promise per stat (a thread-pool round trip each) took 50 ms instead of 12 for
 * 2,000 files, and the lstat that a file needs anyway also says what the entry is (no Dirent per entry, no promise
 * per folder: the walk of 100,000 files took ~20% less CPU).
 */
async function walkFolder(walked: WalkedFiles, realRoot: string, racy: number): Promise<WalkedFile[]> {
  const out: WalkedFile[] = [];
  const visit = async (dir: string, rel: string): Promise<void> => {
    const names = readdirSync(dir);
    if (names.length === 0 && rel !== "") {
      throw new UsageError(`cannot publish the empty folder ${rel}: object stores cannot hold one (add a file or remove it)`);
    }
    for (const name of names) {
      // Joined, not concatenated: a concatenation is a rope (its two pieces and a node, ~100 bytes held for the
      // whole publish), a join one flat string (~50).
      const relPath = rel ? [rel, name].join("/") : name;
      const full = dir + path.sep + name;
      // The name alone: its folder's path was checked as that folder's name was (a name holds no '/').
      const problem = relativePathProblem(name);
      if (problem) throw new UsageError(`cannot publish ${JSON.stringify(relPath)}: ${problem}`);
      const stat = lstatSync(full);
      if (stat.isFile()) out.push(walked.add(relPath, stat.size, statStamp(stat, racy)));
      else if (stat.isDirectory()) await visit(full, relPath);
      else if (stat.isSymbolicLink()) {
        const { source, size, stamp } = await linkedFile(full, relPath, realRoot, racy);
        out.push(walked.add(relPath, size, stamp, source));
      } else throw new UsageError(`cannot publish ${relPath}: not a regular file (socket, FIFO or device)`);
    }
  };
  await visit(walked.root, "");
  return out;
}

/** A link is published as the file it points to, only if that file lies inside the published folder. */
async function linkedFile(
  full: string,
  relPath: string,
  realRoot: string,
  racy: number,
): Promise<{ source: string; size: number; stamp: ReturnType<typeof statStamp> }> {
  const target = await fs.realpath(full).catch(() => {
    throw new UsageError(`cannot publish ${relPath}: the link is broken`);
  });
  if (!target.startsWith(realRoot + path.sep)) throw new UsageError(`cannot publish ${relPath}: the link points outside the published folder`);
  const stat = await fs.stat(target);
  if (!stat.isFile()) throw new UsageError(`cannot publish ${relPath}: links to folders are not supported`);
  return { source: target, size: stat.size, stamp: statStamp(stat, racy) };
}

/** What a meta records besides the files. */
export interface MetaExtras {
  createdBy: string;
  source: Provenance;
  metadata: Record<string, string>;
  now?: Date;
  /** Where the version's files are stored (recorded when content-addressed). */
  layout?: LayoutName;
}

/** The meta of `input`; `etags`: the store's etag of each file's object, by path, where known. */
export function buildMeta(
  input: Omit<PreparedInput, "files"> & { files: readonly FileEntry[] },
  extras: MetaExtras,
  etags: ReadonlyMap<string, string> = new Map(),
): AssetMetaDocument {
  const doc = metaHeader(
    input,
    input.files.some((f) => f.parts),
    extras,
  );
  doc.assetkit!.files = [...metaEntries(input.files, (f) => etags.get(f.path))];
  return doc;
}

/**
 * The documents that store the meta of `input` (see storedDocuments), its file entries made one at a time from
 * `input.files`, each with the etag `etagOf` gives it: no copy of the file list is held while they are written.
 */
export function storedMeta<F extends FileEntry>(
  input: Omit<PreparedInput, "files"> & { files: readonly F[] },
  extras: MetaExtras,
  etagOf: (file: F, index: number) => string | undefined,
): Generator<MetaDocumentBytes> {
  return storedDocuments(
    metaHeader(
      input,
      input.files.some((f) => f.parts),
      extras,
    ),
    { entries: metaEntries(input.files, etagOf), count: input.files.length },
  );
}

/** The meta of `input` without its file entries (`files` empty): what storedDocuments completes. `withParts`: whether a file lists parts. */
function metaHeader(input: Omit<PreparedInput, "files"> & { files: readonly { path: string }[] }, withParts: boolean, extras: MetaExtras): AssetMetaDocument {
  const blake3Parts = input.partAlgorithm === "blake3" && withParts;
  return {
    push_date: (extras.now ?? new Date()).toISOString(),
    is_directory: input.isDirectory,
    contents: input.isDirectory ? modelkitContents(input.files, extras.layout) : [],
    assetkit: {
      schema: blake3Parts ? 3 : 2,
      digest: input.digest,
      size: input.size,
      part_size: input.partSize,
      files: [],
      ...layoutField(extras.layout),
      created_by: extras.createdBy,
      source: extras.source,
      metadata: extras.metadata,
    },
  };
}

/** The block's `layout` key: written only for the content-addressed layout (a modelkit-layout meta stays as before). */
export function layoutField(layout: LayoutName | undefined): { layout?: "content-addressed" } {
  return layout === "content-addressed" ? { layout } : {};
}

/** The document with its files kept in `layout` (a promoted copy may change it): the block's `layout` key set or removed. */
export function withLayout(doc: AssetMetaDocument, layout: LayoutName): AssetMetaDocument {
  if (!doc.assetkit) return doc;
  const { layout: _was, ...block } = doc.assetkit;
  return { ...doc, assetkit: { ...block, ...layoutField(layout) } };
}

/** Each file's meta entry, made as it is asked for, with the etag `etagOf` gives it. */
function* metaEntries<F extends FileEntry>(files: readonly F[], etagOf: (file: F, index: number) => string | undefined): Generator<StoredFileEntry> {
  for (const [i, f] of files.entries())
    yield { path: f.path, size: f.size, sha256: f.sha256, ...(f.parts ? { parts: f.parts } : {}), ...withEtag(etagOf(f, i)) };
}

function withEtag(etag: string | undefined): { etag?: string } {
  return etag ? { etag } : {};
}

/** The document with its files' etags replaced by `etags` (a promoted copy's, in its own store): none where unknown. */
export function withStoredEtags(doc: AssetMetaDocument, etags: ReadonlyMap<string, string>): AssetMetaDocument {
  if (!doc.assetkit) return doc;
  return { ...doc, assetkit: { ...doc.assetkit, files: [...restoredEtags(doc.assetkit.files, (f) => etags.get(f.path))] } };
}

/** The entries with their etags replaced by what `etagOf` gives, made one at a time. */
function* restoredEtags(files: readonly StoredFileEntry[], etagOf: (file: StoredFileEntry) => string | undefined): Generator<StoredFileEntry> {
  for (const { etag: _theirs, ...f } of files) yield { ...f, ...withEtag(etagOf(f)) };
}

/** A meta as it is stored, whole (unsharded: see storedDocuments). */
export function metaBytes(meta: AssetMetaDocument): Buffer {
  return Buffer.from(JSON.stringify(meta, null, 2) + "\n");
}

/** Default of metaShardFiles: a meta of 10,000 files of short paths takes ~2.5 MB, read in ~50 ms. */
const DEFAULT_SHARD_FILES = 10_000;
/** A shard is closed once it takes this many bytes (a file with many part hashes takes kilobytes). */
const SHARD_BYTES = 4 * 1024 * 1024;
/** The most bytes of `contents` a sharded meta keeps for modelkit: ~200,000 paths of 30 characters. */
const CONTENTS_BUDGET = 8 * 1024 * 1024;

/**
 * The file count above which a meta is sharded, and the most file entries in a shard: ASSETKIT_META_SHARD_FILES
 * (a positive integer; tests set a small one to shard a few files), else 10,000.
 */
export function metaShardFiles(): number {
  const set = process.env.ASSETKIT_META_SHARD_FILES;
  if (set === undefined || set === "") return DEFAULT_SHARD_FILES;
  const count = Number(set);
  if (!Number.isSafeInteger(count) || count < 1) throw new UsageError(`ASSETKIT_META_SHARD_FILES=${set} is not a positive whole number`);
  return count;
}

/** A document that stores a meta: shard `shard` of it, or (shard undefined) the `.meta` itself. */
export interface MetaDocumentBytes {
  shard?: number;
  bytes: Buffer;
}

/** A meta's file entries, made one at a time, and how many there are. */
export interface MetaEntries {
  entries: Iterable<StoredFileEntry>;
  count: number;
}

/**
 * The documents that store `doc`, in the order they must be written: its shards, then the `.meta`, which lists
 * them. A folder asset is sharded above metaShardFiles() files, or when its meta would pass SHARD_BYTES (long
 * paths, many part hashes); a single file never is. Its file entries are `listed` (by default, `doc`'s own list),
 * which a large meta takes one at a time: generated one at a time, only one shard's entries and bytes are held.
 */
export function* storedDocuments(doc: AssetMetaDocument, listed?: MetaEntries): Generator<MetaDocumentBytes> {
  const block = doc.assetkit;
  const shardFiles = metaShardFiles();
  let entries = listed?.entries ?? block?.files ?? [];
  const count = listed?.count ?? block?.files.length ?? 0;
  // Schema 1 (no part_size) is kept as it was written: schema 4 is sharded schema 2 or 3.
  const shardable = block !== undefined && block.schema !== 1 && doc.is_directory;
  if (!shardable || count <= shardFiles) {
    const files = [...entries];
    entries = files;
    const whole = metaBytes(block ? { ...doc, assetkit: { ...block, files } } : doc);
    // A folder of few files with long paths or many part hashes is sharded too, so no document grows with it.
    if (!shardable || whole.length <= SHARD_BYTES) {
      yield { bytes: whole };
      return;
    }
  }
  const shards: MetaShard[] = [];
  let shardEntries: string[] = [];
  let bytes = 0;
  const close = (): MetaDocumentBytes => {
    const data = Buffer.from(`{"files":[\n${shardEntries.join(",\n")}\n]}\n`);
    shards.push({ files: shardEntries.length, sha256: createHash("sha256").update(data).digest("hex") });
    shardEntries = [];
    bytes = 0;
    return { shard: shards.length - 1, bytes: data };
  };
  for (const file of entries) {
    const entry = JSON.stringify(file);
    shardEntries.push(entry);
    bytes += Buffer.byteLength(entry) + 2;
    if (closesShard(shardEntries.length, bytes, shardFiles)) yield close();
  }
  if (shardEntries.length > 0) yield close();
  yield { bytes: shardedIndexBytes(doc, count, shards) };
}

/** Whether a shard of `entries` entries taking `bytes` (each entry's JSON and its separator) is closed. */
function closesShard(entries: number, bytes: number, shardFiles: number): boolean {
  return entries >= shardFiles || bytes >= SHARD_BYTES;
}

/** The `.meta` of a sharded `doc` (its block's files left out) of `count` files in `shards`: schema 4. */
function shardedIndexBytes(doc: AssetMetaDocument, count: number, shards: MetaShard[]): Buffer {
  const { files: _files, schema, ...rest } = doc.assetkit!;
  const sharded: Partial<AssetMetaDocument> = {
    ...doc,
    assetkit: { schema: 4, ...rest, part_algorithm: schema === 3 ? "blake3" : "sha256", file_count: count, shards, files: [] },
  };
  // modelkit cannot fetch a content-addressed version: its `contents` would only be bytes sent again at every version.
  if (!(doc.is_directory && doc.contents && rest.layout === undefined && fitsInBudget(doc.contents))) delete sharded.contents;
  return Buffer.from(JSON.stringify(sharded, null, 2) + "\n");
}

/** Whether the paths take at most CONTENTS_BUDGET bytes as JSON (counted until they pass it). */
function fitsInBudget(paths: Iterable<string>): boolean {
  let bytes = 2;
  for (const p of paths) if ((bytes += JSON.stringify(p).length + 1) > CONTENTS_BUDGET) return false;
  return true;
}

/**
 * The `contents` (modelkit's list of paths) of a folder's meta, or undefined where storedDocuments would leave it
 * out: a meta sure to be sharded keeps it only in modelkit's layout and within CONTENTS_BUDGET (an array of
 * 1,000,000 paths, 8 MB, was otherwise made at the end of a publish to be dropped).
 */
function modelkitContents(files: readonly { path: string }[], layout: LayoutName | undefined): string[] | undefined {
  const paths = function* (): Generator<string> {
    for (const f of files) yield f.path;
  };
  if (files.length > metaShardFiles() && (layout === "content-addressed" || !fitsInBudget(paths()))) return undefined;
  return files.map((f) => f.path);
}

/** The largest of the documents that store `doc` (see storedDocuments): what must fit under a reader's limit. */
function largestStoredDocument(doc: AssetMetaDocument, listed?: MetaEntries): number {
  let largest = 0;
  for (const { bytes } of storedDocuments(doc, listed)) largest = Math.max(largest, bytes.length);
  return largest;
}

/**
 * The meta as one document (files inline, schema 2 or 3), whatever schema it was read from: what a promotion
 * rewrites with its own store's etags before storing it again (sharded again when it is large).
 */
export function inlineDocument(meta: VersionMeta): AssetMetaDocument {
  const doc = meta.document;
  const block = doc.assetkit;
  if (block?.schema !== 4) return doc;
  const { part_algorithm, file_count: _count, shards: _shards, ...rest } = block;
  const files = meta.files as StoredFileEntry[];
  const schema = part_algorithm === "blake3" && files.some((f) => f.parts) ? 3 : 2;
  return { ...doc, contents: doc.is_directory ? files.map((f) => f.path) : [], assetkit: { ...rest, schema, files } };
}

/**
 * The longest etag a store records for an object (S3's multipart form: quoted 32 hex digits and a part count up to
 * 10,000; GCS generations and Azure etags are shorter): the meta's size bound counts it for every file, since the
 * etags are known only once the objects are stored.
 */
const LONGEST_ETAG = `"${"0".repeat(32)}-10000"`;

/**
 * The size of the largest document that stores `doc` once each file has its store's etag (the `.meta`, or its
 * largest shard): exact but for etags, counted at their longest.
 */
export function metaSizeBound(doc: AssetMetaDocument): number {
  const files = doc.assetkit?.files ?? [];
  return largestStoredDocument(doc, { entries: restoredEtags(files, () => LONGEST_ETAG), count: files.length });
}

/**
 * The size bound (metaSizeBound) of the meta that publishing `input` writes, known before any file is hashed (so
 * before any upload): every hash in it is hex of one length, so placeholders of that length take the same bytes.
 * Its entries are made one at a time, as they are when the meta is written.
 */
export function expectedMetaSize(input: Pick<HashingInput, "isDirectory" | "files" | "size" | "partSize">, extras: MetaExtras): number {
  const hex = "0".repeat(64);
  const partCount = (size: number): number => (size > input.partSize ? Math.ceil(size / input.partSize) : 0);
  const header = metaHeader(
    { isDirectory: input.isDirectory, files: input.files, digest: `sha256:${hex}`, size: input.size, partSize: input.partSize, partAlgorithm: "blake3" },
    input.files.some((f) => f.size > input.partSize),
    extras,
  );
  if (input.isDirectory && input.files.length > metaShardFiles()) return shardedMetaSize(header, input.files, partCount);
  const entries = (function* () {
    for (const f of input.files) {
      const parts = partCount(f.size);
      yield { path: f.path, size: f.size, sha256: hex, ...(parts ? { parts: Array<string>(parts).fill(hex) } : {}), etag: LONGEST_ETAG };
    }
  })();
  return largestStoredDocument(header, { entries, count: input.files.length });
}

/**
 * expectedMetaSize of a meta sure to be sharded (more files than metaShardFiles()), without serializing an entry:
 * a placeholder entry's JSON takes a fixed length plus its path's, its size's digits and its part hashes', so the
 * shards are cut by those lengths as storedDocuments cuts them (serializing 100,000 stand-in entries took ~250 ms
 * of a republish). Shard digests are hex of one length: placeholders give the `.meta` its exact size.
 */
function shardedMetaSize(header: AssetMetaDocument, files: readonly { path: string; size: number }[], partCount: (size: number) => number): number {
  const hex = "0".repeat(64);
  // The fixed part: an entry with an empty path ("") and a one-digit size; a part hash adds its quoted hex and a comma.
  const fixed = JSON.stringify({ path: "", size: 0, sha256: hex, etag: LONGEST_ETAG }).length - 3;
  const partsKey = JSON.stringify({ parts: [] }).length - 2 + 1; // `,"parts":[]`: the comma before it
  const entryBytes = (f: { path: string; size: number }): number => {
    const parts = partCount(f.size);
    const path = Buffer.byteLength(JSON.stringify(f.path));
    return fixed + path + String(f.size).length + (parts ? partsKey + parts * (hex.length + 3) - 1 : 0);
  };
  const shardFiles = metaShardFiles();
  const shards: MetaShard[] = [];
  let largest = 0;
  let [entries, bytes] = [0, 0];
  const close = (): void => {
    // `{"files":[\n` + entries joined by `,\n` + `\n]}\n`: `bytes` counts 2 after each entry, one separator too many.
    largest = Math.max(largest, Buffer.byteLength('{"files":[\n\n]}\n') + bytes - 2);
    shards.push({ files: entries, sha256: hex });
    [entries, bytes] = [0, 0];
  };
  for (const f of files) {
    entries++;
    bytes += entryBytes(f) + 2;
    if (closesShard(entries, bytes, shardFiles)) close();
  }
  if (entries > 0) close();
  return Math.max(largest, shardedIndexBytes(header, files.length, shards).length);
}

/**
 * Why a version whose largest meta document (see metaSizeBound) takes `bytes` cannot be stored, or undefined:
 * readers refuse a document over `limit` (they hold it whole), so no fetch could ever read that version. Shards
 * keep every document small whatever the file count: only huge metadata, or a meta of very long paths or very
 * many part hashes, can pass it.
 */
export function metaSizeProblem(bytes: number, files: number, limit: number): string | undefined {
  if (bytes <= limit) return undefined;
  return (
    `its meta would take a document of ${formatBytes(bytes)} (${bytes} bytes) for ${files} file(s), over the ${formatBytes(limit)} a store document may take, ` +
    `so no fetch could read it: shorten its metadata, or publish the files as several assets`
  );
}

/**
 * Reads shard `index` of a sharded meta (listed as `shard`; `layout`: the meta's, which says where its shards lie):
 * its bytes, or undefined when the store has no such object.
 */
export type MetaShardReader = (index: number, shard: MetaShard, layout: LayoutName) => Promise<Buffer | undefined>;

/** Shards read at once: enough to hide a round trip, few enough that their entries stay a bounded window. */
const SHARD_READ_CONCURRENCY = 4;

/**
 * Parses and validates a `.meta` read from a store, with its shards when it is sharded; `where` names it in errors.
 * `etags: false` leaves a sharded meta's etags out of its files as each shard is read: only a publish copying from
 * the version uses them, and at 1,000,000 files they held ~60 MiB.
 */
export async function readMeta(data: Buffer, where: string, readShard: MetaShardReader, { etags = true } = {}): Promise<VersionMeta> {
  const doc = parseDocument(data, where);
  const sharded = doc.assetkit?.schema === 4 ? await readShards(doc, where, readShard, etags) : undefined;
  return validateMeta(doc, where, sharded);
}

/** Parses and validates a `.meta` that lists its files inline (any schema but 4); `where` names it in errors. */
export function parseMeta(data: Buffer, where: string): VersionMeta {
  return validateMeta(parseDocument(data, where), where);
}

function isEntryWithEtag(f: unknown): f is { etag: unknown } {
  return typeof f === "object" && f !== null && "etag" in f;
}

function withoutEtag({ etag: _etag, ...entry }: { etag: unknown }): object {
  return entry;
}

function invalid(where: string, why: string): never {
  throw new AssetError(`${where} is not a valid asset meta: ${why}`);
}

function parseDocument(data: Buffer, where: string): AssetMetaDocument {
  let doc: AssetMetaDocument;
  try {
    doc = JSON.parse(data.toString("utf8")) as AssetMetaDocument;
  } catch {
    return invalid(where, "not JSON");
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) invalid(where, "not a JSON object");
  return doc;
}

/**
 * The `.meta` document as stored, validated, without reading a sharded meta's shards (their list is checked): what
 * `show` prints, in one read whatever the file count.
 */
export function parseMetaDocument(data: Buffer, where: string): AssetMetaDocument {
  const doc = parseDocument(data, where);
  if (doc.assetkit?.schema !== 4) return validateMeta(doc, where).document;
  listedShards(doc, where);
  return doc;
}

/** The shards a sharded meta lists, checked: each with its file count and sha256, together its file count. */
function listedShards(doc: AssetMetaDocument, where: string): MetaShard[] {
  const bad = (why: string): never => invalid(where, why);
  const { shards, file_count: count } = doc.assetkit!;
  if (!Array.isArray(shards) || shards.length === 0) return bad("a sharded meta lists no shards");
  if (!shards.every((s) => Number.isSafeInteger(s?.files) && s.files > 0 && typeof s.sha256 === "string" && /^[0-9a-f]{64}$/.test(s.sha256))) {
    bad("a shard is not listed with its file count and sha256");
  }
  if (shards.reduce((sum, s) => sum + s.files, 0) !== count) bad(`its shards do not hold its ${JSON.stringify(count)} files`);
  return shards;
}

/** The file entries of a sharded meta, from its shards in order, each checked against the sha256 the meta lists. */
async function readShards(doc: AssetMetaDocument, where: string, readShard: MetaShardReader, etags: boolean): Promise<unknown[]> {
  const bad = (why: string): never => invalid(where, why);
  const layout = doc.assetkit!.layout ?? "modelkit";
  const entries = await pMap(
    listedShards(doc, where),
    async (shard, index) => {
      const data = await readShard(index, shard, layout);
      if (!data) return bad(`its shard ${index} is missing`);
      if (createHash("sha256").update(data).digest("hex") !== shard.sha256) bad(`its shard ${index} does not match its sha256`);
      let files: unknown;
      try {
        files = (JSON.parse(data.toString("utf8")) as { files?: unknown }).files;
      } catch {
        return bad(`its shard ${index} is not JSON`);
      }
      if (!Array.isArray(files) || files.length !== shard.files) bad(`its shard ${index} does not hold ${shard.files} files`);
      // Copied while only this shard's entries are parsed: a copy of every entry at the end would double the peak.
      return etags ? (files as unknown[]) : (files as unknown[]).map((f) => (isEntryWithEtag(f) ? withoutEtag(f) : f));
    },
    { concurrency: SHARD_READ_CONCURRENCY },
  );
  return entries.flat();
}

/** Validates a parsed meta; `sharded`: the file entries read from its shards (schema 4). */
function validateMeta(doc: AssetMetaDocument, where: string, sharded?: unknown[]): VersionMeta {
  const bad = (why: string): never => invalid(where, why);
  if (typeof doc.is_directory !== "boolean") bad("is_directory is missing or not a boolean");
  // modelkit writes `contents` only for folder assets; a sharded meta leaves it out when it is too long.
  if (doc.contents === undefined && !doc.is_directory) doc.contents = [];
  if (doc.contents === undefined && !sharded) bad("contents is not a list of paths");
  const contents = doc.contents ?? [];
  if (!Array.isArray(contents) || contents.some((c) => typeof c !== "string")) bad("contents is not a list of paths");
  if (doc.is_directory && contents.length === 0 && !sharded) bad("a folder asset lists no contents");

  const block = doc.assetkit;
  // With an assetkit block, contents must list its files' paths, which are checked below: checked once, not twice.
  if (block === undefined) {
    for (const rel of contents) {
      const problem = relativePathProblem(rel);
      if (problem) bad(`unsafe path ${JSON.stringify(rel)} in contents: ${problem}`);
    }
    const clash = pathClash(contents);
    if (clash) bad(clash);
    const files = doc.is_directory ? inPathOrder(contents.map((p) => ({ path: p }))) : [{ path: "" }];
    return { document: doc, isDirectory: doc.is_directory, files, layout: "modelkit" };
  }
  if (typeof block !== "object" || block === null || !Array.isArray(block.files)) bad("the assetkit block has no files list");
  if (block.schema !== 1 && block.schema !== 2 && block.schema !== 3 && block.schema !== 4) {
    bad(`its schema ${JSON.stringify(block.schema)} is not one this assetkit reads (1 to 4): upgrade assetkit`);
  }
  if (block.layout !== undefined && block.layout !== "content-addressed")
    bad(`its layout ${JSON.stringify(block.layout)} is not one this assetkit reads: upgrade assetkit`);
  if ((block.schema === 4) !== (sharded !== undefined)) bad(block.schema === 4 ? "its shards were not read" : "it is not sharded");
  const partSize = block.schema === 1 ? undefined : block.part_size;
  const partAlgorithm: PartAlgorithm | undefined =
    block.schema === 1 ? undefined : block.schema === 4 ? block.part_algorithm : block.schema === 3 ? "blake3" : "sha256";
  if (partAlgorithm !== undefined && partAlgorithm !== "blake3" && partAlgorithm !== "sha256") bad(`bad part_algorithm ${JSON.stringify(partAlgorithm)}`);
  if (block.schema !== 1 && !(Number.isSafeInteger(partSize) && partSize! >= MIN_PART_SIZE)) bad(`bad part_size ${JSON.stringify(partSize)}`);
  const files = ((sharded ?? block.files) as StoredFileEntry[]).map((f) => {
    if (typeof f?.path !== "string") bad("a file entry has no path");
    const problem = doc.is_directory ? relativePathProblem(f.path) : f.path === "" ? undefined : "a single-file asset's path must be empty";
    if (problem) bad(`unsafe path ${JSON.stringify(f.path)}: ${problem}`);
    if (!Number.isSafeInteger(f.size) || f.size < 0) bad(`bad size for ${JSON.stringify(f.path)}`);
    if (typeof f.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(f.sha256)) bad(`bad sha256 for ${JSON.stringify(f.path)}`);
    const large = partSize !== undefined && f.size > partSize;
    const parts = f.parts;
    if (large !== (parts !== undefined)) bad(`${JSON.stringify(f.path)} must list part hashes exactly when it is larger than part_size`);
    if (
      parts !== undefined &&
      !(Array.isArray(parts) && parts.length === Math.ceil(f.size / partSize!) && parts.every((p) => typeof p === "string" && /^[0-9a-f]{64}$/.test(p)))
    ) {
      bad(`bad part hashes for ${JSON.stringify(f.path)}`);
    }
    if (f.etag !== undefined && !(typeof f.etag === "string" && f.etag.length > 0 && f.etag.length <= MAX_ETAG_LENGTH))
      bad(`bad etag for ${JSON.stringify(f.path)}`);
    // An entry with no other key is kept as parsed: a copy of each doubled the peak memory of reading a large meta.
    const known = 3 + (parts ? 1 : 0) + (f.etag !== undefined ? 1 : 0);
    return Object.keys(f).length === known ? f : { path: f.path, size: f.size, sha256: f.sha256, ...(parts ? { parts } : {}), ...withEtag(f.etag) };
  });
  if (!doc.is_directory && files.length !== 1) bad("a single-file asset must list exactly one file");
  const filesClash = pathClash(files.map((f) => f.path));
  if (filesClash) bad(`in the assetkit files list, ${filesClash}`);
  // A sharded meta without contents leaves nothing to compare.
  if (doc.is_directory && contents.length > 0 && !samePaths(files, contents)) {
    bad("contents and the assetkit files list disagree");
  }
  if (assetDigest(files, partSize, partAlgorithm) !== block.digest) bad("its digest does not match its files list");
  return {
    document: doc,
    isDirectory: doc.is_directory,
    // As assetkit writes them; another writer's order is not trusted (files are found by binary searches).
    files: inPathOrder(files),
    digest: block.digest,
    size: block.size,
    ...(partSize !== undefined ? { partSize, partAlgorithm } : {}),
    layout: block.layout ?? "modelkit",
  };
}

/**
 * Whether a version (its validated meta) holds exactly the files of `input`: the same paths, sizes and whole-file
 * sha256 (bound to the version's digest). Unlike comparing digests, it holds whatever meta schema either used.
 */
export function sameContent(meta: VersionMeta, input: PreparedInput): boolean {
  if (meta.isDirectory !== input.isDirectory || meta.files.length !== input.files.length) return false;
  // Both in path order (the input is sorted; paths are unique in each), so compared side by side.
  const listed = inPathOrder(meta.files);
  return input.files.every((f, i) => {
    const want = listed[i]!;
    return want.path === f.path && want.sha256 !== undefined && want.size === f.size && want.sha256 === f.sha256;
  });
}

/** Whether the files have exactly the paths `paths`, in any order (compared in path order: no copy when both are in it already). */
function samePaths(files: readonly { path: string }[], paths: readonly string[]): boolean {
  if (files.length !== paths.length) return false;
  const sortedFiles = inPathOrder(files);
  const sortedPaths = inOrder(paths, (p) => p);
  return sortedFiles.every((f, i) => f.path === sortedPaths[i]);
}

/**
 * Why a list of file paths cannot all exist at once in a folder (a path listed twice, or both a file and a folder),
 * or undefined. Checked in path order (a meta's already is): a path listed twice is next to itself, and each folder
 * is looked up among the paths once, by a binary search; a set of 1,000,000 paths held ~30 MiB more.
 */
function pathClash(paths: readonly string[]): string | undefined {
  const sorted = inOrder(paths, (p) => p);
  for (let i = 1; i < sorted.length; i++) if (sorted[i] === sorted[i - 1]) return `${JSON.stringify(sorted[i])} is listed twice`;
  let checked = "";
  for (const p of sorted) {
    const folderOf = p.slice(0, Math.max(0, p.lastIndexOf("/")));
    if (folderOf === checked) continue; // as were its folders, for the path before it in the same folder
    checked = folderOf;
    for (let slash = p.indexOf("/"); slash >= 0; slash = p.indexOf("/", slash + 1)) {
      const folder = p.slice(0, slash);
      if (indexByPath(sorted, folder, (path) => path) >= 0) return `${JSON.stringify(folder)} is both a file and the folder of ${JSON.stringify(p)}`;
    }
  }
  return undefined;
}
