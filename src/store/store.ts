// The Store contract: a flat key → bytes namespace under a root (bucket + prefix, a directory, a URL).
// Backends move bytes and know nothing of assets; keys are '/'-separated, relative to the store root,
// and already validated by the caller (no empty, '.' or '..' segment, no leading '/').
import { createReadStream } from "node:fs";
import { pipeline, Transform, type Readable } from "node:stream";
import { receivedBytes } from "../base/heap-size.ts";

export interface StoredObject {
  /** Key relative to the store root. */
  key: string;
  size: number;
  /** Opaque version token of the object's current content, usable with `{ ifMatch }`. */
  etag: string;
  /** The media type the server declares, where it tells one (HTTP's Content-Type). */
  contentType?: string;
  /** When the object was last written, where list() knows it (gc's grace period). */
  modified?: Date;
}

/** An upload started and never completed (an S3 multipart upload): invisible to readers, but stored and billed. */
export interface IncompleteUpload {
  key: string;
  id: string;
  started: Date;
  /** Bytes of the parts uploaded so far. */
  size: number;
}

/** Optional capability of stores whose uploads can be left incomplete by a killed writer (S3). */
export interface IncompleteUploads {
  /** The incomplete uploads whose key starts with `prefix`. */
  incompleteUploads(prefix: string): AsyncIterable<IncompleteUpload>;
  /** Discards an incomplete upload and its parts; one already gone is not an error. */
  abortUpload(upload: IncompleteUpload): Promise<void>;
}

/**
 * The store's incomplete-uploads capability, or undefined. Layers (retries, timeouts) do not carry optional
 * capabilities: it is looked for on the store, then on the backend a layered store wraps.
 */
export function incompleteUploadsOf(store: Store): IncompleteUploads | undefined {
  for (const candidate of [store, (store as { backend?: unknown }).backend]) {
    if (candidate && typeof (candidate as Partial<IncompleteUploads>).incompleteUploads === "function") return candidate as IncompleteUploads;
  }
  return undefined;
}

/**
 * Bytes that can be read again, whole or by range, and their length: another store's object copied without a
 * local file (the reader may check them as they pass, and fail the stream before its end when they are wrong).
 */
export interface ObjectSource {
  size: number;
  open(range?: ByteRange): Promise<Readable>;
}

/** What to write: bytes in memory (small JSON documents), a local file streamed from disk, or an object source. */
export type Body = Buffer | { file: string; size: number } | ObjectSource;

/** A streamed body as a source: a local file is one that opens its ranges from disk. */
export function sourceOf(body: Exclude<Body, Buffer>): ObjectSource {
  if ("open" in body) return body;
  const { file, size } = body;
  return { size, open: async (range) => freedYoung(createReadStream(file, range ? { start: range.start, end: range.end } : {})) };
}

/**
 * The file's bytes as they are read, counted as received bytes (heap-size.ts): each read is a new buffer, dead once
 * sent, which V8 would otherwise only free once ~64 MiB of them piled up (a 2 GiB upload peaked ~70 MiB higher).
 */
function freedYoung(file: Readable): Readable {
  return pipeline(
    file,
    new Transform({
      transform(chunk: Buffer, _encoding, done) {
        receivedBytes(chunk.length);
        done(null, chunk);
      },
    }),
    () => undefined, // a failure reaches the reader through the returned stream
  );
}

/**
 * A write's precondition. `ifAbsent`: create only if no object has the key (S3 If-None-Match: *, GCS
 * ifGenerationMatch: 0, Azure ifNoneMatch: *, local link()). `ifMatch`: replace only if the current etag is
 * this one (compare-and-swap). Without a condition the write replaces whatever is there.
 */
export type Condition = { ifAbsent: true } | { ifMatch: string };

/**
 * What the source of a copy must still be. `etag`: the token head() or list() gave for it; S3, GCS and Azure make
 * the copy itself conditional on it (CopySourceIfMatch, the source generation, the source If-Match), so the check
 * is atomic and costs no request. `sha256`: of its bytes; the folder store, whose copy is a hard link (an etag
 * there is a stat token, blind to bytes damaged in place), hashes the file it links. What a backend cannot check
 * counts as not holding.
 */
export interface SourceExpectation {
  etag?: string | undefined;
  sha256?: string | undefined;
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

/** What a listing may leave out. */
export interface ListOptions {
  /**
   * Only keys with no "/" after the prefix are wanted. A hint: S3 and GCS ask the server for just those (a
   * delimiter), skipping every sub-folder's objects, and a folder store lists only the prefix's folder; the other
   * backends list everything, so callers still filter.
   */
  shallow?: boolean;
}

export interface Store {
  /** The store's URI as the user wrote it, with any credentials removed: safe to print. */
  readonly url: string;
  /** False for read-only stores (HTTP): writes throw StoreError code "read-only". */
  readonly writable: boolean;
  /** False where keys cannot be enumerated (plain HTTP): list() throws StoreError code "unsupported". */
  readonly listable: boolean;

  /** Metadata of one object, or undefined when absent. */
  head(key: string): Promise<StoredObject | undefined>;
  /**
   * A small object's whole content with its etag, or undefined when absent. Objects over MAX_DOCUMENT_BYTES are
   * refused (code "failed") without being read whole: use readDocumentBody.
   */
  read(key: string): Promise<{ data: Buffer; etag: string } | undefined>;
  /** A stream of an object's bytes (or of a range of them); rejects with code "not-found" when absent. */
  openRead(key: string, range?: ByteRange): Promise<Readable>;
  /**
   * Every object whose key starts with `prefix` (a plain string prefix, not only a folder), at any depth (unless
   * `options.shallow` lets the backend leave sub-folders out), across all pages. Order is unspecified.
   */
  list(prefix: string, options?: ListOptions): AsyncIterable<StoredObject>;
  /** Writes `body` at `key`. Returns false, and changes nothing, when `condition` does not hold. */
  write(key: string, body: Body, condition?: Condition, attempt?: WriteAttempt): Promise<boolean>;
  /**
   * Makes `destKey` a copy of `sourceKey` inside the store, without the bytes passing through this process (S3
   * CopyObject, GCS rewrite, Azure copy from URL, a hard link). Replaces whatever is at `destKey`; rejects with
   * code "not-found" when the source is absent, "read-only" on a read-only store. With `expected`, copies only
   * what the backend proves is still that object (see SourceExpectation), else resolves false, having written
   * nothing (a missing source included); without it, resolves true.
   */
  copy(sourceKey: string, destKey: string, expected?: SourceExpectation): Promise<boolean>;
  /**
   * Optional capability: makes `destKey` here a copy of `sourceKey` in ANOTHER store of the same backend, done by
   * the service (S3 CopyObject across buckets, GCS rewrite across buckets, Azure copy from URL inside one account,
   * a link or copy between folders). Resolves false, having written nothing, when it cannot: another backend,
   * endpoint or account, or this store's credentials may not read the source. The caller then streams the bytes
   * (see src/transfer/store-copy.ts). With `expected`, copies only what the backend proves is still that object, as
   * `copy` does, else resolves false the same way. A wrapper around a store must pass the source on unwrapped.
   */
  copyFrom?(source: Store, sourceKey: string, destKey: string, expected?: SourceExpectation): Promise<boolean>;
  /** Removes an object; absent is not an error. */
  delete(key: string): Promise<void>;
}

export type StoreErrorCode =
  | "not-found"
  | "read-only"
  | "unsupported" // the server cannot do what was asked (e.g. conditional writes)
  | "auth" // credentials missing, wrong or without permission
  | "unavailable" // connection refused, DNS, timeouts, throttling after retries
  | "failed";

/** The Store operations, as named in messages and in StoreError.op. */
export type StoreOp = "head" | "read" | "openRead" | "list" | "write" | "copy" | "delete";

/**
 * A write's place among the tries of one logical write, given by the retry layer. After a try whose response was
 * lost, a conditional write that is refused may be refused because of our own earlier try: the backend then checks
 * whether the object holds our bytes (`retried`), or carries our `id` (a backend that tags writes with it).
 */
export interface WriteAttempt {
  /** The same for every try of one write. */
  id: string;
  /** An earlier try of this write failed without a clear answer. */
  retried: boolean;
}

export interface StoreErrorOptions {
  cause?: unknown;
  /** Worth trying again: network failures, timeouts, throttling, 5xx. */
  temporary?: boolean;
  /** The server asked us to wait this long before trying again (Retry-After). */
  retryAfterMs?: number;
}

/**
 * Every backend failure. A backend says what an error is (code, temporary); the layers (src/store/layers) add
 * which store, operation and key, scrub credentials, and count attempts. Once the retries are spent `temporary`
 * is false, so no outer loop retries it again.
 */
export class StoreError extends Error {
  readonly code: StoreErrorCode;
  temporary: boolean;
  retryAfterMs: number | undefined;
  op: StoreOp | undefined;
  key: string | undefined;
  /** Tries made before giving up (1 when not retried). */
  attempts = 1;
  constructor(code: StoreErrorCode, message: string, options?: StoreErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "StoreError";
    this.code = code;
    this.temporary = options?.temporary ?? false;
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** The error a backend throws for a missing object (the layers name the store and key). */
export function notFound(): StoreError {
  return new StoreError("not-found", "no such object");
}

/**
 * A backend: a Store whose failures may be raw SDK errors, plus what the layers need to turn them into StoreErrors.
 * openStore wraps every backend in the layers; no command or registry code calls a backend directly.
 */
export interface Backend extends Store {
  /** What an SDK (or network, or file system) error is: its code, whether it is temporary, and a one-line detail. */
  classify(err: unknown): StoreError;
  /** Credentials this backend holds (keys, SAS tokens, passwords), removed from every message. */
  secrets(): readonly string[];
}

/**
 * The largest object read() takes whole into memory. assetkit's documents (.versions, .aliases, .meta, claims)
 * stay far below it (a .versions of 16 MiB lists about a million versions); anything larger is refused, unread.
 */
export const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024;

/**
 * A document's bytes for read(), refused (code "failed") once they pass MAX_DOCUMENT_BYTES, so a huge or
 * hostile object is never held whole: before any byte when its announced size is already over, else as soon as
 * the count passes it. (The layers name the store and key.)
 */
export async function readDocumentBody(body: Readable, announcedSize?: number): Promise<Buffer> {
  const tooLarge = (): StoreError =>
    new StoreError(
      "failed",
      `larger than ${MAX_DOCUMENT_BYTES / 1024 / 1024} MiB${announcedSize ? ` (${announcedSize} bytes)` : ""}: refusing to read it (assetkit's documents are far smaller; the object is damaged or not assetkit's)`,
    );
  if (announcedSize !== undefined && announcedSize > MAX_DOCUMENT_BYTES) {
    body.destroy();
    throw tooLarge();
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > MAX_DOCUMENT_BYTES) throw tooLarge(); // leaving the loop destroys the stream
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}
