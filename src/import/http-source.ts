// Importing an HTTP(S) file: a plain file becomes a single-file asset; a .tar, .tar.gz/.tgz or .zip (by its
// name, or its Content-Type) is downloaded, then unpacked safely into a folder asset. Read through the
// read-only HTTP store (retries, byte ranges, credentials in the URL sent as a header, a query string sent with
// every request but never recorded).
import { AssetError, UsageError } from "../base/errors.ts";
import { redactUri as redact, uriWithoutQuery } from "../store/redact.ts";
import type { ByteRange } from "../store/store.ts";
import { stageFile, type ImportSettings, type ImportSource } from "./source.ts";

export async function openHttpSource(uri: string, settings: ImportSettings): Promise<ImportSource> {
  const shown = redact(uri);
  const url = new URL(uri);
  const segments = url.pathname.split("/");
  const leaf = decodeURIComponent(segments.pop() ?? "");
  if (!leaf) throw new UsageError(`cannot import ${shown}: name a file (an HTTP server cannot list a folder)`);
  url.pathname = segments.join("/");
  const store = await settings.openStore(url.href);
  const head = await store.head(leaf);
  if (!head) throw new AssetError(`nothing to import at ${shown}: the server has no file there`);
  const file = { path: "", size: head.size, open: (range?: ByteRange) => store.openRead(leaf, range), label: shown };
  const origin = { uri: uriWithoutQuery(uri), etags: { "": head.etag } };
  return { origin, stage: (dir) => stageFile(dir, file, leaf, head.contentType, origin, settings) };
}
