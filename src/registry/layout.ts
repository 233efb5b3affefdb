// The store layout (contract, modelkit-compatible; README "Store layout"): every key is built here, and parsed
// back here, so the publish protocol, gc, prune and serving in place all agree on where each object lies.
//   P/<name>/<version>            data of a single-file asset
//   P/<name>/<version>/<relpath>  each file of a folder asset
//   P/<name>/<version>.meta       modelkit's meta keys + the assetkit block
//   P/<name>/<version>.meta.<n>   shard n of the meta's file entries, for a version of many files (manifest.ts)
//   P/<name>/<version>.sig        its signature (optional): model_signing's OMS bundle, written before the meta
//   P/<name>/<version>.claim      who is publishing that version right now (assetkit only)
//   P/<name>.versions             {"versions": [newest first], "digests": {version: digest}}, kept complete by
//                                 compare-and-swap; modelkit reads (and may rewrite) only "versions"
//   P/<name>.aliases              alias table (assetkit only)
// The content-addressed layout (opt-in per version, docs/content-addressed.md) keeps a version's files by content:
//   P/<name>/.blobs/sha256/<hex>  a file's bytes, shared by every version of the asset that holds them
//   P/<name>/.blobs/sweep         the state of the last sweep of unreferenced blobs (gc, prune)
import { UsageError } from "../base/errors.ts";
import { assetNameProblem } from "./paths.ts";
import { SCHEMES } from "./versioning.ts";

const META = ".meta";
const CLAIM = ".claim";
const SIGNATURE = ".sig";
const INDEX = ".versions";
const ALIASES = ".aliases";

/** The data of a version (a single file, or the folder holding a folder asset's files), or one file of it. */
export function dataKey(name: string, version: string, relPath = ""): string {
  return relPath ? `${name}/${version}/${relPath}` : `${name}/${version}`;
}

/** Where a version keeps its files: by path under its version (modelkit's) or by content, shared between versions. */
export type LayoutName = "modelkit" | "content-addressed";
export const LAYOUTS: readonly LayoutName[] = ["modelkit", "content-addressed"];

/** The layout a setting names (--layout, assetkit.yml, the Action's input), checked; undefined when unset. */
export function layoutNamed(text: string | undefined): LayoutName | undefined {
  if (text === undefined || text === "") return undefined;
  if (!(LAYOUTS as readonly string[]).includes(text)) throw new UsageError(`layout ${JSON.stringify(text)} is not one of ${LAYOUTS.join(", ")}`);
  return text as LayoutName;
}

const BLOBS = ".blobs";
/** What the keys of an asset's blobs start with. */
export const blobPrefix = (name: string): string => `${name}/${BLOBS}/sha256/`;
/** The blob holding the bytes whose sha256 is `sha256` (hex). */
export const blobKey = (name: string, sha256: string): string => `${blobPrefix(name)}${sha256}`;
/** The sha256 a blob key names, when `key` (listed under blobPrefix) is one; undefined for anything else there. */
export function blobDigest(name: string, key: string): string | undefined {
  const hex = key.slice(blobPrefix(name).length);
  return key.startsWith(blobPrefix(name)) && /^[0-9a-f]{64}$/.test(hex) ? hex : undefined;
}
export const sweepKey = (name: string): string => `${name}/${BLOBS}/sweep`;

export const metaKey = (name: string, version: string): string => `${name}/${version}${META}`;
export const metaShardKey = (name: string, version: string, index: number): string => `${metaKey(name, version)}.${index}`;
/** What the keys of a version's meta shards start with (nothing else does: no version ends in ".meta"). */
export const metaShardPrefix = (name: string, version: string): string => `${metaKey(name, version)}.`;
export const signatureKey = (name: string, version: string): string => `${name}/${version}${SIGNATURE}`;
export const claimKey = (name: string, version: string): string => `${name}/${version}${CLAIM}`;
export const indexKey = (name: string): string => `${name}${INDEX}`;
export const aliasesKey = (name: string): string => `${name}${ALIASES}`;

/** The version whose meta `key` is, when `key` is a meta directly under `<name>/` (what a listing of it returns). */
export function metaVersion(name: string, key: string): string | undefined {
  if (!key.startsWith(`${name}/`)) return undefined;
  const rest = key.slice(name.length + 1);
  return rest.endsWith(META) && !rest.includes("/") ? rest.slice(0, -META.length) : undefined;
}

/** The asset whose index `key` is (a valid name), else undefined. */
export function indexedAsset(key: string): string | undefined {
  return key.endsWith(INDEX) ? validName(key.slice(0, -INDEX.length)) : undefined;
}

/**
 * The assets a listing of `keys` shows, longest name first (as parseVersionKey takes them): those with an index,
 * and those with a claim (a first publish that never finished).
 */
export function assetsIn(keys: Iterable<string>): string[] {
  const names = new Set<string>();
  for (const key of keys) {
    const name = key.endsWith(CLAIM) && key.includes("/") ? validName(key.slice(0, key.lastIndexOf("/"))) : indexedAsset(key);
    if (name !== undefined) names.add(name);
  }
  return [...names].sort((a, b) => b.length - a.length);
}

export interface VersionPart {
  name: string;
  version: string;
  kind: "meta" | "meta-shard" | "claim" | "signature" | "data";
}

/**
 * Which version of which asset a key belongs to, and as what; undefined for keys outside any version. `names`
 * are the assets to look in, longest first: a key belongs to the most specific asset (a/b/1.0.0 is a version of
 * a/b, not a part of a).
 */
export function parseVersionKey(key: string, names: readonly string[]): VersionPart | undefined {
  for (const name of names) {
    if (!key.startsWith(`${name}/`)) continue;
    const rest = key.slice(name.length + 1);
    const slash = rest.indexOf("/");
    const segment = slash < 0 ? rest : rest.slice(0, slash);
    const shard = slash < 0 ? SHARD_SUFFIX.exec(segment) : null;
    const suffix = slash < 0 && !shard ? SUFFIXES.find(([end]) => segment.endsWith(end)) : undefined;
    const kind = shard ? "meta-shard" : (suffix?.[1] ?? "data");
    const version = shard ? segment.slice(0, shard.index) : kind === "data" ? segment : segment.slice(0, segment.lastIndexOf("."));
    if (SCHEMES.some((s) => s.isVersion(version))) return { name, version, kind };
  }
  return undefined;
}

const SHARD_SUFFIX = /\.meta\.\d+$/;

/** The objects beside a version's data, by how their keys end. */
const SUFFIXES: readonly (readonly [string, VersionPart["kind"]])[] = [
  [META, "meta"],
  [CLAIM, "claim"],
  [SIGNATURE, "signature"],
];

/** A name read back from a key, when it is a valid asset name (a stray object may carry any key). */
function validName(name: string): string | undefined {
  return assetNameProblem(name) ? undefined : name;
}

/** The object holding a file of a version, in the layout its meta records: the single place readers map files to keys. */
export function fileKey(name: string, version: string, layout: LayoutName, file: { path: string; sha256?: string | undefined }): string {
  if (layout === "modelkit") return dataKey(name, version, file.path);
  // A content-addressed meta is assetkit's: validated, every file has its sha256.
  return blobKey(name, file.sha256!);
}
