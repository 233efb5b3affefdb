// Where a registry's credentials come from (docs/oci.md §7), first match wins: ASSETKIT_OCI_USERNAME/_PASSWORD; the
// Docker credential file (credHelpers, credsStore, auths: what `docker login`, `oras login` and docker/login-action
// write); in GitHub Actions, the job's GITHUB_TOKEN for ghcr.io only; else none (anonymous). Nothing here talks to
// the registry: auth.ts uses what this finds when a registry asks for credentials.
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
import { StoreError } from "../store.ts";

/** A user and password (or token used as one), or an identity token (OAuth2 refresh token, from `docker login`). */
export type RegistryCredential = ({ username: string; password: string } | { identityToken: string }) & {
  /** Where it was found, for messages (never the secret itself). */
  source: string;
};

/** Credentials of one registry, looked up once and only when the registry asks for them. */
export type CredentialLookup = () => Promise<RegistryCredential | undefined>;

/** Docker Hub's hosts, which Docker's credential file keys under its v1 index address. */
const DOCKER_HUB_HOSTS = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);
const DOCKER_HUB_KEY = "https://index.docker.io/v1/";
/** The user name a credential helper gives for an identity token rather than a password. */
const IDENTITY_TOKEN_USER = "<token>";
const HELPER_TIMEOUT_MS = 60_000;

/**
 * The credentials for the registry at `host` (`name[:port]`, as in `oci://host/ns`), found when first asked for and
 * kept: what OciClient's `credentials` option takes. `env` is read for every source (process.env by default).
 */
export function ociCredentialsFor(host: string, env: NodeJS.ProcessEnv = process.env): CredentialLookup {
  let found: Promise<RegistryCredential | undefined> | undefined;
  return () => (found ??= findCredentials(host, env));
}

/** The first source that has credentials for `host`, in the order of docs/oci.md §7; undefined for anonymous. */
export async function findCredentials(host: string, env: NodeJS.ProcessEnv): Promise<RegistryCredential | undefined> {
  const username = env.ASSETKIT_OCI_USERNAME;
  const password = env.ASSETKIT_OCI_PASSWORD;
  if (username || password) {
    if (!username || !password) throw new StoreError("auth", "set both ASSETKIT_OCI_USERNAME and ASSETKIT_OCI_PASSWORD, or neither");
    return { username, password, source: "ASSETKIT_OCI_USERNAME/ASSETKIT_OCI_PASSWORD" };
  }
  const fromDocker = await dockerCredentials(host, env);
  if (fromDocker) return fromDocker;
  if (host === "ghcr.io" && env.GITHUB_ACTIONS === "true" && env.GITHUB_TOKEN) {
    // ghcr.io takes any user name with a token; the actor's is what docker/login-action sends.
    return { username: env.GITHUB_ACTOR || "github-actions", password: env.GITHUB_TOKEN, source: "GITHUB_TOKEN" };
  }
  return undefined;
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

/** From `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`: a helper's answer, else the inline entry. */
async function dockerCredentials(host: string, env: NodeJS.ProcessEnv): Promise<RegistryCredential | undefined> {
  const file = path.join(env.DOCKER_CONFIG || path.join(env.HOME || homedir(), ".docker"), "config.json");
  let config: DockerConfig;
  try {
    config = JSON.parse(await readFile(file, "utf8")) as DockerConfig;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    // The file holds secrets: its parse error (which quotes the text) is not passed on.
    throw new StoreError("auth", `cannot read the Docker credential file ${file}: ${err instanceof SyntaxError ? "not valid JSON" : (err as Error).message}`);
  }
  const wanted = hostKey(host);
  const keyOf = (entries: Record<string, unknown> | undefined): string | undefined => Object.keys(entries ?? {}).find((key) => hostKey(key) === wanted);
  const serverUrl = DOCKER_HUB_HOSTS.has(host) ? DOCKER_HUB_KEY : host;

  const helperKey = keyOf(config.credHelpers);
  const helper = helperKey !== undefined ? config.credHelpers![helperKey] : config.credsStore;
  if (helper) {
    const found = await fromHelper(helper, serverUrl, env, `${helperKey !== undefined ? "credHelpers" : "credsStore"} in ${file}`);
    if (found) return found;
  }
  const authKey = keyOf(config.auths);
  const entry = authKey !== undefined ? config.auths![authKey] : undefined;
  if (!entry) return undefined;
  const source = `auths["${authKey}"] in ${file}`;
  if (entry.identitytoken) return { identityToken: entry.identitytoken, source };
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) throw new StoreError("auth", `${source}: "auth" is not base64 of user:password`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), source };
  }
  if (entry.username && entry.password) return { username: entry.username, password: entry.password, source };
  return undefined; // an empty entry: a credsStore's marker
}

/** A credential file's key as Docker matches it: the host and port, without scheme or path; Docker Hub as one. */
function hostKey(key: string): string {
  const host = key
    .replace(/^[a-z]+:\/\//i, "")
    .replace(/\/.*$/s, "")
    .toLowerCase();
  return DOCKER_HUB_HOSTS.has(host) ? "index.docker.io" : host;
}

/**
 * `docker-credential-<helper> get` with the server's address on stdin, as Docker runs it (found on env's PATH). A
 * helper that knows no credentials for it gives none; any other failure is an auth error naming the helper, never
 * quoting what it printed (its output is secret).
 */
function fromHelper(helper: string, serverUrl: string, env: NodeJS.ProcessEnv, where: string): Promise<RegistryCredential | undefined> {
  const program = `docker-credential-${helper}`;
  const source = `${program} (${where})`;
  return new Promise((resolve, reject) => {
    // Loaded here, not at every start-up: only a credential helper needs child_process.
    const child = process
      .getBuiltinModule("node:child_process")
      .execFile(program, ["get"], { env, timeout: HELPER_TIMEOUT_MS, maxBuffer: 1024 * 1024, windowsHide: true }, (err, stdout) => {
        if (err) {
          if (/credentials not found/i.test(`${stdout}`)) return resolve(undefined);
          const why =
            (err as NodeJS.ErrnoException).code === "ENOENT" ? "not found on PATH" : err.killed ? "timed out" : `failed (exit code ${err.code ?? "?"})`;
          return reject(new StoreError("auth", `${source}: ${program} get ${why}`));
        }
        try {
          const answer = JSON.parse(stdout) as { Username?: unknown; Secret?: unknown };
          if (typeof answer.Secret !== "string" || !answer.Secret) throw new Error("no Secret");
          const username = typeof answer.Username === "string" ? answer.Username : "";
          resolve(username === IDENTITY_TOKEN_USER ? { identityToken: answer.Secret, source } : { username, password: answer.Secret, source });
        } catch {
          reject(new StoreError("auth", `${source}: ${program} get did not answer {"Username": …, "Secret": …}`));
        }
      });
    child.stdin?.on("error", () => undefined); // a helper that exits unread: its exit status says what happened
    child.stdin?.end(serverUrl);
  });
}
