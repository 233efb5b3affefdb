// Importing from an object store (s3://, gs://, az://, an Azure blob URL): a URI naming one object becomes a
// single-file asset (an archive unpacked into a folder asset); a URI naming a prefix (ending in '/', or where no object has that exact key) becomes a
// folder asset of every object under it, relative paths kept. Read through the backends' own Store.
import { AssetError } from "../base/errors.ts";
import { hashingInput, hashStream, PART_SIZE, type FileEntry, type HashingInput } from "../registry/manifest.ts";
import { relativePathProblem } from "../registry/paths.ts";
import type { ByteRange, Store, StoredObject } from "../store/store.ts";
import { redactUri as redact, uriWithoutQuery } from "../store/redact.ts";
import { copyBudget, copyObject, type CopyOptions } from "../transfer/store-copy.ts";
import { pathMatcher } from "./filter.ts";
import { downloadAll, fingerprint, stageFile, type ImportSettings, type ImportSource, type RemoteFile } from "./source.ts";

export async function openStoreSource(uri: string, settings: ImportSettings): Promise<ImportSource> {
  const shown = redact(uri);
  const recorded = uriWithoutQuery(uri);
  const object = await singleObject(uri, settings);
  if (object) {
    const { store, head } = object;
    const origin = { uri: recorded, etags: { "": head.etag }, fingerprint: fingerprint(recorded, [head.size, head.etag], settings) };
    const file = { path: "", size: head.size, open: (range?: ByteRange) => store.openRead(head.key, range), label: `${store.url}/${head.key}` };
    return { origin, stage: (dir) => stageFile(dir, file, head.key, head.contentType, origin, settings) };
  }

  const store = await settings.openStore(uri);
  const accept = pathMatcher(settings.filter);
  const objects: (StoredObject & { path: string })[] = [];
  for await (const o of store.list("")) {
    const problem = relativePathProblem(o.key);
    if (problem) throw new AssetError(`cannot import ${JSON.stringify(o.key)} from ${shown}: ${problem}`);
    if (accept(o.key)) objects.push({ ...o, path: o.key });
  }
  if (objects.length === 0) {
    const filtered = settings.filter.include.length + settings.filter.exclude.length > 0 ? " that --include/--exclude keep" : "";
    throw new AssetError(`nothing to import at ${shown}: no object there, and no object under it${filtered}`);
  }
  return prefixSource(recorded, store, objects, settings);
}

/** The object the URI names exactly, unless it ends in '/' (a prefix) or names only a bucket. */
async function singleObject(uri: string, settings: ImportSettings): Promise<{ store: Store; head: StoredObject } | undefined> {
  const url = new URL(uri);
  const segments = url.pathname.split("/");
  const leaf = segments.pop();
  if (!leaf) return undefined;
  url.pathname = segments.join("/");
  // The parent may not be a store of its own (an Azure URL naming only a container): then the URI is a prefix.
  const store = await settings.openStore(url.href).catch(() => undefined);
  const head = await store?.head(decodeURIComponent(leaf));
  return store && head ? { store, head } : undefined;
}

function prefixSource(recorded: string, store: Store, objects: (StoredObject & { path: string })[], settings: ImportSettings): ImportSource {
  const etags = Object.fromEntries(objects.map((o) => [o.path, o.etag]));
  const origin = { uri: recorded, etags, fingerprint: fingerprint(recorded, objects.map((o) => [o.path, o.size, o.etag]).sort(), settings) };
  const files: RemoteFile[] = objects.map((o) => ({
    path: o.path,
    size: o.size,
    open: (range) => store.openRead(o.key, range),
    label: `${store.url}/${o.key}`,
  }));
  return {
    origin,
    stage: async (dir) => {
      await downloadAll(dir, files, settings);
      return { path: dir, origin };
    },
    direct: () => directInput(store, objects, settings),
  };
}

/** The objects as a folder input whose files copy themselves into the destination store, hashed as they go. */
function directInput(store: Store, objects: (StoredObject & { path: string })[], settings: ImportSettings): HashingInput {
  const budget = copyBudget();
  const hashes = new Map<string, Promise<Omit<FileEntry, "path">>>();
  const files = objects.map((o) => {
    const hashed = Promise.withResolvers<Omit<FileEntry, "path">>();
    hashed.promise.catch(() => undefined); // awaited by whoever needs it; until then a failure must not count as unhandled
    hashes.set(o.path, hashed.promise);
    const copyTo = async (destination: Store, key: string): Promise<void> => {
      try {
        hashed.resolve(await copyHashed(store, o.key, destination, key, o.size, { settings: settings.transfers.settings, budget }));
      } catch (err) {
        hashed.reject(err);
        throw err;
      }
    };
    return { path: o.path, source: `${store.url}/${o.key}`, size: o.size, copyTo };
  });
  return hashingInput(true, files, hashes, PART_SIZE);
}

/**
 * Copies one object and returns the hashes the meta records of it. A streamed copy hashes the bytes as they pass
 * (one read). A server-side copy learns no sha256 and no part hashes (S3's copy checksum covers at most the whole
 * of a single-part object; GCS and Azure offer only MD5/CRC), so the copy is read once, at the destination:
 * what is hashed is what the version holds.
 */
async function copyHashed(from: Store, fromKey: string, to: Store, toKey: string, size: number, options: CopyOptions): Promise<Omit<FileEntry, "path">> {
  const outcome = await copyObject(from, fromKey, to, toKey, { size }, { ...options, partSize: PART_SIZE });
  return outcome.hashes ?? hashStream(await to.openRead(toKey), size, `${toKey} of ${to.url}`);
}
