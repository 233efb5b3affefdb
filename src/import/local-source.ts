import { stat } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError } from "../base/errors.ts";
import { hashPool } from "../hashing/pool.ts";
import { uriWithoutQuery } from "../store/redact.ts";
import { archiveKind, unpack } from "./archive.ts";
import { pathMatcher } from "./filter.ts";
import type { ImportSettings, ImportSource } from "./source.ts";

/** A file or folder on this machine (or a mounted volume): published as it is (an archive unpacked), nothing copied. */
export async function openLocalSource(uri: string, settings: ImportSettings): Promise<ImportSource> {
  const isUrl = uri.startsWith("file://");
  const file = isUrl ? fileURLToPath(uri) : uri;
  // A plain path is recorded as written: a '?' in it names a file, not a query.
  const origin = { uri: isUrl ? uriWithoutQuery(uri) : uri };
  const kind = settings.unpack ? archiveKind(path.basename(file)) : undefined;
  const isFile = await stat(file).then(
    (s) => s.isFile(),
    () => false,
  );
  if (!isFile && settings.filter.include.length + settings.filter.exclude.length > 0) {
    throw new UsageError("--include/--exclude filter remote sources and archives; a local folder is published as it is");
  }
  return {
    origin,
    async stage(dir) {
      if (!kind || !isFile) return { path: file, origin };
      const files = path.join(dir, "files");
      await unpack(kind, file, files, settings.limits, pathMatcher(settings.filter));
      return { path: files, origin: { ...origin, sha256: await hashPool.hashFile(file, (await stat(file)).size) } };
    },
  };
}
