// Importing an OCI artifact, as `oras push` writes one (docs/oci.md §4, "Import"): `oci://<registry>/<repo>:<tag>`
// or `…@sha256:<digest>`. A layer titled with a path (`org.opencontainers.image.title`) is a file, whatever its
// media type (ORAS types plain files as tar layers); a titled layer marked `io.deis.oras.content.unpack` is a
// pushed folder, a tar+gzip whose entries under its title are unpacked; untitled layers are skipped, as ORAS skips them. Every blob
// is checked against its digest as it arrives. The manifest digest pins the content (--if-changed).
import path from "node:path";
import { AssetError, UsageError } from "../base/errors.ts";
import { relativePathProblem } from "../registry/paths.ts";
import { openOciClient, parseOciUri } from "../store/oci/open.ts";
import { unpack } from "./archive.ts";
import { pathMatcher } from "./filter.ts";
import { downloadAll, fingerprint, type ImportSettings, type ImportSource, type RemoteFile } from "./source.ts";

const TITLE = "org.opencontainers.image.title";
const UNPACK = "io.deis.oras.content.unpack";
const IMAGE_INDEX = "application/vnd.oci.image.index.v1+json";

interface Layer {
  mediaType?: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

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
  const doc = JSON.parse(manifest.data.toString("utf8")) as { mediaType?: string; layers?: Layer[] };
  if (doc.mediaType === IMAGE_INDEX || manifest.mediaType === IMAGE_INDEX) {
    throw new UsageError(`cannot import ${shown}: it is an image index; name one of its manifests by digest`);
  }
  const accept = pathMatcher(settings.filter);
  const layers = (doc.layers ?? []).filter((l) => l.annotations?.[TITLE] !== undefined && accept(l.annotations[TITLE]!));
  if (layers.length === 0) throw new AssetError(`nothing to import at ${shown}: no layer is titled with a file name (org.opencontainers.image.title)`);
  const files: (RemoteFile & { folder: boolean })[] = layers.map((layer, i) => {
    const title = layer.annotations![TITLE]!;
    const problem = relativePathProblem(title);
    if (problem) throw new AssetError(`cannot import ${shown}: layer title ${JSON.stringify(title)} is not a safe relative path: ${problem}`);
    const folder = layer.annotations?.[UNPACK] === "true";
    return {
      // A folder's archive is staged aside, then unpacked under its title.
      path: folder ? `${i}.tar.gz` : title,
      size: layer.size,
      ...(layer.digest.startsWith("sha256:") ? { sha256: layer.digest.slice("sha256:".length) } : {}),
      open: (range) => client.openBlob(repo, layer.digest, range),
      label: `${title} of ${shown}`,
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
        const title = layers.filter((l) => l.annotations?.[UNPACK] === "true")[i]!.annotations![TITLE]!;
        // ORAS names the archive's entries under the title (`sub/…`), and unpacks nothing outside it.
        await unpack("tar.gz", archive.source, root, settings.limits, (rel) => (rel === title || rel.startsWith(`${title}/`)) && accept(rel));
      }
      return { path: root, origin };
    },
  };
}
