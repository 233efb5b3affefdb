// Store URI → Store. The only place that knows which backend serves which URI (the rule set for reading a URI is
// location.ts). Backends are imported lazily, so a run loads only its own store's SDK
// (and the bundle keeps each SDK in a chunk of its own). Every backend is wrapped in the same layers.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError } from "../base/errors.ts";
import { FsStore } from "./fs.ts";
import { layered } from "./layers/index.ts";
import { KNOWN_PARAMETERS, parseLocation } from "./location.ts";
import { redactUri } from "./redact.ts";
import { StoreError, type Backend, type Store } from "./store.ts";
import type { Tuning } from "./tuning.ts";

/** An OCI registry: opened as a layout of its own by the command context (src/registry/oci), not as a Store. */
export function isOciUri(uri: string): boolean {
  return /^oci:\/\//i.test(uri);
}

/**
 * Opens the store at `uri`: s3://bucket/prefix, gs://bucket/prefix, az://container/prefix,
 * https://<account>.blob.core.windows.net/container/prefix, http(s)://host/prefix (read-only),
 * file:///abs, or a plain path (relative to `baseDir`), wrapped in the retry, error-context and timeout layers.
 * Commands open stores through their context (Context.openStore), which binds `tuning` to the environment's.
 */
export async function openStore(uri: string, baseDir: string, tuning: Tuning): Promise<Store> {
  try {
    return layered(await openBackend(uri, baseDir, tuning), tuning);
  } catch (err) {
    // A backend that refuses a URI while opening it (no network yet) refuses its spelling: a usage error.
    if (err instanceof StoreError) throw new UsageError(`bad store URI ${redactUri(uri)}: ${err.message}`);
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

async function openBackend(uri: string, baseDir: string, tuning: Tuning): Promise<Backend> {
  const scheme = schemeOf(uri);
  if (scheme === undefined) return new FsStore(path.resolve(baseDir, uri), uri);
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new UsageError(`bad store URI: ${redactUri(uri)}`);
  }
  if (scheme !== "file" && !url.hostname) throw new UsageError(`bad store URI ${redactUri(uri)}: no bucket, container or host`);
  if (scheme in KNOWN_PARAMETERS) parseLocation(url); // refuses a bad URI before its SDK loads
  switch (scheme) {
    case "file":
      return new FsStore(fileURLToPath(url), redactUri(uri));
    case "s3":
      return (await import("./s3/s3.ts")).openS3Store(url, { tuning });
    case "gs":
      return (await import("./gcs.ts")).openGcsStore(url, { tuning });
    case "az":
      return (await import("./azure.ts")).openAzureStore(url, { tuning });
    case "http":
    case "https": {
      if (url.hostname.includes(".blob.")) {
        const azure = await import("./azure.ts");
        if (azure.isAzureBlobUrl(url)) return azure.openAzureStore(url, { tuning });
      }
      return (await import("./http.ts")).openHttpStore(url);
    }
    case "oci":
      // An OCI registry is a layout of its own (src/registry/oci), opened by the command context, not a key-value store.
      throw new UsageError(`${redactUri(uri)}: an OCI registry works as the command's store (--store) only, not here yet`);
    default:
      throw new UsageError(`unsupported store URI scheme ${scheme}:// (use s3://, gs://, az://, https://, oci://, file:// or a path)`);
  }
}
