// A version as an OCI artifact (docs/oci.md §4): one image manifest in the CNCF ModelPack shape, one raw layer per
// file (its digest the file's sha256, its title the file's path), and the version's meta as the `assetkit` key of
// the ModelPack config blob. Building and reading them; no request is made here.
import { createHash } from "node:crypto";
import { AssetError } from "../../base/errors.ts";
import type { AssetMetaDocument, Provenance } from "../manifest.ts";

export const MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json";
export const ARTIFACT_TYPE = "application/vnd.cncf.model.manifest.v1+json";
export const CONFIG_MEDIA_TYPE = "application/vnd.cncf.model.config.v1+json";
/** The spec's floor for manifests and distribution's measured cap (4,194,304 bytes; 400 above it). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

export const TITLE = "org.opencontainers.image.title";
const FILEPATH = "org.cncf.model.filepath";
const UNTESTED = "org.cncf.model.file.mediatype.untested";
/** The asset digest (docs/oci.md §4): what resolve and lock read, from the manifest alone. */
export const DIGEST_ANNOTATION = "io.assetkit.digest";
const SCHEMA_ANNOTATION = "io.assetkit.schema";
/** On a part layer of a split file: the path (the title it would have whole) of the file it belongs to. */
export const PART_OF = "io.assetkit.part-of";
/** On a part layer: its first byte in its file (decimal). */
export const PART_OFFSET = "io.assetkit.part-offset";

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  /** What the artifact refers to (OCI 1.1): a signature's subject is its version's manifest. */
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** A file of a version as layers: its path in the version ("" for a single-file asset), size and sha256 digest. */
export interface LayerFile {
  path: string;
  size: number;
  digest: string;
  /** A file over `?max-blob=`: its consecutive parts, one layer each (split.ts); else the file is one blob of `digest`. */
  parts?: BlobPart[];
}

/** One blob of a split file: its digest, size and first byte in the file. */
export interface BlobPart {
  digest: string;
  size: number;
  offset: number;
}

// The ModelPack family of a file, guessed from its name (hence marked untested); the first match wins.
const FAMILIES: readonly [RegExp, string][] = [
  [/(^|\/)(config\.json|tokenizer[^/]*\.json|vocab\.[^/]*|merges\.txt)$/i, "weight.config"],
  [/\.(safetensors|bin|onnx|gguf|pt|pth|ckpt|h5|msgpack)$/i, "weight"],
  [/(^|\/)(readme[^/]*|license[^/]*)$|\.md$/i, "doc"],
  [/\.(py|sh)$/i, "code"],
  [/\.(parquet|jsonl|csv|arrow)$/i, "dataset"],
];

/** The layer media type of a file: `application/vnd.cncf.model.<family>.v1.raw` (raw: the bytes as they are). */
export function layerMediaType(path: string): string {
  const family = FAMILIES.find(([pattern]) => pattern.test(path))?.[1] ?? "weight";
  return `application/vnd.cncf.model.${family}.v1.raw`;
}

export function sha256Digest(data: Buffer): string {
  return "sha256:" + createHash("sha256").update(data).digest("hex");
}

/** The title of a file's layer: its path, or the asset name's last segment for a single-file asset (what pullers write). */
export function layerTitle(name: string, path: string): string {
  return path === "" ? name.slice(name.lastIndexOf("/") + 1) : path;
}

/** The config blob: ModelPack's required keys, and the version's whole meta under `assetkit`. */
export function configBlob(name: string, meta: AssetMetaDocument, layers: readonly LayerFile[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      descriptor: { createdAt: meta.push_date, name },
      config: {},
      modelfs: { type: "layers", diffIds: layers.flatMap((l) => l.parts?.map((p) => p.digest) ?? [l.digest]) },
      assetkit: meta,
    }),
  );
}

/** The manifest of a version: its bytes (what its digest is of) as sent to the registry. */
export function manifestBytes(name: string, meta: AssetMetaDocument, config: Buffer, layers: readonly LayerFile[], source: Provenance): Buffer {
  const annotations: Record<string, string> = { "org.opencontainers.image.created": meta.push_date };
  if (meta.assetkit?.digest) annotations[DIGEST_ANNOTATION] = meta.assetkit.digest;
  if (meta.assetkit?.schema !== undefined) annotations[SCHEMA_ANNOTATION] = String(meta.assetkit.schema);
  if (source.repository) annotations["org.opencontainers.image.source"] = `https://github.com/${source.repository}`;
  if (source.sha) annotations["org.opencontainers.image.revision"] = source.sha;
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MANIFEST_MEDIA_TYPE,
    artifactType: ARTIFACT_TYPE,
    config: { mediaType: CONFIG_MEDIA_TYPE, digest: sha256Digest(config), size: config.length },
    layers: layers.flatMap((l) => {
      const title = layerTitle(name, l.path);
      const layer = (digest: string, size: number, named: string, more: Record<string, string> = {}): Descriptor => ({
        mediaType: layerMediaType(l.path),
        digest,
        size,
        annotations: { [TITLE]: named, [FILEPATH]: named, [UNTESTED]: "true", ...more },
      });
      if (!l.parts) return [layer(l.digest, l.size, title)];
      // Each part titled as a part: a standard puller writes the parts side by side, never a wrong whole file.
      return l.parts.map((p, i) => layer(p.digest, p.size, partTitle(title, i, l.parts!.length), { [PART_OF]: title, [PART_OFFSET]: String(p.offset) }));
    }),
    annotations,
  };
  return Buffer.from(JSON.stringify(manifest));
}

/** `<title>.part-002-of-004`: zero-padded, so a shell glob lists the parts in order (`cat x.part-* > x`). */
export function partTitle(title: string, index: number, count: number): string {
  const width = Math.max(3, String(count).length);
  return `${title}.part-${String(index + 1).padStart(width, "0")}-of-${String(count).padStart(width, "0")}`;
}

/** A file named like a part of another file that is over `maxBlob`: a puller would write both at one path. */
export function partTitleClash(name: string, files: readonly { path: string; size: number }[], maxBlob: number | undefined): string | undefined {
  if (maxBlob === undefined) return undefined;
  const titles = new Set(files.map((f) => layerTitle(name, f.path)));
  for (const f of files) {
    const count = Math.ceil(f.size / maxBlob);
    if (count < 2) continue;
    const title = layerTitle(name, f.path);
    for (let i = 0; i < count; i++) {
      const part = partTitle(title, i, count);
      if (titles.has(part)) return `${part} is the name of a file and of a part of ${title} (over max-blob ${maxBlob} bytes): rename the file`;
    }
  }
  return undefined;
}

/**
 * An upper bound of the manifest's size from the paths and sizes alone (before any hash is known): what publish
 * refuses early. A file over `maxBlob` takes a layer per part, each naming its file three times.
 */
export function manifestSizeBound(name: string, files: readonly { path: string; size: number }[], maxBlob: number | undefined): number {
  const perLayer = 360; // descriptor, media type, digest and annotation keys, with room
  const perPart = 120; // the part suffix twice, the part-of and offset annotations
  return (
    2048 +
    files.reduce((sum, f) => {
      const parts = maxBlob !== undefined && f.size > maxBlob ? Math.ceil(f.size / maxBlob) : 1;
      const titleBytes = Buffer.byteLength(JSON.stringify(layerTitle(name, f.path)));
      return sum + parts * (perLayer + (parts > 1 ? perPart + 3 * titleBytes : 2 * titleBytes));
    }, 0)
  );
}

/** A manifest read from the registry, checked for what assetkit needs of it; `where` names it in errors. */
export function parseManifest(data: Buffer, where: string, configType = CONFIG_MEDIA_TYPE): ImageManifest {
  let doc: ImageManifest;
  try {
    doc = JSON.parse(data.toString("utf8")) as ImageManifest;
  } catch {
    throw new AssetError(`${where} is not a JSON manifest`);
  }
  const descriptor = (d: unknown): boolean =>
    typeof d === "object" && d !== null && typeof (d as Descriptor).digest === "string" && typeof (d as Descriptor).size === "number";
  if (!descriptor(doc.config) || !Array.isArray(doc.layers) || !doc.layers.every(descriptor)) {
    throw new AssetError(`${where} is not an OCI image manifest (no config or layers)`);
  }
  if (doc.config.mediaType !== configType) {
    throw new AssetError(`${where} was not written by assetkit (config ${doc.config.mediaType}, not ${configType})`);
  }
  return doc;
}

/** A channel move record's config type, and the OCI empty blob its manifest names as its one layer (an artifact with no files). */
export const MOVE_CONFIG_MEDIA_TYPE = "application/vnd.assetkit.channel-move.v1+json";
export const EMPTY_BLOB = Buffer.from("{}");
const EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json";
/** The empty blob as a descriptor: the config or the one layer of an artifact that has none. */
const EMPTY: Descriptor = { mediaType: EMPTY_MEDIA_TYPE, digest: sha256Digest(EMPTY_BLOB), size: EMPTY_BLOB.length };

/** The manifest of a channel move record, whose config blob is the record. */
export function moveManifestBytes(config: Buffer): Buffer {
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MANIFEST_MEDIA_TYPE,
    artifactType: "application/vnd.assetkit.channel-move.v1",
    config: { mediaType: MOVE_CONFIG_MEDIA_TYPE, digest: sha256Digest(config), size: config.length },
    layers: [EMPTY],
  };
  return Buffer.from(JSON.stringify(manifest));
}

/**
 * The media type of a version's signature: the `.sig` bytes, a Sigstore bundle (what model_signing writes), kept
 * opaque here as on key-value stores. The signature's manifest has it as artifact type and as its one layer's.
 */
export const SIGNATURE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json";

/**
 * The manifest of a version's signature (docs/oci.md §4): the signature as its one layer, the version's manifest
 * as its subject, so that it is a referrer of the version (`oras discover`) as well as tagged `_s.<version>`.
 */
export function signatureManifestBytes(signature: Buffer, subject: { digest: string; size: number }): Buffer {
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MANIFEST_MEDIA_TYPE,
    artifactType: SIGNATURE_MEDIA_TYPE,
    config: EMPTY,
    layers: [{ mediaType: SIGNATURE_MEDIA_TYPE, digest: sha256Digest(signature), size: signature.length }],
    subject: { mediaType: MANIFEST_MEDIA_TYPE, ...subject },
  };
  return Buffer.from(JSON.stringify(manifest));
}

/** The signature layer a signature manifest names, if it signs the manifest `subject` (else undefined: another manifest's). */
export function signatureLayer(data: Buffer, where: string, subject: string): Descriptor | undefined {
  const manifest = parseManifest(data, where, EMPTY_MEDIA_TYPE);
  const layer = manifest.layers[0];
  if (manifest.layers.length !== 1 || layer!.mediaType !== SIGNATURE_MEDIA_TYPE)
    throw new AssetError(`${where} is not a signature (one ${SIGNATURE_MEDIA_TYPE} layer)`);
  return manifest.subject?.digest === subject ? layer : undefined;
}

/**
 * The manifest an early claim tags until the version's own manifest exists (docs/oci.md §5.1): the empty blob as
 * config and as its one layer, so that it names nothing but a blob every claimer has put first.
 */
export function standInManifestBytes(): Buffer {
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MANIFEST_MEDIA_TYPE,
    artifactType: "application/vnd.assetkit.claim.v1",
    config: EMPTY,
    layers: [EMPTY],
  };
  return Buffer.from(JSON.stringify(manifest));
}

/** The meta document in a config blob. */
export function metaOfConfig(data: Buffer, where: string): Buffer {
  try {
    const meta = (JSON.parse(data.toString("utf8")) as { assetkit?: unknown }).assetkit;
    if (typeof meta === "object" && meta !== null) return Buffer.from(JSON.stringify(meta));
  } catch {
    // reported below
  }
  throw new AssetError(`${where} holds no assetkit meta`);
}
