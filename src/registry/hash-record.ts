// The hash record: the hashes of a publisher's input files, by how each file was found on disk (size, mtime and
// ctime in ns, inode, device), kept between runs so that a file found the same is not read again (as git's index
// and DVC's state db do). One record per input (its real path) and hashing scheme (part size and algorithm), in the
// assets dir's `.assetkit/hashes/`. It only saves reading: what a version holds is still decided by the hashes.
//
// Format: blocks of [u32 length][u32 crc32][payload], little-endian. The first payload is MAGIC and a JSON header
// (the format, the input, the scheme); the others hold entries in path order (comparePaths): u32 path length,
// the path (UTF-8), the stamp (STAMP_BYTES: statStamp's four f64), f64 size, the sha256 (32 bytes), u32 part count
// and each part hash (32 bytes). Stamps and hashes stay binary from the stat and the record to the walk's table
// (format 1 kept them as text: ~8 hex or decimal conversions a file, ~0.5 s of CPU in a republish of 100,000). It
// is read a block at a time beside the files, which are looked up in the same order, so memory stays bounded
// whatever the file count; written whole to a temporary sibling, then renamed into place. A record that is
// unreadable, of another format or another input is ignored (and rewritten); a block that fails its crc32 ends the
// reading there (the files after it are hashed).
import { closeSync, openSync, promises as fs, readSync, type Stats } from "node:fs";
import { createHash } from "node:crypto";
import path from "node:path";
import { tempSibling } from "../base/temp-path.ts";
import type { PartAlgorithm } from "../hashing/part-hash.ts";

/** Where records are kept, and (tests) the clock the racy rule reads, in ms since the epoch. */
export interface HashRecordOptions {
  dir: string;
  now?: () => number;
}

/** What a record is for: the input's real path and how its files are hashed. */
interface RecordHeader {
  format: number;
  root: string;
  partSize: number;
  partAlgorithm: PartAlgorithm;
}

const MAGIC = "assetkit hash record\n";
const FORMAT = 2;
/** A stamp's bytes: statStamp's four numbers as f64, little-endian (as a Float64Array holds them here). */
export const STAMP_BYTES = 32;
/** Entries are written in blocks of about this many bytes (a block holds at least one entry, however large). */
const BLOCK_BYTES = 64 * 1024;
/** A block longer than this is taken for damage (one entry would need 8 million part hashes: a 128 TiB file). */
const MAX_BLOCK_BYTES = 256 * 1024 * 1024;
/** zlib's crc32, loaded at first use: zlib costs every start-up ~4 ms of CPU, and most commands keep no record. */
const crc32 = (data: Uint8Array): number => process.getBuiltinModule("node:zlib").crc32(data);
/**
 * Racy files: a file changed this close to (or after) the moment its stat was taken is not recorded. A write
 * within the same clock tick as that stat (a jiffy for the kernel's coarse clock, 1–2 s on FAT or HFS+) leaves
 * size, mtime and ctime as they were, so the stat cannot tell; such a file is read again next time instead.
 */
export const RACY_MARGIN_MS = 2000;

/**
 * How the record sees a file: its mtime and ctime in ms (fractional, ~0.25 µs apart today: finer than the kernel's
 * coarse clock that stamps files), inode and device, or undefined when it is racy (see RACY_MARGIN_MS) and must not
 * be trusted. From a plain stat, not a bigint one: its BigInts (ten a file) were most of the walk's garbage. An
 * inode past 2^53 loses its low bits, so a file could be mistaken only with the same size and times besides.
 */
export function statStamp(stat: Stats, racySinceMs: number): readonly [number, number, number, number] | undefined {
  if (stat.mtimeMs >= racySinceMs || stat.ctimeMs >= racySinceMs) return undefined;
  return [stat.mtimeMs, stat.ctimeMs, stat.ino, stat.dev];
}

/** The time (ms since the epoch) from which a file's change makes it racy, for stats taken from now on. */
export function racySince(now: () => number = Date.now): number {
  return now() - RACY_MARGIN_MS;
}

/** A file's hashes as the record has them: `sha256` is a view of the block read, valid until the next lookup. */
export interface RecordedHashes {
  sha256: Uint8Array;
  parts?: string[];
}

/** A file to record: its stamp's bytes (STAMP_BYTES; undefined when racy: not recorded) and its hashes. */
export interface RecordedFile {
  path: string;
  stamp: Uint8Array | undefined;
  size: number;
  sha256: Uint8Array;
  parts?: readonly string[];
}

/** The record of the input `root` (a real path) hashed by `scheme`, to look files up in and to rewrite. */
export class HashRecord {
  private readonly file: string;
  private readonly header: RecordHeader;
  private reader: BlockReader | undefined;
  private hits = 0;

  constructor(options: HashRecordOptions, root: string, scheme: { partSize: number; partAlgorithm: PartAlgorithm }) {
    this.header = { format: FORMAT, root, partSize: scheme.partSize, partAlgorithm: scheme.partAlgorithm };
    const key = createHash("sha256").update(JSON.stringify(this.header)).digest("hex").slice(0, 32);
    this.file = path.join(options.dir, key);
    this.reader = BlockReader.open(this.file, (header) => JSON.stringify(header) === JSON.stringify(this.header));
  }

  /**
   * The recorded hashes of the file at `relPath` if it is found as recorded (same size and stamp), else undefined.
   * Files must be looked up in path order (comparePaths), each once: the record is read along.
   */
  lookup(relPath: string, size: number, stamp: Uint8Array | undefined): RecordedHashes | undefined {
    const entry = this.reader?.seek(relPath);
    if (!entry || stamp === undefined || entry.size !== size || !this.reader!.stampIs(entry, stamp)) return undefined;
    this.hits++;
    return this.reader!.hashes(entry);
  }

  /** Done looking up: the record file is closed. */
  close(): void {
    this.reader?.close();
    this.reader = undefined;
  }

  /**
   * Writes the record of `files` (in path order; a racy one, its stamp undefined, is left out), unless it would be
   * the one read: every file was found as recorded, and the record held no other. Errors are the caller's to ignore.
   */
  async write(files: Iterable<RecordedFile>, fileCount: number): Promise<void> {
    const unchanged = this.hits === fileCount && this.reader?.atEnd() === true;
    this.close();
    if (unchanged) return;
    await fs.mkdir(path.dirname(this.file), { recursive: true });
    const temp = tempSibling(this.file);
    try {
      const handle = await fs.open(temp, "w");
      try {
        await handle.write(block(Buffer.from(MAGIC + JSON.stringify(this.header))));
        // Encoded in place into one buffer, reused for every block (written before it is reused): no buffer per entry.
        let out = Buffer.allocUnsafe(2 * BLOCK_BYTES);
        let at = 0;
        for (const f of files) {
          if (f.stamp === undefined) continue;
          const most = maxEntryBytes(f);
          if (at + most > out.length) out = Buffer.concat([out.subarray(0, at)], 2 * (at + most));
          at = encodeEntry(out, at, f, f.stamp);
          if (at < BLOCK_BYTES) continue;
          await handle.write(block(out.subarray(0, at)));
          at = 0;
        }
        if (at > 0) await handle.write(block(out.subarray(0, at)));
      } finally {
        await handle.close();
      }
      await fs.rename(temp, this.file);
    } finally {
      await fs.rm(temp, { force: true });
    }
  }
}

function block(payload: Buffer): Buffer {
  const head = Buffer.allocUnsafe(8);
  head.writeUInt32LE(payload.length, 0);
  head.writeUInt32LE(crc32(payload), 4);
  return Buffer.concat([head, payload]);
}

/** The most bytes encodeEntry may take for an entry (a UTF-16 unit takes at most 3 bytes of UTF-8). */
function maxEntryBytes(file: RecordedFile): number {
  return 4 + 3 * file.path.length + STAMP_BYTES + 8 + 32 + 4 + 32 * (file.parts?.length ?? 0);
}

/** Encodes the entry of `file` (its `stamp`) into `out` at `at` (room for maxEntryBytes): where the next one goes. */
function encodeEntry(out: Buffer, at: number, file: RecordedFile, stamp: Uint8Array): number {
  const pathAt = at + 4;
  const pathEnd = pathAt + out.write(file.path, pathAt, "utf8");
  out.writeUInt32LE(pathEnd - pathAt, at);
  out.set(stamp, pathEnd);
  at = out.writeDoubleLE(file.size, pathEnd + STAMP_BYTES);
  out.set(file.sha256, at);
  at += 32;
  const parts = file.parts ?? [];
  at = out.writeUInt32LE(parts.length, at);
  for (const p of parts) at += out.write(p, at, "hex");
  return at;
}

/** An entry of the block being read: where its path, stamp and hashes are in the block (compared there, not decoded). */
interface Entry {
  pathAt: number;
  /** Where its path ends and its stamp starts. */
  pathEnd: number;
  size: number;
  at: number;
}

/** Reads a record a block at a time; any damage ends it (lookups after it find nothing). */
class BlockReader {
  private block: Buffer = Buffer.alloc(0);
  private entries: Entry[] = [];
  private next = 0;
  private position = 0;
  /** The last path of the previous block (its UTF-8 bytes), which the next block's must follow. */
  private last: Buffer | undefined;
  private fd: number | undefined;
  private scratch = Buffer.allocUnsafe(1024);

  private constructor(fd: number) {
    this.fd = fd;
  }

  /** The record at `file` if it opens and `accept` takes its header, else undefined. */
  static open(file: string, accept: (header: RecordHeader) => boolean): BlockReader | undefined {
    let fd: number;
    try {
      fd = openSync(file, "r");
    } catch {
      return undefined;
    }
    const reader = new BlockReader(fd);
    const first = reader.readBlock();
    let header: RecordHeader | undefined;
    try {
      if (first?.subarray(0, MAGIC.length).toString("latin1") === MAGIC) header = JSON.parse(first.subarray(MAGIC.length).toString("utf8")) as RecordHeader;
    } catch {
      header = undefined;
    }
    if (header && accept(header)) return reader;
    reader.close();
    return undefined;
  }

  /** The entry of `relPath`, passing those before it; undefined when the record has none (or ends, or is damaged). */
  seek(relPath: string): Entry | undefined {
    // Compared as UTF-8 bytes, whose order is comparePaths' (code points).
    if (relPath.length * 3 > this.scratch.length) this.scratch = Buffer.allocUnsafe(relPath.length * 3);
    const length = this.scratch.write(relPath);
    for (;;) {
      const entry = this.entries[this.next] ?? this.loadBlock();
      if (!entry) return undefined;
      const order = this.block.compare(this.scratch, 0, length, entry.pathAt, entry.pathEnd);
      if (order > 0) return undefined;
      this.next++;
      if (order === 0) return entry;
    }
  }

  /** Whether the entry records `stamp`. */
  stampIs(entry: Entry, stamp: Uint8Array): boolean {
    return this.block.compare(stamp, 0, STAMP_BYTES, entry.pathEnd, entry.pathEnd + STAMP_BYTES) === 0;
  }

  /** Whether every entry has been passed (or the record ends there, whole or damaged). */
  atEnd(): boolean {
    return this.next >= this.entries.length && !this.loadBlock();
  }

  hashes(entry: Entry): RecordedHashes {
    const sha256 = this.block.subarray(entry.at, entry.at + 32);
    const count = this.block.readUInt32LE(entry.at + 32);
    if (count === 0) return { sha256 };
    const parts: string[] = [];
    for (let i = 0, at = entry.at + 36; i < count; i++, at += 32) parts.push(this.block.toString("hex", at, at + 32));
    return { sha256, parts };
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    this.entries = [];
  }

  /** Decodes the next block's entries; the first of them, or undefined at the end or on damage (which closes). */
  private loadBlock(): Entry | undefined {
    const payload = this.readBlock();
    const entries = payload ? decodeEntries(payload, this.last) : undefined;
    if (!payload || !entries?.length) {
      this.close();
      return undefined;
    }
    this.block = payload;
    this.entries = entries;
    this.next = 0;
    const lastEntry = entries.at(-1)!;
    this.last = Buffer.from(payload.subarray(lastEntry.pathAt, lastEntry.pathEnd));
    return entries[0];
  }

  /** The next block's payload if it is whole and its crc32 matches. */
  private readBlock(): Buffer | undefined {
    if (this.fd === undefined) return undefined;
    const head = Buffer.allocUnsafe(8);
    if (readSync(this.fd, head, 0, 8, this.position) !== 8) return undefined;
    const length = head.readUInt32LE(0);
    if (length > MAX_BLOCK_BYTES) return undefined;
    const payload = Buffer.allocUnsafe(length);
    if (readSync(this.fd, payload, 0, length, this.position + 8) !== length || crc32(payload) !== head.readUInt32LE(4)) return undefined;
    this.position += 8 + length;
    return payload;
  }
}

/** The entries of a block, in strictly increasing path order after `after`; undefined if it does not decode so. */
function decodeEntries(block: Buffer, after: Buffer | undefined): Entry[] | undefined {
  const entries: Entry[] = [];
  try {
    for (let at = 0; at < block.length;) {
      const pathAt = at + 4;
      const pathEnd = pathAt + block.readUInt32LE(at);
      const sizeAt = pathEnd + STAMP_BYTES;
      const hashesAt = sizeAt + 8;
      at = hashesAt + 32 + 4 + 32 * block.readUInt32LE(hashesAt + 32);
      if (at > block.length) return undefined;
      const previous = entries.at(-1);
      // Strictly after the previous path (compare: the sign of the first range's order against the second's).
      const ordered = previous
        ? block.compare(block, pathAt, pathEnd, previous.pathAt, previous.pathEnd) < 0
        : !after || block.compare(after, 0, after.length, pathAt, pathEnd) > 0;
      if (!ordered) return undefined;
      entries.push({ pathAt, pathEnd, size: block.readDoubleLE(sizeAt), at: hashesAt });
    }
  } catch {
    return undefined; // a read past the block's end
  }
  return entries;
}
