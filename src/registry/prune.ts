// Deleting whole versions, in the order that keeps every reader safe (the store layout: layout.ts): first
// withdraw the versions from `.versions` by compare-and-swap (no reader resolves them any more), then re-read
// the channels and put back any version a promotion moved onto meanwhile, then delete each `.meta`, then its signature and data.
// A fetch that resolved a version before it was withdrawn either finishes or fails with "not found"; never
// does it return partial data (downloads are verified before they are renamed into place).
import { dataKey, metaKey, metaShardPrefix, signatureKey } from "./layout.ts";
import type { Registry } from "./registry.ts";
import type { StoredObject } from "../store/store.ts";

export interface DeletedVersions {
  deleted: { version: string; objects: number; bytes: number }[];
  /** Versions a channel moved onto while they were being withdrawn: listed again, not deleted. */
  reinstated: string[];
}

/**
 * Deletes `versions` of `name`. `protectedNow` re-reads what must not be deleted (the channels) after the
 * withdrawal; it is the check that a racing promotion cannot slip past.
 */
export async function deleteVersions(registry: Registry, name: string, versions: string[], protectedNow: () => Promise<Set<string>>): Promise<DeletedVersions> {
  const withdrawn = await registry.withdraw(name, versions);
  const keep = await protectedNow();
  const back = Object.fromEntries(Object.entries(withdrawn).filter(([v]) => keep.has(v)));
  if (Object.keys(back).length > 0) await registry.reinstate(name, back);

  const result: DeletedVersions = { deleted: [], reinstated: Object.keys(back) };
  for (const version of versions) {
    if (!(version in withdrawn) || version in back) continue;
    await registry.store.delete(metaKey(name, version));
    for await (const shard of registry.store.list(metaShardPrefix(name, version))) await registry.store.delete(shard.key);
    await registry.store.delete(signatureKey(name, version));
    let objects = 0;
    let bytes = 0;
    for (const object of await dataObjects(registry, name, version)) {
      await registry.store.delete(object.key);
      objects++;
      bytes += object.size;
    }
    result.deleted.push({ version, objects, bytes });
  }
  return result;
}

/** The data objects of a version: the file at its data key, or every object under that key as a folder. */
export async function dataObjects(registry: Registry, name: string, version: string): Promise<StoredObject[]> {
  const out: StoredObject[] = [];
  const key = dataKey(name, version);
  const file = await registry.store.head(key);
  if (file) out.push(file);
  for await (const object of registry.store.list(`${key}/`)) out.push(object);
  return out;
}
