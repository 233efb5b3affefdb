// `oci://<registry>[:<port>]/<namespace>[?settle=2s&chunk=64MiB&max-blob=10GB&plain-http=1&packages-api=<url>]` (docs/oci.md
// §3) → where it is and the one client every command talks to it with (and, on ghcr.io, GitHub's Packages API, the
// way to delete there). The only place these clients are made for a store URI, so credentials (docs/oci.md §7) are
// wired in here.
import { UsageError } from "../../base/errors.ts";
import { parseDuration, parseSize } from "../../base/units.ts";
import { redactUri } from "../redact.ts";
import type { TimeBudget } from "../tuning.ts";
import { isLoopbackHost } from "./auth.ts";
import { OciClient } from "./client.ts";
import { ociCredentialsFor } from "./credentials.ts";
import { GitHubPackages } from "./github-packages.ts";

/** How long a claimer waits between writing its claim tag and reading everyone's (docs/oci.md §5.1). */
export const DEFAULT_SETTLE_MS = 2_000;

/**
 * The largest blob a registry takes, where its vendor documents one (GitHub Docs, "Working with the Container
 * registry": 10 GB per layer): larger files are stored as several blobs (docs/oci.md §4). No guess for others.
 */
const DOCUMENTED_MAX_BLOB: Record<string, number> = { "ghcr.io": 10e9 };
/** Where a registry's packages are deleted, for the registry that refuses DELETE and has an API instead. */
const PACKAGES_API: Record<string, string> = { "ghcr.io": "https://api.github.com" };
/** `max-blob=` below this would make a manifest of thousands of parts for an ordinary model file. */
const MIN_MAX_BLOB = 1024 * 1024;

const PARAMETERS = ["settle", "chunk", "max-blob", "plain-http", "packages-api"];
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
  /** Files larger are stored as consecutive blobs of at most this many bytes (`?max-blob=`, else the registry's documented limit). */
  maxBlobBytes?: number;
  /** GitHub's REST API, where versions are deleted when the registry refuses DELETE (`?packages-api=`; ghcr.io: api.github.com). */
  packagesApi?: URL;
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
  const maxBlobText = url.searchParams.get("max-blob");
  const maxBlob = maxBlobText === null ? DOCUMENTED_MAX_BLOB[url.hostname.toLowerCase()] : parseSize(maxBlobText, "max-blob=");
  if (maxBlob !== undefined && maxBlob < MIN_MAX_BLOB) bad(`max-blob is at least 1MiB`);
  if (plainHttp !== null && plainHttp !== "0" && plainHttp !== "1") bad("plain-http is 0 or 1");
  const packagesApiText = url.searchParams.get("packages-api") ?? PACKAGES_API[url.hostname.toLowerCase()];
  let packagesApi: URL | undefined;
  if (packagesApiText !== undefined) {
    packagesApi = URL.canParse(packagesApiText) ? new URL(packagesApiText) : undefined;
    if (!packagesApi || !/^https?:$/.test(packagesApi.protocol)) bad("packages-api is an http(s) URL (GitHub's REST API)");
  }
  // Loopback hosts are spoken to in plain HTTP without asking, as Docker does.
  const http = plainHttp === "1" || isLoopbackHost(url.hostname);
  return {
    url: `oci://${url.host}/${namespace}`,
    registry: new URL(`${http ? "http" : "https"}://${url.host}`),
    namespace,
    settleMs: settle === null ? DEFAULT_SETTLE_MS : parseDuration(settle, "settle="),
    ...(chunk !== null ? { chunkBytes: parseSize(chunk, "chunk=") } : {}),
    ...(maxBlob !== undefined ? { maxBlobBytes: maxBlob } : {}),
    ...(packagesApi ? { packagesApi } : {}),
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

/**
 * GitHub's Packages API for the store's namespace (its first segment is the owner), with the registry's own password
 * or token as the API token; undefined where the registry has no such API.
 */
export function openGitHubPackages(location: OciLocation, budget: TimeBudget, env: NodeJS.ProcessEnv = process.env): GitHubPackages | undefined {
  if (!location.packagesApi) return undefined;
  const credentials = ociCredentialsFor(location.registry.host, env);
  const owner = location.namespace.split("/")[0]!;
  return new GitHubPackages(
    location.packagesApi,
    owner,
    async () => {
      const found = await credentials();
      return found && "password" in found ? found.password : undefined;
    },
    budget.idleTimeoutMs,
  );
}
