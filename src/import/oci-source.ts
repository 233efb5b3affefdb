// Importing an OCI artifact, as `oras push` writes one (docs/oci.md §4, "Import"): `oci://<registry>/<repo>:<tag>`
// or `…@sha256:<digest>`. A layer titled with a path (`org.opencontainers.image.title`) is a file, whatever its
// media type (ORAS types plain files as tar layers); a titled layer marked `io.deis.oras.content.unpack` is a
// pushed folder, a tar+gzip whose entries under its title are unpacked; untitled layers are skipped, as ORAS skips them. Every blob
// is checked against its digest as it arrives. A file assetkit split into part layers (registry/oci/split.ts) is
// one file again, checked against the sha256 its meta (the config) lists. The manifest digest pins the content (--if-changed).
import path from "node:path";
import { AssetError, UsageError } from "../base/errors.ts";
import { parseMeta } from "../registry/manifest.ts";
import { CONFIG_MEDIA_TYPE, metaOfConfig, sha256Digest, type Descriptor } from "../registry/oci/artifact.ts";
import { openParts, storedFiles } from "../registry/oci/split.ts";
import { relativePathProblem } from "../registry/paths.ts";
import type { OciClient } from "../store/oci/client.ts";
import { openOciClient, parseOciUri } from "../store/oci/open.ts";
import { unpack } from "./archive.ts";
import { pathMatcher } from "./filter.ts";
import { downloadAll, fingerprint, type ImportSettings, type ImportSource, type RemoteFile } from "./source.ts";

const UNPACK = "io.deis.oras.content.unpack";
const IMAGE_INDEX = "application/vnd.oci.image.index.v1+json";

export async function openOciSource(uri: string, settings: ImportSettings): Promise<ImportSource> {
  // oci://host/repo:tag or oci://host/repo@sha256:… : the reference after the last path segment's ':' or '@'.
  const m = /^(oci:\/\/[^/]+\/[^?@]*?)(?::([A-Za-z0-9_][A-Za-z0-9._-]{0,127})|@(sha256:[0-9a-f]{64}))(\?.*)?$/.exec(uri);
  if (!m) throw new UsageError(`cannot import ${uri}: write oci://<registry>/<repository>:<tag> or oci://<registry>/<repository>@sha256:<digest>`);
  const reference = m[2] ?? m[3]!;
  const location = parseOciUri(m[1]! + (m[4] ?? ""));
  const repo = location.namespace;
  const client = openOciClient(location, settings.transfers.settings);
  const shown = `${location.url}${m[2] ? `:${m[2]}` : `@${m[3]}`}`;
  const manifest = await client.getManifest(repo, reference);
  if (!manifest) throw new AssetError(`nothing to import at ${shown}: the registry has no such manifest`);
  const doc = JSON.parse(manifest.data.toString("utf8")) as { mediaType?: string; config?: Descriptor; layers?: Descriptor[] };
  if (doc.mediaType === IMAGE_INDEX || manifest.mediaType === IMAGE_INDEX) {
    throw new UsageError(`cannot import ${shown}: it is an image index; name one of its manifests by digest`);
  }
  const accept = pathMatcher(settings.filter);
  const layers = storedFiles(doc.layers ?? [], shown).filter((l) => accept(l.title));
  if (layers.length === 0) throw new AssetError(`nothing to import at ${shown}: no layer is titled with a file name (org.opencontainers.image.title)`);
  const splitHashes = layers.some((l) => l.parts.length > 1) ? await splitFileHashes(client, repo, doc.config, shown) : new Map<string, string>();
  const files: (RemoteFile & { folder: boolean })[] = layers.map((layer, i) => {
    const { title } = layer;
    const problem = relativePathProblem(title);
    if (problem) throw new AssetError(`cannot import ${shown}: layer title ${JSON.stringify(title)} is not a safe relative path: ${problem}`);
    const folder = layer.annotations[UNPACK] === "true";
    const sha256 = layer.parts.length > 1 ? (splitHashes.get(title) ?? splitHashes.get("")) : sha256Hex(layer.parts[0]!.digest);
    if (layer.parts.length > 1 && sha256 === undefined)
      throw new AssetError(`cannot import ${shown}: ${title} is stored in parts and its config lists no sha256 for it to be checked against`);
    const label = `${title} of ${shown}`;
    return {
      // A folder's archive is staged aside, then unpacked under its title.
      path: folder ? `${i}.tar.gz` : title,
      size: layer.size,
      ...(sha256 !== undefined ? { sha256 } : {}),
      open: (range) => openParts(layer, range, (digest, within) => client.openBlob(repo, digest, within), label),
      label,
      folder,
    };
  });
  const origin = { uri: shown, revision: manifest.digest, fingerprint: fingerprint(shown, manifest.digest, settings) };
  return {
    origin,
    async stage(dir) {
      const root = path.join(dir, "files");
      await downloadAll(
        root,
        files.filter((f) => !f.folder),
        settings,
      );
      const archives = await downloadAll(
        path.join(dir, "archives"),
        files.filter((f) => f.folder),
        settings,
      );
      for (const [i, archive] of archives.entries()) {
        const { title } = layers.filter((l) => l.annotations[UNPACK] === "true")[i]!;
        // ORAS names the archive's entries under the title (`sub/…`), and unpacks nothing outside it.
        await unpack("tar.gz", archive.source, root, settings.limits, (rel) => (rel === title || rel.startsWith(`${title}/`)) && accept(rel));
      }
      return { path: root, origin };
    },
  };
}

/**
 * The sha256 of each file of an assetkit version, by path ("" for a single-file asset's), from the meta its config
 * holds: what a file split into parts is checked against, as its parts' digests are not the file's.
 */
async function splitFileHashes(client: OciClient, repo: string, config: Descriptor | undefined, shown: string): Promise<Map<string, string>> {
  if (config?.mediaType !== CONFIG_MEDIA_TYPE) return new Map();
  const where = `the config of ${shown}`;
  const data = await client.readBlob(repo, config.digest, config.size);
  if (sha256Digest(data) !== config.digest) throw new AssetError(`${where} is damaged: its bytes do not have digest ${config.digest}`);
  return new Map(parseMeta(metaOfConfig(data, where), where).files.flatMap((f) => (f.sha256 ? [[f.path, f.sha256] as const] : [])));
}

/** The hex of a sha256 digest; undefined for another algorithm's (then only the size is checked). */
function sha256Hex(digest: string): string | undefined {
  return digest.startsWith("sha256:") ? digest.slice("sha256:".length) : undefined;
}
