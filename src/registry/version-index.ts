// The version index `<name>.versions` of each asset: read once per command (listing the metas when it is
// unusable), and changed only by compare-and-swap, so publishers, promoters and prunes never lose each other's versions.
import type { Store } from "../store/store.ts";
import { indexKey, metaVersion } from "./layout.ts";
import { updateDocument } from "./shared-document.ts";
import { detectScheme, orderVersions, sortNewestFirst, type Scheme, type SchemeName } from "./versioning.ts";

export interface VersionIndex {
  versions: string[];
  scheme: Scheme;
  /** Etag of the `.versions` object, for compare-and-swap; undefined when it is absent. */
  etag?: string;
  /** The asset digest the index records for a version (published by assetkit), so resolving needs no meta. */
  digest(version: string): string | undefined;
  /** The versions listed, when none is in a scheme assetkit knows: nothing resolves, nothing is published onto them. */
  foreign?: string[];
}

interface IndexDocument {
  versions: string[];
  /** As read: checked entry by entry when used (see recordedDigest), not for all 10,000 versions of a resolve. */
  digests: Record<string, unknown>;
}

/** The indexes of one store, each read once (a command's lifetime) until forgotten; writers read afresh. */
export class VersionIndexes {
  private readonly store: Store;
  /** The scheme a new asset takes. */
  private readonly versioning: SchemeName;
  private readonly warn?: (message: string) => void;
  private readonly cache = new Map<string, Promise<VersionIndex>>();

  constructor(store: Store, versioning: SchemeName, warn?: (message: string) => void) {
    this.store = store;
    this.versioning = versioning;
    this.warn = warn;
  }

  /** The committed versions of an asset, newest first: one GET of `.versions`, or a listing when it is unusable. */
  get(name: string): Promise<VersionIndex> {
    let index = this.cache.get(name);
    if (!index) {
      index = this.read(name);
      this.cache.set(name, index);
      index.catch(() => this.cache.delete(name));
    }
    return index;
  }

  /** The committed versions as the store has them now (not the copy read before). */
  fresh(name: string): Promise<VersionIndex> {
    this.forget(name);
    return this.get(name);
  }

  /** Drops the index read earlier, so the next read goes to the store again. */
  forget(name: string): void {
    this.cache.delete(name);
  }

  private async read(name: string): Promise<VersionIndex> {
    const index = await this.store.read(indexKey(name));
    let parsed: IndexDocument | undefined;
    if (index) {
      parsed = parseIndex(index.data);
      if (!parsed) this.warn?.(`${indexKey(name)} in ${this.store.url} is unreadable; listing the asset's metas instead`);
    }
    parsed ??= { versions: await this.versionsFromMetas(name), digests: {} };
    const scheme = detectScheme(parsed.versions, this.versioning);
    const versions = orderVersions(scheme, parsed.versions).known;
    const foreign = versions.length === 0 && parsed.versions.length > 0 ? parsed.versions : undefined;
    const { digests } = parsed;
    return {
      versions,
      scheme,
      digest: (version) => recordedDigest(digests, version),
      ...(index ? { etag: index.etag } : {}),
      ...(foreign ? { foreign } : {}),
    };
  }

  private async versionsFromMetas(name: string): Promise<string[]> {
    if (!this.store.listable) return [];
    const out: string[] = [];
    // Shallow: the metas sit beside the versions' folders, whose files (thousands, for a dataset) need not be listed.
    for await (const object of this.store.list(`${name}/`, { shallow: true })) {
      const version = metaVersion(name, object.key);
      if (version !== undefined) out.push(version);
    }
    return out;
  }

  /** Lists a committed version (with its digest, when it has one); nothing changes when it is listed already. */
  async add(name: string, version: string, scheme: Scheme, digest: string | null): Promise<void> {
    await updateDocument(this.store, indexKey(name), async (current) => {
      const known = (current && parseIndex(current)) ?? { versions: await this.versionsFromMetas(name), digests: {} };
      if (current && known.versions.includes(version)) return undefined;
      const digests: Record<string, unknown> = { ...known.digests, ...(digest ? { [version]: digest } : {}) };
      return indexDocument(sortNewestFirst(scheme, [...known.versions, version]), digests);
    });
    this.forget(name);
  }

  /**
   * Removes versions from `.versions` (and their digests): the first step of deleting a version, after which no
   * reader resolves it. Returns the versions that were listed, with their digests.
   */
  async withdraw(name: string, versions: readonly string[]): Promise<Record<string, string | null>> {
    const removed: Record<string, string | null> = {};
    await updateDocument(this.store, indexKey(name), async (current) => {
      const known = current && parseIndex(current);
      if (!known) return undefined;
      for (const v of Object.keys(removed)) delete removed[v];
      for (const v of versions) if (known.versions.includes(v)) removed[v] = recordedDigest(known.digests, v) ?? null;
      if (Object.keys(removed).length === 0) return undefined;
      return indexDocument(
        known.versions.filter((v) => !(v in removed)),
        known.digests,
      );
    });
    this.forget(name);
    return removed;
  }

  /** Lists withdrawn versions again (a channel moved onto one while it was being withdrawn). */
  async reinstate(name: string, withdrawn: Record<string, string | null>): Promise<void> {
    const { scheme } = await this.get(name);
    // No digest (a version modelkit wrote): the index lists it without one.
    for (const [version, digest] of Object.entries(withdrawn)) await this.add(name, version, scheme, digest ?? "");
  }
}

/** Same shape modelkit reads ("versions"), plus the well-formed digests of the versions listed. */
function indexDocument(versions: string[], digests: Record<string, unknown>): string {
  const listed = versions.flatMap((v) => {
    const digest = recordedDigest(digests, v);
    return digest ? [[v, digest]] : [];
  });
  return JSON.stringify({ versions, digests: Object.fromEntries(listed) }) + "\n";
}

/** The digest recorded for `version`, when it is well-formed (an own entry: no "constructor" from the prototype). */
function recordedDigest(digests: Record<string, unknown>, version: string): string | undefined {
  const digest = Object.hasOwn(digests, version) ? digests[version] : undefined;
  return typeof digest === "string" && /^sha256:[0-9a-f]{64}$/.test(digest) ? digest : undefined;
}

/**
 * `{"versions": [...], "digests": {...}}` → its content, or undefined without a versions list. The digests are
 * optional (modelkit writes none, and drops them when it rewrites the index) and used only where well-formed.
 */
function parseIndex(data: Buffer): IndexDocument | undefined {
  try {
    const doc = JSON.parse(data.toString("utf8")) as { versions?: unknown; digests?: unknown };
    if (!Array.isArray(doc.versions) || !doc.versions.every((v) => typeof v === "string")) return undefined;
    const digests = typeof doc.digests === "object" && doc.digests !== null && !Array.isArray(doc.digests) ? (doc.digests as Record<string, unknown>) : {};
    return { versions: doc.versions as string[], digests };
  } catch {
    return undefined;
  }
}
