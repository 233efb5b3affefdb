// Registry auth as the distribution spec's clients do it (docs/oci.md §7): requests go out anonymous until the
// registry answers 401 with a challenge. `Basic realm=…`: the credentials on every request from then on. `Bearer
// realm=…,service=…,scope=…`: a token from the realm for the scopes the request needs plus those the challenge names
// (GET with Basic credentials or none; POST of the refresh token for an identity token), cached per scope set for its
// lifetime and then asked for ahead of each request, so later requests are not challenged. A token the registry
// refuses (expired early, insufficient_scope) is replaced once per request; a second refusal is final.
import { headerOf, httpRequest, type HttpResponse } from "../http-client.ts";
import { operationSignal } from "../layers/timeout.ts";
import { readDocumentBody, StoreError } from "../store.ts";
import type { CredentialLookup, RegistryCredential } from "./credentials.ts";
import { statusError } from "./responses.ts";

/** A token is not used in its last seconds: the registry may see its expiry before our request arrives. */
const EXPIRY_MARGIN_MS = 10_000;
/** The lifetime of a token whose answer gives none (the distribution auth spec's default). */
const DEFAULT_TOKEN_SECONDS = 60;
/** Redirects a token request may follow. */
const TOKEN_REDIRECTS = 5;
/** Issued tokens kept to scrub from messages: those in use are among the newest (a watch runs for weeks). */
const REMEMBERED_TOKENS = 256;

/** The token-flow scope of one repository: what a request on it needs (pull to read, push to write, delete). */
export function repositoryScope(repo: string, actions: "pull" | "pull,push" | "delete"): string {
  return `repository:${repo}:${actions}`;
}

/** The token-flow scope of listing the registry's repositories (GET /v2/_catalog), as Docker's token spec names it. */
export const CATALOG_SCOPE = "registry:catalog:*";

interface BearerChallenge {
  scheme: "bearer";
  realm: URL;
  service: string | undefined;
}
type Challenge = { scheme: "basic" } | BearerChallenge;

interface CachedToken {
  scopes: ScopeSet;
  /** The Authorization header, once the token service answered. */
  authorization?: string;
  expiresAt?: number;
  pending: Promise<string>;
}

/** Which actions a scope set grants on each resource (`repository:a/b`). */
type ScopeSet = Map<string, Set<string>>;

export class RegistryAuth {
  private readonly registry: URL;
  private readonly lookup: CredentialLookup | undefined;
  private credential: RegistryCredential | undefined;
  /** Where credentials were not sent because it speaks plain HTTP off this machine (for the refusal's message). */
  private withheldFrom: string | undefined;
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly issued = new Set<string>();
  /** Whether the token service refused the credentials given (a wrong password): then every request is refused alike. */
  credentialsRefused = false;

  /** `registry`: the registry's origin; `credentials`: where to find them, asked only when the registry challenges. */
  constructor(registry: URL, credentials: CredentialLookup | undefined) {
    this.registry = registry;
    this.lookup = credentials;
  }

  /** The Authorization for a request needing `scopes`: none until the registry has challenged. */
  authorization(scopes: readonly string[]): Promise<string | undefined> {
    const challenge = this.challenge;
    if (!challenge) return Promise.resolve(undefined);
    return challenge.scheme === "basic" ? this.basic() : this.bearer(challenge, scopes);
  }

  /** A token the registry answered 401 to (expired early, revoked, too narrow) is never sent again. */
  refused(sent: string | undefined): void {
    if (sent === undefined) return;
    for (const [key, cached] of this.tokens) if (cached.authorization === sent) this.tokens.delete(key);
  }

  /**
   * After a 401 to a request that carried `sent`: the Authorization for one more try, or undefined when none can do
   * better (no challenge, Basic credentials refused or absent). For a Bearer challenge, a token for the request's
   * scopes and the challenge's (a mount's names the source repository too).
   */
  async answer(res: HttpResponse, scopes: readonly string[], sent: string | undefined): Promise<string | undefined> {
    const challenge = parseChallenge(headerOf(res, "www-authenticate") ?? "", this.registry);
    if (!challenge) return undefined;
    if (challenge.scheme === "basic") {
      this.challenge = challenge;
      return sent?.startsWith("Basic ") ? undefined : this.basic();
    }
    const bearer = { scheme: "bearer" as const, realm: challenge.realm, service: challenge.service };
    this.challenge = bearer;
    return this.bearer(bearer, [...scopes, ...challenge.scopes]);
  }

  /** What to tell a user the registry refused: who asked, and what would help. */
  deniedHint(scopes: readonly string[]): string {
    const host = this.registry.host;
    if (this.credential && this.withheldFrom) {
      return `the credentials from ${this.credential.source} are not sent to ${this.withheldFrom} (plain HTTP off this machine): use HTTPS`;
    }
    if (!this.credential) return `no credentials for ${host}: set ASSETKIT_OCI_USERNAME and ASSETKIT_OCI_PASSWORD, or log in (docker login ${host})`;
    if (host === "ghcr.io" && this.credential.source === "GITHUB_TOKEN" && scopes.some((s) => s.endsWith(":pull,push"))) {
      return `give the job "permissions: packages: write" and, if the package exists already, grant this repository write access in the package's "Manage Actions access"`;
    }
    return `check the credentials from ${this.credential.source} and their access to ${[...parseScopes(scopes).keys()].join(", ")}`;
  }

  /** Every secret this auth holds or was given: passwords, identity tokens, Basic values, issued tokens. */
  secrets(): string[] {
    const credential = this.credential;
    const own = !credential
      ? []
      : "identityToken" in credential
        ? [credential.identityToken]
        : [credential.password, Buffer.from(`${credential.username}:${credential.password}`).toString("base64")];
    return [...own, ...this.issued];
  }

  /** Credentials go over HTTPS only, or to this machine (a registry on loopback speaks plain HTTP, as Docker allows). */
  private mayCarryCredentials(url: URL): boolean {
    if (url.protocol === "https:" || isLoopbackHost(url.hostname)) return true;
    this.withheldFrom = url.origin;
    return false;
  }

  private async credentials(): Promise<RegistryCredential | undefined> {
    if (!this.lookup) return undefined;
    this.credential = await this.lookup();
    return this.credential;
  }

  private async basic(): Promise<string | undefined> {
    const credential = await this.credentials();
    if (!credential || "identityToken" in credential || !this.mayCarryCredentials(this.registry)) return undefined;
    return basicAuthorization(credential);
  }

  /** A Bearer Authorization for `scopes`: a cached token that covers them, else one being fetched for them. */
  private bearer(challenge: BearerChallenge, scopes: readonly string[]): Promise<string> {
    const wanted = parseScopes(scopes);
    const key = scopeKey(wanted);
    const now = Date.now();
    for (const [cachedKey, cached] of this.tokens) {
      if (cached.expiresAt !== undefined && cached.expiresAt <= now) this.tokens.delete(cachedKey);
      else if (cached.authorization !== undefined && covers(cached.scopes, wanted)) return cached.pending;
    }
    const inFlight = this.tokens.get(key);
    if (inFlight) return inFlight.pending;
    const entry: CachedToken = { scopes: wanted, pending: Promise.resolve("") };
    entry.pending = this.fetchToken(challenge, key ? key.split(" ") : []).then(
      ({ authorization, lifetimeMs }) => {
        entry.authorization = authorization;
        entry.expiresAt = Date.now() + lifetimeMs - EXPIRY_MARGIN_MS;
        return authorization;
      },
      (err: unknown) => {
        if (this.tokens.get(key) === entry) this.tokens.delete(key);
        throw err;
      },
    );
    this.tokens.set(key, entry);
    return entry.pending;
  }

  /** One request to the token service (no retry of its own: the request it serves is retried as a whole). */
  private async fetchToken(challenge: BearerChallenge, scopes: string[]): Promise<{ authorization: string; lifetimeMs: number }> {
    const found = await this.credentials();
    const credential = found && this.mayCarryCredentials(challenge.realm) ? found : undefined;
    const signal = operationSignal();
    const common = { maxRedirects: TOKEN_REDIRECTS, ...(signal ? { signal } : {}) };
    let res: HttpResponse;
    if (credential && "identityToken" in credential) {
      // An identity token is an OAuth2 refresh token: posted in the body, never put in a URL.
      const form = new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: credential.identityToken,
        client_id: "assetkit",
        scope: scopes.join(" "),
      });
      if (challenge.service) form.set("service", challenge.service);
      res = await httpRequest(challenge.realm, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: form.toString(),
        ...common,
      });
    } else {
      const url = new URL(challenge.realm);
      if (challenge.service) url.searchParams.set("service", challenge.service);
      for (const scope of scopes) url.searchParams.append("scope", scope);
      res = await httpRequest(url, { method: "GET", headers: credential ? { authorization: basicAuthorization(credential) } : {}, ...common });
    }
    const service = `the token service ${challenge.realm.origin}${challenge.realm.pathname}`;
    if (res.status === 401 || res.status === 403) {
      res.body.resume();
      const who = credential ? `the credentials from ${credential.source}` : "anonymous access";
      if (credential) this.credentialsRefused = true;
      throw new StoreError("auth", `${service} refused ${who} (${res.status}): ${credential ? "check them" : this.deniedHint(scopes)}`);
    }
    if (res.status !== 200) {
      const err = await statusError(res, `token ${credential && "identityToken" in credential ? "POST" : "GET"}`);
      throw new StoreError(err.code, `${service}: ${err.message}`, {
        temporary: err.temporary,
        ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}),
      });
    }
    let answer: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      answer = JSON.parse((await readDocumentBody(res.body)).toString("utf8")) as typeof answer;
    } catch {
      throw new StoreError("auth", `${service} answered 200 without a JSON token`);
    }
    const token = typeof answer.token === "string" && answer.token ? answer.token : answer.access_token;
    if (typeof token !== "string" || !token) throw new StoreError("auth", `${service} answered 200 without a token`);
    this.issued.add(token);
    if (this.issued.size > REMEMBERED_TOKENS) this.issued.delete(this.issued.values().next().value!);
    // Its lifetime counts from its arrival (not `issued_at`): another machine's clock is not ours.
    const seconds = typeof answer.expires_in === "number" && answer.expires_in > 0 ? answer.expires_in : DEFAULT_TOKEN_SECONDS;
    return { authorization: `Bearer ${token}`, lifetimeMs: seconds * 1000 };
  }
}

/** `localhost`, 127.0.0.0/8 or [::1] (a URL's hostname): a registry there is reached over plain HTTP (docs/oci.md §3). */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

function basicAuthorization(credential: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString("base64")}`;
}

/**
 * The challenge of a WWW-Authenticate header: Basic, or Bearer with its realm (resolved against the registry's URL),
 * service and scopes (space-separated in one parameter). Undefined for a scheme assetkit does not speak.
 */
function parseChallenge(header: string, registry: URL): { scheme: "basic" } | (BearerChallenge & { scopes: string[] }) | undefined {
  const scheme = /^\s*(\w+)/.exec(header)?.[1]?.toLowerCase();
  if (scheme === "basic") return { scheme: "basic" };
  if (scheme !== "bearer") return undefined;
  const params = new Map<string, string>();
  for (const match of header.matchAll(/(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g)) {
    params.set(match[1]!.toLowerCase(), match[2] !== undefined ? match[2].replace(/\\(.)/g, "$1") : match[3]!);
  }
  const realm = params.get("realm");
  if (!realm) return undefined;
  let realmUrl: URL;
  try {
    realmUrl = new URL(realm, registry);
  } catch {
    return undefined;
  }
  if (realmUrl.protocol !== "https:" && realmUrl.protocol !== "http:") return undefined;
  return { scheme: "bearer", realm: realmUrl, service: params.get("service"), scopes: (params.get("scope") ?? "").split(" ").filter(Boolean) };
}

/** `repository:a/b:pull,push` scopes as actions per resource (a resource named in several scopes gets all of them). */
function parseScopes(scopes: readonly string[]): ScopeSet {
  const set: ScopeSet = new Map();
  for (const scope of scopes) {
    const colon = scope.lastIndexOf(":");
    if (colon < 0) continue;
    const resource = scope.slice(0, colon);
    const actions = set.get(resource) ?? new Set<string>();
    for (const action of scope.slice(colon + 1).split(",")) if (action) actions.add(action);
    set.set(resource, actions);
  }
  return set;
}

/** One spelling per scope set (sorted resources, sorted actions): the token cache's key and the scopes asked. */
function scopeKey(set: ScopeSet): string {
  return [...set]
    .map(([resource, actions]) => `${resource}:${[...actions].sort().join(",")}`)
    .sort()
    .join(" ");
}

function covers(granted: ScopeSet, wanted: ScopeSet): boolean {
  for (const [resource, actions] of wanted) {
    const has = granted.get(resource);
    if (!has) return false;
    for (const action of actions) if (!has.has(action) && !has.has("*")) return false;
  }
  return true;
}
