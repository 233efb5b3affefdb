// What a version contains: walking and hashing a publisher's input, the asset digest, and the `.meta`
// document (modelkit's keys plus the `assetkit` block), built on publish and validated on every read.
//
// Meta schema 2 adds per-part hashes: a file larger than `part_size` (fixed at PART_SIZE when assetkit writes)
// lists the sha256 of each of its parts, so a download verifies every part on its own, on any core, and re-reads
// only a part that fails. Schema 3 is schema 2 with BLAKE3 part hashes (part-hash.ts): what assetkit writes for
// an asset with such a file (one without any is written as schema 2, which earlier releases read). The part
// hashes, and their algorithm, are inside the asset digest (see assetDigest): a store that rewrites them together
// with the data changes the digest, which the lockfile pins.
import { promises as fs, statSync } from "node:fs";
import { createHash } from "node:crypto";
import path from "node:path";
import pMap from "p-map";
import { ContentHasher } from "../hashing/content-hash.ts";
import { AssetError, UsageError } from "../base/errors.ts";
import { hashPool } from "../hashing/pool.ts";
import { blake3Kind, partCheckKind, type PartAlgorithm } from "../hashing/part-hash.ts";
import { formatBytes } from "../base/units.ts";
import { relativePathProblem } from "./paths.ts";
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
  contents: string[];
  assetkit?: {
    schema: 1 | 2 | 3;
    digest: string;
    /** Schemas 2 and 3: the size of the parts that `parts` hashes. */
    part_size?: number;
    size: number;
    /** Each file's entry, with the store's etag of its object when assetkit recorded it (outside the digest). */
    files: StoredFileEntry[];
    created_by: string;
    source: Provenance;
    metadata: Record<string, string>;
  };
  [extra: string]: unknown;
}

/** A validated meta: every path is safe; sizes and hashes are known when assetkit wrote it. */
export interface VersionMeta {
  document: AssetMetaDocument;
  isDirectory: boolean;
  files: { path: string; size?: number; sha256?: string; parts?: string[]; etag?: string }[];
  /** Undefined for metas without checksums (written by modelkit): fetches of them are unverified. */
  digest?: string;
  size?: number;
  /** Schemas 2 and 3: the size of the parts that the files' `parts` hash, and with what. */
  partSize?: number;
  partAlgorithm?: PartAlgorithm;
}

/** Longer than any store's object token (S3 ETags are 34–38 characters, GCS generations 16 digits). */
const MAX_ETAG_LENGTH = 1024;

/** Local files checked at once (the hash pool itself bounds the hashing). */
const FILE_CONCURRENCY = 64;

/**
 * Code-point order (= UTF-8 byte order), the same in every language, so digests agree across tools. Compared on
 * the UTF-16 code units: they are in code-point order except that a surrogate (half of a code point above U+FFFF)
 * must sort above U+E000–U+FFFF, which the first differing unit is shifted for. Encoding both to UTF-8 instead cost
 * two buffers a comparison: ~15 ms to read the meta of 2,000 files, which sorts their paths three times.
 */
export function comparePaths(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return inCodePointOrder(x) - inCodePointOrder(y);
  }
  return a.length - b.length;
}

function inCodePointOrder(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

/**
 * sha256 over `path NUL size NUL sha256 LF` for every file in path order: equal content, equal digest. A file
 * with part hashes adds `NUL part_size NUL` (schema 2) or `NUL part_size NUL blake3 NUL` (schema 3) and its part
 * hashes joined by "," before the LF, so the digest binds them and their algorithm; an asset with no file larger
 * than one part has the same digest under every schema.
 */
export function assetDigest(files: readonly FileEntry[], partSize?: number, partAlgorithm: PartAlgorithm = "sha256"): string {
  const hash = createHash("sha256");
  const algorithm = partAlgorithm === "blake3" ? "\0blake3" : "";
  for (const f of [...files].sort((a, b) => comparePaths(a.path, b.path))) {
    const parts = f.parts ? `\0${partSize}${algorithm}\0${f.parts.join(",")}` : "";
    hash.update(`${f.path}\0${f.size}\0${f.sha256}${parts}\n`);
  }
  return `sha256:${hash.digest("hex")}`;
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
  /** Each file's hashes, by path, as soon as that file is hashed. */
  hashes: Map<string, Promise<Omit<FileEntry, "path">>>;
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
}

/**
 * Walks a file or folder to publish (refusing what an object store cannot hold faithfully) and starts hashing it
 * in the worker pool: the caller can upload while the hashes are computed.
 */
export async function startHashing(input: string, { partSize = PART_SIZE, partAlgorithm = "blake3" }: HashingOptions = {}): Promise<HashingInput> {
  const root = path.resolve(input);
  const stat = await fs.stat(root).catch(() => {
    throw new UsageError(`cannot publish ${input}: no such file or folder`);
  });
  let files: { path: string; source: string; size: number }[];
  if (stat.isFile()) files = [{ path: "", source: root, size: stat.size }];
  else if (stat.isDirectory()) files = await walkFolder(root, await fs.realpath(root));
  else throw new UsageError(`cannot publish ${input}: not a regular file or folder`);
  if (files.length === 0) throw new UsageError(`cannot publish ${input}: the folder holds no files`);

  const hashes = new Map(files.map((f) => [f.path, hashFile(f.source, partSize, f.size, partAlgorithm)]));
  return hashingInput(stat.isDirectory(), files, hashes, partSize, partAlgorithm);
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
    const entries = await Promise.all(files.map(async ({ copyTo: _, ...f }) => ({ ...f, ...(await hashes.get(f.path)!) })));
    const digest = assetDigest(entries, partSize, partAlgorithm);
    return { isDirectory, files: entries, digest, size: entries.reduce((sum, f) => sum + f.size, 0), partSize, partAlgorithm };
  })();
  // Awaited by whoever needs them; until then a failure must not count as unhandled.
  for (const pending of [prepared, ...hashes.values()]) pending.catch(() => undefined);
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
  const hashes = new Map(input.files.map(({ path: p, ...rest }) => [p, Promise.resolve(rest)]));
  return { isDirectory: input.isDirectory, files: input.files, size: input.size, partSize: input.partSize, hashes, prepared: Promise.resolve(input) };
}

/**
 * The folder's files with their sizes. Each file is stat'ed synchronously: nothing else runs while the input is
 * walked, and a promise per stat (a thread-pool round trip each) took 50 ms instead of 12 for 2,000 files.
 */
async function walkFolder(root: string, realRoot: string): Promise<{ path: string; source: string; size: number }[]> {
  const out: { path: string; source: string; size: number }[] = [];
  const visit = async (dir: string, rel: string): Promise<void> => {
    const entries = await fs.readdir(dir, { withFileTypes: true });
    if (entries.length === 0 && rel !== "") {
      throw new UsageError(`cannot publish the empty folder ${rel}: object stores cannot hold one (add a file or remove it)`);
    }
    for (const entry of entries) {
      const relPath = rel ? `${rel}/${entry.name}` : entry.name;
      const full = path.join(dir, entry.name);
      const problem = relativePathProblem(relPath);
      if (problem) throw new UsageError(`cannot publish ${JSON.stringify(relPath)}: ${problem}`);
      if (entry.isDirectory()) await visit(full, relPath);
      else if (entry.isFile()) out.push({ path: relPath, source: full, size: statSync(full).size });
      else if (entry.isSymbolicLink()) out.push({ path: relPath, ...(await linkedFile(full, relPath, realRoot)) });
      else throw new UsageError(`cannot publish ${relPath}: not a regular file (socket, FIFO or device)`);
    }
  };
  await visit(root, "");
  return out;
}

/** A link is published as the file it points to, only if that file lies inside the published folder. */
async function linkedFile(full: string, relPath: string, realRoot: string): Promise<{ source: string; size: number }> {
  const target = await fs.realpath(full).catch(() => {
    throw new UsageError(`cannot publish ${relPath}: the link is broken`);
  });
  if (!target.startsWith(realRoot + path.sep)) throw new UsageError(`cannot publish ${relPath}: the link points outside the published folder`);
  const stat = await fs.stat(target);
  if (!stat.isFile()) throw new UsageError(`cannot publish ${relPath}: links to folders are not supported`);
  return { source: target, size: stat.size };
}

/** What a meta records besides the files. */
export interface MetaExtras {
  createdBy: string;
  source: Provenance;
  metadata: Record<string, string>;
  now?: Date;
}

/** The meta of `input`; `etags`: the store's etag of each file's object, by path, where known. */
export function buildMeta(
  input: Omit<PreparedInput, "files"> & { files: readonly FileEntry[] },
  extras: MetaExtras,
  etags: ReadonlyMap<string, string> = new Map(),
): AssetMetaDocument {
  const files = input.files.map(({ path: p, size, sha256, parts }) => ({ path: p, size, sha256, ...(parts ? { parts } : {}), ...withEtag(etags.get(p)) }));
  const blake3Parts = input.partAlgorithm === "blake3" && files.some((f) => f.parts);
  return {
    push_date: (extras.now ?? new Date()).toISOString(),
    is_directory: input.isDirectory,
    contents: input.isDirectory ? files.map((f) => f.path) : [],
    assetkit: {
      schema: blake3Parts ? 3 : 2,
      digest: input.digest,
      size: input.size,
      part_size: input.partSize,
      files,
      created_by: extras.createdBy,
      source: extras.source,
      metadata: extras.metadata,
    },
  };
}

function withEtag(etag: string | undefined): { etag?: string } {
  return etag ? { etag } : {};
}

/** The document with its files' etags replaced by `etags` (a promoted copy's, in its own store): none where unknown. */
export function withStoredEtags(doc: AssetMetaDocument, etags: ReadonlyMap<string, string>): AssetMetaDocument {
  if (!doc.assetkit) return doc;
  const files = doc.assetkit.files.map(({ etag: _theirs, ...f }) => ({ ...f, ...withEtag(etags.get(f.path)) }));
  return { ...doc, assetkit: { ...doc.assetkit, files } };
}

/** A meta as it is stored. */
export function metaBytes(meta: AssetMetaDocument): Buffer {
  return Buffer.from(JSON.stringify(meta, null, 2) + "\n");
}

/**
 * The longest etag a store records for an object (S3's multipart form: quoted 32 hex digits and a part count up to
 * 10,000; GCS generations and Azure etags are shorter): the meta's size bound counts it for every file, since the
 * etags are known only once the objects are stored.
 */
const LONGEST_ETAG = `"${"0".repeat(32)}-10000"`;

/** The size of `doc` as stored once each file has its store's etag: exact but for etags, counted at their longest. */
export function metaSizeBound(doc: AssetMetaDocument): number {
  const files = doc.assetkit?.files ?? [];
  return metaBytes(withStoredEtags(doc, new Map(files.map((f) => [f.path, LONGEST_ETAG])))).length;
}

/**
 * The size bound (metaSizeBound) of the meta that publishing `input` writes, known before any file is hashed (so
 * before any upload): every hash in it is hex of one length, so placeholders of that length take the same bytes.
 */
export function expectedMetaSize(input: Pick<HashingInput, "isDirectory" | "files" | "size" | "partSize">, extras: MetaExtras): number {
  const hex = "0".repeat(64);
  const files = input.files.map(({ path: p, size }) => ({
    path: p,
    size,
    sha256: hex,
    ...(size > input.partSize ? { parts: partRanges(size, input.partSize).map(() => hex) } : {}),
  }));
  const placeholder = {
    isDirectory: input.isDirectory,
    files,
    digest: `sha256:${hex}`,
    size: input.size,
    partSize: input.partSize,
    partAlgorithm: "blake3" as const,
  };
  return metaSizeBound(buildMeta(placeholder, extras));
}

/**
 * Why a version whose meta takes `bytes` for `files` files cannot be stored, or undefined: readers refuse a
 * document over `limit` (they hold it whole), so no fetch could ever read that version.
 */
export function metaSizeProblem(bytes: number, files: number, limit: number): string | undefined {
  if (bytes <= limit) return undefined;
  return (
    `its meta would take ${formatBytes(bytes)} (${bytes} bytes) for ${files} file(s), over the ${formatBytes(limit)} a store document may take, ` +
    `so no fetch could read it: publish fewer files (an archive of them, or several assets)`
  );
}

/** Parses and validates a `.meta` read from a store; `where` names it in errors. */
export function parseMeta(data: Buffer, where: string): VersionMeta {
  const bad = (why: string): never => {
    throw new AssetError(`${where} is not a valid asset meta: ${why}`);
  };
  let doc: AssetMetaDocument;
  try {
    doc = JSON.parse(data.toString("utf8")) as AssetMetaDocument;
  } catch {
    return bad("not JSON");
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) bad("not a JSON object");
  if (typeof doc.is_directory !== "boolean") bad("is_directory is missing or not a boolean");
  // modelkit writes `contents` only for folder assets.
  if (!doc.is_directory && doc.contents === undefined) doc.contents = [];
  if (!Array.isArray(doc.contents) || doc.contents.some((c) => typeof c !== "string")) bad("contents is not a list of paths");
  for (const rel of doc.contents) {
    const problem = relativePathProblem(rel);
    if (problem) bad(`unsafe path ${JSON.stringify(rel)} in contents: ${problem}`);
  }
  if (doc.is_directory && doc.contents.length === 0) bad("a folder asset lists no contents");

  const clash = pathClash(doc.contents);
  if (clash) bad(clash);

  const block = doc.assetkit;
  if (block === undefined) {
    const files = doc.is_directory ? doc.contents.map((p) => ({ path: p })) : [{ path: "" }];
    return { document: doc, isDirectory: doc.is_directory, files };
  }
  if (typeof block !== "object" || block === null || !Array.isArray(block.files)) bad("the assetkit block has no files list");
  if (block.schema !== 1 && block.schema !== 2 && block.schema !== 3) {
    bad(`its schema ${JSON.stringify(block.schema)} is not one this assetkit reads (1 to 3): upgrade assetkit`);
  }
  const partSize = block.schema === 1 ? undefined : block.part_size;
  const partAlgorithm: PartAlgorithm | undefined = block.schema === 1 ? undefined : block.schema === 3 ? "blake3" : "sha256";
  if (block.schema !== 1 && !(Number.isSafeInteger(partSize) && partSize! >= MIN_PART_SIZE)) bad(`bad part_size ${JSON.stringify(partSize)}`);
  const files = block.files.map((f) => {
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
    return { path: f.path, size: f.size, sha256: f.sha256, ...(parts ? { parts } : {}), ...withEtag(f.etag) };
  });
  if (!doc.is_directory && files.length !== 1) bad("a single-file asset must list exactly one file");
  const filesClash = pathClash(files.map((f) => f.path));
  if (filesClash) bad(`in the assetkit files list, ${filesClash}`);
  const listed = (paths: string[]): string => [...paths].sort(comparePaths).join("\0");
  if (doc.is_directory && listed(files.map((f) => f.path)) !== listed(doc.contents)) {
    bad("contents and the assetkit files list disagree");
  }
  if (assetDigest(files, partSize, partAlgorithm) !== block.digest) bad("its digest does not match its files list");
  return {
    document: doc,
    isDirectory: doc.is_directory,
    files,
    digest: block.digest,
    size: block.size,
    ...(partSize !== undefined ? { partSize, partAlgorithm } : {}),
  };
}

/**
 * Whether a version (its validated meta) holds exactly the files of `input`: the same paths, sizes and whole-file
 * sha256 (bound to the version's digest). Unlike comparing digests, it holds whatever meta schema either used.
 */
export function sameContent(meta: VersionMeta, input: PreparedInput): boolean {
  if (meta.isDirectory !== input.isDirectory || meta.files.length !== input.files.length) return false;
  const byPath = new Map(meta.files.map((f) => [f.path, f]));
  return input.files.every((f) => {
    const listed = byPath.get(f.path);
    return listed?.sha256 !== undefined && listed.size === f.size && listed.sha256 === f.sha256;
  });
}

/** Why a list of file paths cannot all exist at once in a folder (a path listed twice, or both a file and a folder), or undefined. */
function pathClash(paths: readonly string[]): string | undefined {
  const seen = new Set<string>();
  for (const p of paths) {
    if (seen.has(p)) return `${JSON.stringify(p)} is listed twice`;
    seen.add(p);
  }
  for (const p of paths) {
    for (let slash = p.indexOf("/"); slash >= 0; slash = p.indexOf("/", slash + 1)) {
      const folder = p.slice(0, slash);
      if (seen.has(folder)) return `${JSON.stringify(folder)} is both a file and the folder of ${JSON.stringify(p)}`;
    }
  }
  return undefined;
}
