// Files over a registry's per-blob limit (`?max-blob=`, docs/oci.md §4), stored as consecutive part layers
// (artifact.ts writes them): planning the parts, finding a version's files among its layers, and reading a file
// across its parts; no request is made here.
import { createHash } from "node:crypto";
import { pipeline, Readable, Transform } from "node:stream";
import { AssetError } from "../../base/errors.ts";
import type { ByteRange } from "../../store/store.ts";
import type { OpenObject } from "../../transfer/engine.ts";
import { partRanges } from "../manifest.ts";
import { PART_OF, PART_OFFSET, TITLE, type BlobPart, type Descriptor } from "./artifact.ts";

/** A file as a version's layers store it: whole (one part, the file's own sha256) or split. */
export interface StoredFile {
  /** The path it is written at: the layer's title, or for a split file what its parts name. */
  title: string;
  size: number;
  parts: BlobPart[];
  /** The layer's annotations (a whole file's; a split file's first part's). */
  annotations: Record<string, string>;
}

/** The byte ranges (inclusive ends) of a `size`-byte file's blobs under a `maxBlob` limit; undefined when it fits one. */
export function splitRanges(size: number, maxBlob: number | undefined): ByteRange[] | undefined {
  if (maxBlob === undefined || size <= maxBlob) return undefined;
  return partRanges(size, maxBlob).map(({ start, end }) => ({ start, end: end - 1 }));
}

/**
 * The files a manifest's layers hold, in layer order: a titled layer is a file; layers marked PART_OF are gathered
 * into their file, which must be consecutive parts from offset 0 (else the manifest is refused, naming `where`).
 * Untitled layers are not files.
 */
export function storedFiles(layers: readonly Descriptor[], where: string): StoredFile[] {
  const files: StoredFile[] = [];
  const split = new Map<string, StoredFile>();
  for (const layer of layers) {
    const annotations = layer.annotations ?? {};
    const of = annotations[PART_OF];
    if (of === undefined) {
      if (annotations[TITLE] !== undefined)
        files.push({ title: annotations[TITLE], size: layer.size, parts: [{ digest: layer.digest, size: layer.size, offset: 0 }], annotations });
      continue;
    }
    let file = split.get(of);
    if (!file) {
      file = { title: of, size: 0, parts: [], annotations };
      split.set(of, file);
      files.push(file);
    }
    if (annotations[PART_OFFSET] !== String(file.size)) {
      throw new AssetError(
        `${where} is damaged: part ${file.parts.length + 1} of ${of} starts at ${annotations[PART_OFFSET] ?? "(none)"}, not at byte ${file.size}`,
      );
    }
    file.parts.push({ digest: layer.digest, size: layer.size, offset: file.size });
    file.size += layer.size;
  }
  return files;
}

/**
 * Reads `range` (or all) of a file across its parts, in order, each opened when the one before it ends. A part read
 * whole is checked against its own digest on the way (a mismatch fails the read naming that part, `label` naming
 * the file); parts read in part are left to the file's own hashes. A whole file is its one blob, read as it is.
 */
export async function openParts(
  file: StoredFile,
  range: ByteRange | undefined,
  openBlob: (digest: string, range?: ByteRange) => Promise<Readable>,
  label: string,
): Promise<Readable> {
  if (file.parts.length === 1) return openBlob(file.parts[0]!.digest, range);
  const { start, end } = range ?? { start: 0, end: file.size - 1 };
  const reads = file.parts.flatMap((part, index) => {
    const from = Math.max(start, part.offset);
    const to = Math.min(end, part.offset + part.size - 1);
    if (from > to) return [];
    const whole = from === part.offset && to === part.offset + part.size - 1;
    return [{ part, index, range: whole ? undefined : { start: from - part.offset, end: to - part.offset } }];
  });
  const open = async ({ part, index, range: within }: (typeof reads)[number]): Promise<Readable> => {
    const body = await openBlob(part.digest, within);
    if (within) return body;
    const what = `part ${index + 1} of ${file.parts.length} (blob ${part.digest}, bytes ${part.offset}-${part.offset + part.size - 1})`;
    // pipeline: the blob's own errors (a reset, a stall) reach the reader too, to be resumed by range.
    return pipeline(body, digestChecked(part.digest, `integrity check failed for ${label}: ${what}`), () => undefined);
  };
  // The first part is opened before this returns, so a missing blob fails the open, as for a whole file.
  const first = reads.length > 0 ? await open(reads[0]!) : Readable.from([]);
  const joined = Readable.from(
    (async function* () {
      yield* first;
      for (const read of reads.slice(1)) yield* await open(read);
    })(),
    { objectMode: false },
  );
  // Destroyed before its first read (a cancelled transfer), the generator never ran: the first part's stream is closed here.
  return joined.on("close", () => first.destroy());
}

/** Passes bytes through, and fails at their end unless they have `digest` (sha256). */
function digestChecked(digest: string, failure: string): Transform {
  const hash = createHash("sha256");
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      done(null, chunk);
    },
    flush(done) {
      const got = `sha256:${hash.digest("hex")}`;
      done(got === digest ? null : new AssetError(`${failure} has digest ${got}, not its own; nothing was kept`));
    },
  });
}

/** The sha256 (`sha256:<hex>`) of each of `ranges` (consecutive, from byte 0) of the bytes `open` reads whole. */
export async function rangeDigests(open: OpenObject, ranges: readonly ByteRange[]): Promise<string[]> {
  const digests: string[] = [];
  let hash = createHash("sha256");
  let position = 0;
  for await (const data of await open()) {
    const chunk = data as Buffer;
    for (let at = 0; at < chunk.length;) {
      const take = Math.min(chunk.length - at, ranges[digests.length]!.end + 1 - position);
      hash.update(chunk.subarray(at, at + take));
      at += take;
      position += take;
      if (position === ranges[digests.length]!.end + 1) {
        digests.push(`sha256:${hash.digest("hex")}`);
        hash = createHash("sha256");
      }
    }
  }
  return digests;
}

/** Opens ranges of one part of what `open` reads (ranges within the part; none: the whole part). */
export function withinPart(open: OpenObject, part: BlobPart): OpenObject {
  return (range) => open(range ? { start: part.offset + range.start, end: part.offset + range.end } : { start: part.offset, end: part.offset + part.size - 1 });
}
