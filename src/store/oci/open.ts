// `oci://<registry>[:<port>]/<namespace>[?settle=2s&chunk=64MiB&plain-http=1]` (docs/oci.md §3) → where it is and
// the one client every command talks to it with. The only place an OciClient is made for a store URI, so
// credentials (docs/oci.md §7) are wired in here.
import { UsageError } from "../../base/errors.ts";
import { parseDuration, parseSize } from "../../base/units.ts";
import { redactUri } from "../redact.ts";
import type { TimeBudget } from "../tuning.ts";
import { isLoopbackHost } from "./auth.ts";
import { OciClient } from "./client.ts";
import { ociCredentialsFor } from "./credentials.ts";

/** How long a claimer waits between writing its claim tag and reading everyone's (docs/oci.md §5.1). */
export const DEFAULT_SETTLE_MS = 2_000;

const PARAMETERS = ["settle", "chunk", "plain-http"];
/** A repository path component (distribution spec): lowercase alphanumerics, joined by '.', '_', '__' or '-'s. */
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;

export interface OciLocation {
  /** `oci://<host>/<namespace>`: how messages and lockfiles name the store. */
  url: string;
  /** The registry's origin: http: for loopback hosts and `plain-http=1`, else https:. */
  registry: URL;
  /** Repositories are `<namespace>/<asset name>`. */
  namespace: string;
  settleMs: number;
  chunkBytes?: number;
}

export function isOciUri(uri: string): boolean {
  return /^oci:\/\//i.test(uri);
}

export function parseOciUri(uri: string): OciLocation {
  const bad = (why: string): never => {
    throw new UsageError(`bad store URI ${redactUri(uri)}: ${why}`);
  };
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return bad("not a URI (write oci://<registry>/<namespace>, like oci://ghcr.io/acme/models)");
  }
  if (!url.hostname) bad("no registry host (write oci://<registry>/<namespace>)");
  if (url.username || url.password) bad("credentials do not go in the URI");
  const namespace = decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, "");
  if (namespace === "") bad("no namespace (write oci://<registry>/<namespace>, like oci://localhost:5000/ml)");
  for (const component of namespace.split("/")) {
    if (!PATH_COMPONENT.test(component))
      bad(`${JSON.stringify(component)} is not a repository path component (lowercase letters and digits, joined by '.', '_' or '-')`);
  }
  for (const key of url.searchParams.keys()) if (!PARAMETERS.includes(key)) bad(`unknown parameter ${key} (known: ${PARAMETERS.join(", ")})`);
  const settle = url.searchParams.get("settle");
  const chunk = url.searchParams.get("chunk");
  const plainHttp = url.searchParams.get("plain-http");
  if (plainHttp !== null && plainHttp !== "0" && plainHttp !== "1") bad("plain-http is 0 or 1");
  // Loopback hosts are spoken to in plain HTTP without asking, as Docker does.
  const http = plainHttp === "1" || isLoopbackHost(url.hostname);
  return {
    url: `oci://${url.host}/${namespace}`,
    registry: new URL(`${http ? "http" : "https"}://${url.host}`),
    namespace,
    settleMs: settle === null ? DEFAULT_SETTLE_MS : parseDuration(settle, "settle="),
    ...(chunk !== null ? { chunkBytes: parseSize(chunk, "chunk=") } : {}),
  };
}

/** The client of the registry `location` names, with the run's time budget and the credentials `env` leads to (docs/oci.md §7). */
export function openOciClient(location: OciLocation, budget: TimeBudget, env: NodeJS.ProcessEnv = process.env): OciClient {
  return new OciClient(location.registry, {
    budget,
    credentials: ociCredentialsFor(location.registry.host, env),
    ...(location.chunkBytes !== undefined ? { chunkBytes: location.chunkBytes } : {}),
  });
}
