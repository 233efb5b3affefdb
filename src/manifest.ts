// What a version contains: walking and hashing a publisher's input, the asset digest, and the `.meta`
// document (modelkit's keys plus the `assetkit` block), built on publish and validated on every read.
import { createHash } from "node:crypto";
import { createReadStream, promises as fs } from "node:fs";
import path from "node:path";
import { pipeline } from "node:stream/promises";
import pMap from "p-map";
import { AssetError, UsageError } from "./errors.ts";
import { relativePathProblem } from "./paths.ts";

export interface FileEntry {
  /** '/'-separated path inside the version; "" for a single-file asset. */
  path: string;
  size: number;
  sha256: string;
}

export interface PreparedInput {
  isDirectory: boolean;
  /** Sorted by path, each with the local file it was read from. */
  files: (FileEntry & { source: string })[];
  digest: string;
  size: number;
}

export interface Provenance {
  /** Who ran the publish (or promotion): the GitHub actor in Actions, the local user elsewhere. */
  actor?: string;
  repository?: string;
  sha?: string;
  ref?: string;
  run_url?: string;
  workflow?: string;
}

export interface AssetMetaDocument {
  push_date: string;
  is_directory: boolean;
  contents: string[];
  assetkit?: {
    schema: 1;
    digest: string;
    size: number;
    files: FileEntry[];
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
  files: { path: string; size?: number; sha256?: string }[];
  /** Undefined for metas without checksums (written by modelkit): fetches of them are unverified. */
  digest?: string;
  size?: number;
}

const HASH_CONCURRENCY = 4;

/** Code-point order (= UTF-8 byte order), the same in every language, so digests agree across tools. */
function comparePaths(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** sha256 over `path NUL size NUL sha256 LF` for every file in path order: equal content, equal digest. */
export function assetDigest(files: readonly FileEntry[]): string {
  const hash = createHash("sha256");
  for (const f of [...files].sort((a, b) => comparePaths(a.path, b.path))) hash.update(`${f.path}\0${f.size}\0${f.sha256}\n`);
  return `sha256:${hash.digest("hex")}`;
}

export async function hashFile(file: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash("sha256");
  let size = 0;
  await pipeline(createReadStream(file), async function* (chunks: AsyncIterable<Buffer>) {
    for await (const chunk of chunks) {
      size += chunk.length;
      hash.update(chunk);
    }
  });
  return { size, sha256: hash.digest("hex") };
}

/**
 * Hashes the files of a local copy of a version (`root` is the file itself for a single-file asset): the
 * entries to compare with a meta, or to recompute its digest with assetDigest. Missing files are reported as
 * size -1, so a comparison fails instead of throwing.
 */
export async function hashLocalCopy(root: string, relPaths: readonly string[]): Promise<FileEntry[]> {
  return pMap(
    relPaths,
    async (rel) => ({ path: rel, ...(await hashFile(rel ? path.join(root, ...rel.split("/")) : root).catch(() => ({ size: -1, sha256: "" }))) }),
    { concurrency: HASH_CONCURRENCY },
  );
}

/** Walks and hashes a file or folder to publish; refuses what an object store cannot hold faithfully. */
export async function prepareInput(input: string): Promise<PreparedInput> {
  const root = path.resolve(input);
  const stat = await fs.stat(root).catch(() => {
    throw new UsageError(`cannot publish ${input}: no such file or folder`);
  });
  let sources: { path: string; source: string }[];
  if (stat.isFile()) sources = [{ path: "", source: root }];
  else if (stat.isDirectory()) sources = await walkFolder(root, await fs.realpath(root));
  else throw new UsageError(`cannot publish ${input}: not a regular file or folder`);
  if (sources.length === 0) throw new UsageError(`cannot publish ${input}: the folder holds no files`);

  const files = await pMap(sources, async (s) => ({ ...s, ...(await hashFile(s.source)) }), { concurrency: HASH_CONCURRENCY });
  files.sort((a, b) => comparePaths(a.path, b.path));
  return {
    isDirectory: stat.isDirectory(),
    files,
    digest: assetDigest(files),
    size: files.reduce((sum, f) => sum + f.size, 0),
  };
}

async function walkFolder(root: string, realRoot: string): Promise<{ path: string; source: string }[]> {
  const out: { path: string; source: string }[] = [];
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
      else if (entry.isFile()) out.push({ path: relPath, source: full });
      else if (entry.isSymbolicLink()) out.push({ path: relPath, source: await linkedFile(full, relPath, realRoot) });
      else throw new UsageError(`cannot publish ${relPath}: not a regular file (socket, FIFO or device)`);
    }
  };
  await visit(root, "");
  return out;
}

/** A link is published as the file it points to, only if that file lies inside the published folder. */
async function linkedFile(full: string, relPath: string, realRoot: string): Promise<string> {
  const target = await fs.realpath(full).catch(() => {
    throw new UsageError(`cannot publish ${relPath}: the link is broken`);
  });
  if (!target.startsWith(realRoot + path.sep)) throw new UsageError(`cannot publish ${relPath}: the link points outside the published folder`);
  if (!(await fs.stat(target)).isFile()) throw new UsageError(`cannot publish ${relPath}: links to folders are not supported`);
  return target;
}

export function buildMeta(
  input: PreparedInput,
  extras: { createdBy: string; source: Provenance; metadata: Record<string, string>; now?: Date },
): AssetMetaDocument {
  const files = input.files.map(({ path: p, size, sha256 }) => ({ path: p, size, sha256 }));
  return {
    push_date: (extras.now ?? new Date()).toISOString(),
    is_directory: input.isDirectory,
    contents: input.isDirectory ? files.map((f) => f.path) : [],
    assetkit: {
      schema: 1,
      digest: input.digest,
      size: input.size,
      files,
      created_by: extras.createdBy,
      source: extras.source,
      metadata: extras.metadata,
    },
  };
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
  const files = block.files.map((f) => {
    if (typeof f?.path !== "string") bad("a file entry has no path");
    const problem = doc.is_directory ? relativePathProblem(f.path) : f.path === "" ? undefined : "a single-file asset's path must be empty";
    if (problem) bad(`unsafe path ${JSON.stringify(f.path)}: ${problem}`);
    if (!Number.isSafeInteger(f.size) || f.size < 0) bad(`bad size for ${JSON.stringify(f.path)}`);
    if (typeof f.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(f.sha256)) bad(`bad sha256 for ${JSON.stringify(f.path)}`);
    return { path: f.path, size: f.size, sha256: f.sha256 };
  });
  if (!doc.is_directory && files.length !== 1) bad("a single-file asset must list exactly one file");
  const filesClash = pathClash(files.map((f) => f.path));
  if (filesClash) bad(`in the assetkit files list, ${filesClash}`);
  const listed = (paths: string[]): string => [...paths].sort(comparePaths).join("\0");
  if (doc.is_directory && listed(files.map((f) => f.path)) !== listed(doc.contents)) {
    bad("contents and the assetkit files list disagree");
  }
  if (assetDigest(files) !== block.digest) bad("its digest does not match its files list");
  return { document: doc, isDirectory: doc.is_directory, files, digest: block.digest, size: block.size };
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
