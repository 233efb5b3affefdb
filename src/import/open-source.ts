// The source an import URI names: a path, an object-store URI, an HTTP file or archive, a Hugging Face Hub repo.
// Each kind is imported lazily, so an import loads only its own source's code (and SDK).
import { UsageError } from "../base/errors.ts";
import type { ImportSettings, ImportSource } from "./source.ts";

export async function openSource(uri: string, settings: ImportSettings): Promise<ImportSource> {
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(uri)?.[1]?.toLowerCase();
  switch (scheme) {
    case undefined:
    case "file":
      return (await import("./local-source.ts")).openLocalSource(uri, settings);
    case "hf":
      return (await import("./hf-source.ts")).openHfSource(uri, settings);
    case "s3":
    case "gs":
    case "az":
    case "azure": // KServe's spelling of az://
      return (await import("./store-source.ts")).openStoreSource(scheme === "azure" ? `az${uri.slice("azure".length)}` : uri, settings);
    case "oci":
      return (await import("./oci-source.ts")).openOciSource(uri, settings);
    case "http":
    case "https":
      // An Azure blob URL is an object store (it can list); any other URL is a file on a web server.
      if ((await settings.openStore(uri)).listable) return (await import("./store-source.ts")).openStoreSource(uri, settings);
      return (await import("./http-source.ts")).openHttpSource(uri, settings);
    default:
      throw new UsageError(
        `cannot import from ${scheme}:// (use s3://, gs://, az://, azure://, https://, hf://, oci://, file:// or a path; a mounted volume such as a PVC is a plain path)`,
      );
  }
}
