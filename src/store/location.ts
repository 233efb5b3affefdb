// Where a store URI points (bucket or container, key prefix) and its endpoint, read by the one rule set every
// object-store scheme shares: safe percent-decoding (a bad escape is a usage error), no credentials in s3://, gs://
// and az:// URIs, and only the query parameters a scheme knows. Backends read their URIs with it; uri.ts picks them.
import { UsageError } from "../base/errors.ts";
import { redactUri } from "./redact.ts";

/** Query parameters each object-store scheme accepts; anything else is refused the same way for all of them. */
export const KNOWN_PARAMETERS: Record<string, readonly string[]> = { s3: ["endpoint", "region", "profile"], gs: ["endpoint"], az: ["endpoint"] };

/** Where a store's objects live, as read from its URI by the one rule set. */
export interface StoreLocation {
  /** The bucket or container, decoded. */
  bucket: string;
  /** The key prefix, decoded, "/"-joined, without leading or trailing "/" ("" for the root). */
  prefix: string;
  /** The URI safe to print (redactUri). */
  shown: string;
}

/**
 * Reads an s3://, gs:// or az:// URI (or, with `pathBucket`, an https:// URI whose first path segment is the
 * container) by the one rule set; every refusal is a UsageError naming the URI without its secrets.
 */
export function parseLocation(uri: URL, pathBucket = false): StoreLocation {
  const shown = redactUri(uri.href);
  const scheme = uri.protocol.replace(/:$/, "");
  const known = KNOWN_PARAMETERS[scheme];
  if (known) {
    if (uri.username || uri.password) {
      throw new UsageError(`bad store URI ${shown}: credentials do not belong in the store URI; give them in the environment (README, "Stores")`);
    }
    for (const name of uri.searchParams.keys()) {
      if (!known.includes(name)) throw new UsageError(`bad store URI ${shown}: unknown parameter ?${name}= (known: ${known.join(", ")})`);
    }
  }
  const segments = uri.pathname
    .split("/")
    .filter(Boolean)
    .map((segment) => decodeSegment(segment, shown));
  const bucket = pathBucket ? (segments.shift() ?? "") : decodeSegment(uri.hostname, shown);
  if (segments.some((s) => s === "." || s === "..")) throw new UsageError(`bad store URI ${shown}: the prefix has a '.' or '..' segment`);
  return { bucket, prefix: segments.join("/"), shown };
}

/** An ?endpoint= value (or the like) as a URL: http(s) only, no credentials. */
export function parseEndpoint(value: string, shown: string): URL {
  let endpoint: URL;
  try {
    endpoint = new URL(value);
  } catch {
    throw new UsageError(`bad store URI ${shown}: ?endpoint= is not a URL; write it as http(s)://host:port`);
  }
  if (endpoint.protocol !== "http:" && endpoint.protocol !== "https:") throw new UsageError(`bad store URI ${shown}: ?endpoint= must be an http(s):// URL`);
  if (endpoint.username || endpoint.password)
    throw new UsageError(`bad store URI ${shown}: credentials do not belong in ?endpoint=; give them in the environment`);
  return endpoint;
}

function decodeSegment(segment: string, shown: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new UsageError(`bad store URI ${shown}: bad percent-escape in ${JSON.stringify(segment)} (write % as %25)`);
  }
}
