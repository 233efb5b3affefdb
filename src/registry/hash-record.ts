// The hash record: the hashes of a publisher's input files, by how each file was found on disk (size, mtime and
// ctime in ns, inode, device), kept between runs so that a file found the same is not read again (as git's index
// and DVC's state db do). One record per input (its real path) and hashing scheme (part size and algorithm), in the
// assets dir's `.assetkit/hashes/`. It only saves reading: what a version holds is still decided by the hashes.
//
// Format: blocks of [u32 length][u32 crc32][payload], little-endian. The first payload is MAGIC and a JSON header
// (the format, the input, the scheme); the others hold entries in path order (comparePaths): u32 path length,
// the path (UTF-8), u8 stamp length, the stamp (ASCII), f64 size, the sha256 (32 bytes), u32 part count and each
// part hash (32 bytes). It is read a block at a time beside the files, which are looked up in the same order, so
// memory stays bounded whatever the file count; written whole to a temporary sibling, then renamed into place. A
// record that is unreadable, of another format or another input is ignored (and rewritten); a block that fails its
// crc32 ends the reading there (the files after it are hashed).
import { closeSync, openSync, promises as fs, readSync, type BigIntStats } from "node:fs";
import { createHash } from "node:crypto";
import path from "node:path";
import { crc32 } from "node:zlib";
import { tempSibling } from "../base/temp-path.ts";
import type { ContentHashes } from "../hashing/content-hash.ts";
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
const FORMAT = 1;
/** Entries are written in blocks of about this many bytes (a block holds at least one entry, however large). */
const BLOCK_BYTES = 64 * 1024;
/** A block longer than this is taken for damage (one entry would need 8 million part hashes: a 128 TiB file). */
const MAX_BLOCK_BYTES = 256 * 1024 * 1024;
/**
 * Racy files: a file changed this close to (or after) the moment its stat was taken is not recorded. A write
 * within the same clock tick as that stat (a jiffy for the kernel's coarse clock, 1–2 s on FAT or HFS+) leaves
 * size, mtime and ctime as they were, so the stat cannot tell; such a file is read again next time instead.
 */
export const RACY_MARGIN_MS = 2000;

/**
 * How the record sees a file: its mtime and ctime in ns, inode and device (joined by stampText), or undefined when it
 * is racy (see RACY_MARGIN_MS) and must not be trusted. Numbers, so that a publish can hold every file's compactly.
 */
export function statStamp(stat: BigIntStats, racySince: bigint): readonly [bigint, bigint, bigint, bigint] | undefined {
  if (stat.mtimeNs >= racySince || stat.ctimeNs >= racySince) return undefined;
  return [stat.mtimeNs, stat.ctimeNs, stat.ino, stat.dev];
}

/**
 * A stamp as the record keeps it. Made when a file is looked up or its entry written, and dropped at once, so a
 * template's concatenations are never held; `Array.from(stamp).join(":")` took 4× as long (~500 ms of a
 * content-addressed republish of 100,000 files).
 */
export function stampText(stamp: ArrayLike<bigint>): string {
  return `${stamp[0]}:${stamp[1]}:${stamp[2]}:${stamp[3]}`;
}

/** The ns time from which a file's change makes it racy, for stats taken from now on. */
export function racySince(now: () => number = Date.now): bigint {
  return BigInt(Math.floor(now()) - RACY_MARGIN_MS) * 1_000_000n;
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
  lookup(relPath: string, size: number, stamp: string | undefined): ContentHashes | undefined {
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
  async write(files: Iterable<{ path: string; stamp: string | undefined; hashes: ContentHashes }>, fileCount: number): Promise<void> {
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
          const most = maxEntryBytes(f.path, f.stamp, f.hashes);
          if (at + most > out.length) out = Buffer.concat([out.subarray(0, at)], 2 * (at + most));
          at = encodeEntry(out, at, f.path, f.stamp, f.hashes);
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
function maxEntryBytes(relPath: string, stamp: string, hashes: ContentHashes): number {
  return 4 + 3 * relPath.length + 1 + stamp.length + 8 + 32 + 4 + 32 * (hashes.parts?.length ?? 0);
}

/** Encodes an entry into `out` at `at` (room for maxEntryBytes): where the next one goes. */
function encodeEntry(out: Buffer, at: number, relPath: string, stamp: string, hashes: ContentHashes): number {
  const pathAt = at + 4;
  const pathEnd = pathAt + out.write(relPath, pathAt, "utf8");
  out.writeUInt32LE(pathEnd - pathAt, at);
  at = out.writeUInt8(stamp.length, pathEnd);
  at += out.write(stamp, at, "latin1");
  at = out.writeDoubleLE(hashes.size, at);
  at += out.write(hashes.sha256, at, "hex");
  const parts = hashes.parts ?? [];
  at = out.writeUInt32LE(parts.length, at);
  for (const p of parts) at += out.write(p, at, "hex");
  return at;
}

/** An entry of the block being read: where its path, stamp and hashes are in the block (compared there, not decoded). */
interface Entry {
  pathAt: number;
  stampAt: number;
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
      const order = this.block.compare(this.scratch, 0, length, entry.pathAt, entry.stampAt - 1);
      if (order > 0) return undefined;
      this.next++;
      if (order === 0) return entry;
    }
  }

  /** Whether the entry records `stamp`. */
  stampIs(entry: Entry, stamp: string): boolean {
    const length = this.scratch.write(stamp, "latin1");
    return length === this.block[entry.stampAt - 1] && this.block.compare(this.scratch, 0, length, entry.stampAt, entry.stampAt + length) === 0;
  }

  /** Whether every entry has been passed (or the record ends there, whole or damaged). */
  atEnd(): boolean {
    return this.next >= this.entries.length && !this.loadBlock();
  }

  hashes(entry: Entry): ContentHashes {
    const sha256 = this.block.toString("hex", entry.at, entry.at + 32);
    const count = this.block.readUInt32LE(entry.at + 32);
    if (count === 0) return { size: entry.size, sha256 };
    const parts: string[] = [];
    for (let i = 0, at = entry.at + 36; i < count; i++, at += 32) parts.push(this.block.toString("hex", at, at + 32));
    return { size: entry.size, sha256, parts };
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
    this.last = Buffer.from(payload.subarray(lastEntry.pathAt, lastEntry.stampAt - 1));
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
      const stampAt = pathEnd + 1;
      const sizeAt = stampAt + block.readUInt8(pathEnd);
      const hashesAt = sizeAt + 8;
      at = hashesAt + 32 + 4 + 32 * block.readUInt32LE(hashesAt + 32);
      if (at > block.length) return undefined;
      const previous = entries.at(-1);
      // Strictly after the previous path (compare: the sign of the first range's order against the second's).
      const ordered = previous
        ? block.compare(block, pathAt, pathEnd, previous.pathAt, previous.stampAt - 1) < 0
        : !after || block.compare(after, 0, after.length, pathAt, pathEnd) > 0;
      if (!ordered) return undefined;
      entries.push({ pathAt, stampAt, size: block.readDoubleLE(sizeAt), at: hashesAt });
    }
  } catch {
    return undefined; // a read past the block's end
  }
  return entries;
}
