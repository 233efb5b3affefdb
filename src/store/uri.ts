// Store URI → Store. The only place that knows which backend serves which URI. Backends are imported lazily,
// so a run loads only its own store's SDK (and the bundle keeps each SDK in a chunk of its own).
import path from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError } from "../errors.ts";
import { FsStore } from "./fs.ts";
import { StoreError, type Store } from "./store.ts";

/**
 * Opens the store at `uri`: s3://bucket/prefix, gs://bucket/prefix, az://container/prefix,
 * https://<account>.blob.core.windows.net/container/prefix, http(s)://host/prefix (read-only),
 * file:///abs, or a plain path (relative to `baseDir`).
 */
export async function openStore(uri: string, baseDir: string = process.cwd()): Promise<Store> {
  try {
    return await openBackend(uri, baseDir);
  } catch (err) {
    // A backend that refuses a URI while opening it (no network yet) refuses its spelling: a usage error.
    if (err instanceof StoreError) throw new UsageError(`bad store URI ${redact(uri)}: ${err.message}`);
    throw err;
  }
}

/**
 * The folder of a local or mounted store (file:///abs, or a plain path relative to `baseDir`); undefined for a
 * remote one. Read from the URI, not the Store, so layers wrapped around a backend do not hide it.
 */
export function localStoreRoot(uri: string, baseDir: string = process.cwd()): string | undefined {
  const scheme = schemeOf(uri);
  if (scheme === undefined) return path.resolve(baseDir, uri);
  return scheme === "file" ? fileURLToPath(new URL(uri)) : undefined;
}

function schemeOf(uri: string): string | undefined {
  return /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(uri)?.[1]?.toLowerCase();
}

async function openBackend(uri: string, baseDir: string): Promise<Store> {
  const scheme = schemeOf(uri);
  if (scheme === undefined) return new FsStore(path.resolve(baseDir, uri), uri);
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new UsageError(`bad store URI: ${redact(uri)}`);
  }
  if (scheme !== "file" && !url.hostname) throw new UsageError(`bad store URI ${redact(uri)}: no bucket, container or host`);
  switch (scheme) {
    case "file":
      return new FsStore(fileURLToPath(url), uri);
    case "s3":
      return (await import("./s3.ts")).openS3Store(url);
    case "gs":
      return (await import("./gcs.ts")).openGcsStore(url);
    case "az":
      return (await import("./azure.ts")).openAzureStore(url);
    case "http":
    case "https": {
      if (url.hostname.includes(".blob.")) {
        const azure = await import("./azure.ts");
        if (azure.isAzureBlobUrl(url)) return azure.openAzureStore(url);
      }
      return (await import("./http.ts")).openHttpStore(url);
    }
    default:
      throw new UsageError(`unsupported store URI scheme ${scheme}:// (use s3://, gs://, az://, https://, file:// or a path)`);
  }
}

/** A URI for messages: user:password and query strings (SAS tokens) removed. */
function redact(uri: string): string {
  return uri.replace(/\/\/[^/@]*@/, "//").replace(/\?.*$/, "");
}
