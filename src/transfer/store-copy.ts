// Copying one object from a store into another (promotion between stores, imports): by the service when the
// destination can reach the source itself, else streamed through this process and verified on the way.
import { ContentHasher, type ContentHashes } from "../hashing/content-hash.ts";
import { AssetError } from "../base/errors.ts";
import { StoreError, type Store } from "../store/store.ts";
import { integrity, READ_AHEAD_BYTES, type OpenObject, type TransferSettings } from "./engine.ts";
import { ReadAheadBudget, VerifiedSource } from "./verified-source.ts";

export interface CopyExpectation {
  /** Unknown for metas without sizes (modelkit's): the source object's size is looked up. */
  size?: number | undefined;
  /** Unknown for metas without checksums: then only the size is checked. */
  sha256?: string | undefined;
  /** The source store's etag of the object, as its meta recorded it: a server-side copy is then made only of that object. */
  etag?: string | undefined;
}

/** How one object reached the destination, and how many bytes it holds. */
export interface CopyOutcome {
  how: "server" | "streamed";
  bytes: number;
  /** Streamed with `partSize` given: what the bytes hash to, parts included, computed as they passed. */
  hashes?: ContentHashes;
}

export interface CopyOptions {
  settings: TransferSettings;
  /** Shared by the copies running at once, to bound the memory of all of them together. */
  budget?: ReadAheadBudget;
  /** A streamed copy reports the hashes of what it copied, with those of each `partSize` bytes. */
  partSize?: number;
}

export function copyBudget(): ReadAheadBudget {
  return new ReadAheadBudget(READ_AHEAD_BYTES);
}

/**
 * Makes `toKey` in `to` a copy of `fromKey` in `from`, replacing whatever is there. Same backend with
 * credentials that reach both sides: a server-side copy (no byte through this process), whose size is checked
 * after. Otherwise the bytes stream from source to destination, in parallel ranges where the destination uploads
 * in parts, with bounded memory and no local file, checked against the expected size and sha256 as they pass:
 * wrong bytes fail the write before the destination commits it, so nothing is left at `toKey` (on backends whose
 * writes commit at the end: all of ours).
 */
export async function copyObject(
  from: Store,
  fromKey: string,
  to: Store,
  toKey: string,
  expected: CopyExpectation,
  options: CopyOptions,
): Promise<CopyOutcome> {
  const label = `${fromKey} of ${from.url}`;
  // A meta that recorded the object's etag has the copy proven (else refused, and the bytes stream, checked);
  // an older one is copied as before, its size checked after.
  const proof = expected.etag ? { etag: expected.etag, sha256: expected.sha256 } : undefined;
  if (to.copyFrom && (await to.copyFrom(from, fromKey, toKey, proof))) {
    const copied = await to.head(toKey);
    if (!copied || (expected.size !== undefined && copied.size !== expected.size)) {
      await to.delete(toKey);
      throw integrity(label, `the copy holds ${copied?.size ?? "no"} bytes, ${expected.size} expected`);
    }
    return { how: "server", bytes: copied.size };
  }
  const size = expected.size ?? (await from.head(fromKey))?.size;
  if (size === undefined) throw new StoreError("not-found", `${from.url}: cannot read ${fromKey}: no such object`);
  return streamObject((range) => from.openRead(fromKey, range), label, to, toKey, { size, sha256: expected.sha256 }, options);
}

/**
 * Streams the object `open` reads (`label` in messages) into `toKey` in `to`, checked against `expected` as it
 * passes: copyObject's streamed half, for a source that is not a Store (an OCI registry's blob).
 */
export async function streamObject(
  open: OpenObject,
  label: string,
  to: Store,
  toKey: string,
  expected: { size: number; sha256?: string | undefined },
  options: CopyOptions,
): Promise<CopyOutcome> {
  const { source } = await writeVerified(open, label, expected, options, (body) => to.write(toKey, body));
  if (!source.verified) {
    await to.delete(toKey);
    throw new AssetError(`${to.url}: the write of ${toKey} ended before every byte of ${label} was read; nothing was kept`);
  }
  const { size } = expected;
  return { how: "streamed", bytes: size, ...(options.partSize !== undefined && source.hashes ? { hashes: source.hashes } : {}) };
}

/**
 * Runs `write` with the bytes `open` reads as its body, checked against `expected` as they pass (VerifiedSource):
 * wrong bytes fail the write, with the source's own reason. Returns what `write` did, and the source (whether
 * every byte was read, what they hash to).
 */
export async function writeVerified<T>(
  open: OpenObject,
  label: string,
  expected: { size: number; sha256?: string | undefined },
  options: CopyOptions,
  write: (body: VerifiedSource) => Promise<T>,
): Promise<{ result: T; source: VerifiedSource }> {
  const source = new VerifiedSource(open, expected, label, {
    attempts: options.settings.attempts,
    budget: options.budget ?? copyBudget(),
    hash: await ContentHasher.create(options.partSize),
  });
  try {
    return { result: await write(source), source };
  } catch (err) {
    // The destination reports a failed body in its own words; the source knows what was wrong with it.
    throw source.failure ?? err;
  } finally {
    source.dispose();
  }
}
