// GitHub's Packages REST API for container packages: the one way to delete on ghcr.io, whose registry refuses
// DELETE (405). A package version is one manifest (`name` = its digest) with all its tags: deleting it removes them
// all, restoring it brings them back. The owner is an organisation (`/orgs/{owner}/…`) or else a user
// (`/users/{owner}/…`). Pages follow the `Link` header; a rate limit (429, or 403 with `x-ratelimit-remaining: 0`)
// is waited out when it asks for at most a minute. Knows nothing of assets.
import { setTimeout as sleep } from "node:timers/promises";
import { StoreError } from "../store.ts";

export interface PackageVersion {
  id: number;
  /** The manifest's digest (the version's `name`). */
  digest: string;
  tags: string[];
}

/** GitHub's largest page. */
const PER_PAGE = 100;
/** Tries of one request that meets a rate limit. */
const RATE_LIMITED_TRIES = 3;
/** A rate limit asking for a longer wait fails instead. */
const MAX_RATE_LIMIT_WAIT_MS = 60_000;

export class GitHubPackages {
  /** `https://api.github.com` (or a GitHub Enterprise Server's API). */
  readonly api: URL;
  private readonly owner: string;
  private readonly token: () => Promise<string | undefined>;
  /** An answer not begun within this long fails (ASSETKIT_IDLE_TIMEOUT): the answers are small documents. */
  private readonly idleTimeoutMs: number;
  /** `orgs/<owner>` or `users/<owner>`, once a listing found which. */
  private ownerPath: string | undefined;

  constructor(api: URL, owner: string, token: () => Promise<string | undefined>, idleTimeoutMs: number) {
    this.api = api;
    this.owner = owner;
    this.token = token;
    this.idleTimeoutMs = idleTimeoutMs;
  }

  /** Every version of container package `name` (`<path>/<asset>` below the owner), across pages. */
  async *versions(name: string): AsyncGenerator<PackageVersion> {
    const what = `list the versions of package ${name}`;
    let res: Response;
    try {
      res = await this.send("GET", this.packageUrl(this.ownerPath ?? `orgs/${this.owner}`, name, `?per_page=${PER_PAGE}`), what);
      this.ownerPath ??= `orgs/${this.owner}`;
    } catch (err) {
      // Learnt once: an owner that is not an organisation is a user.
      if (this.ownerPath || !(err instanceof StoreError && err.code === "not-found")) throw err;
      this.ownerPath = `users/${this.owner}`;
      res = await this.send("GET", this.packageUrl(this.ownerPath, name, `?per_page=${PER_PAGE}`), what);
    }
    for (;;) {
      const page = (await res.json()) as { id?: unknown; name?: unknown; metadata?: { container?: { tags?: unknown } } }[];
      for (const v of page) {
        const tags = v.metadata?.container?.tags;
        if (typeof v.id !== "number" || typeof v.name !== "string")
          throw new StoreError("failed", `${this.api.origin}: a version of package ${name} has no id or name`);
        yield { id: v.id, digest: v.name, tags: Array.isArray(tags) ? tags.filter((t): t is string => typeof t === "string") : [] };
      }
      const next = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get("link") ?? "")?.[1];
      if (next === undefined) return;
      res = await this.send("GET", new URL(next), what);
    }
  }

  /** Deletes a package version: its manifest and every tag on it. */
  async deleteVersion(name: string, id: number): Promise<void> {
    await this.send("DELETE", this.versionUrl(name, id, ""), `delete version ${id} of package ${name}`);
  }

  /** Restores a deleted package version, with its tags. */
  async restoreVersion(name: string, id: number): Promise<void> {
    await this.send("POST", this.versionUrl(name, id, "/restore"), `restore version ${id} of package ${name}`);
  }

  private versionUrl(name: string, id: number, suffix: string): URL {
    if (!this.ownerPath) throw new Error("a package's versions are listed before one is deleted or restored");
    return this.packageUrl(this.ownerPath, name, `/${id}${suffix}`);
  }

  /** `<api>/<orgs|users>/<owner>/packages/container/<name>/versions<rest>`. */
  private packageUrl(ownerPath: string, name: string, rest: string): URL {
    const [kind, owner] = ownerPath.split("/") as [string, string];
    return new URL(
      `${this.api.pathname.replace(/\/$/, "")}/${kind}/${encodeURIComponent(owner)}/packages/container/${encodeURIComponent(name)}/versions${rest}`,
      this.api,
    );
  }

  private async send(method: string, url: URL, what: string): Promise<Response> {
    const token = await this.token();
    const headers: Record<string, string> = { accept: "application/vnd.github+json", "x-github-api-version": "2022-11-28" };
    if (token) headers.authorization = `Bearer ${token}`;
    for (let attempt = 1; ; attempt++) {
      const res = await fetch(url, { method, headers, signal: AbortSignal.timeout(this.idleTimeoutMs) }).catch((err: Error) => {
        throw new StoreError(
          "unavailable",
          `${this.api.origin}: cannot ${what}: ${err.name === "TimeoutError" ? `no answer within ${this.idleTimeoutMs / 1000} s` : err.message}`,
        );
      });
      if (res.ok) return res;
      const message = await res
        .json()
        .then((body) => (body as { message?: unknown }).message)
        .catch(() => undefined);
      const said = typeof message === "string" ? `: ${message}` : "";
      const wait = rateLimitWaitMs(res);
      if (wait !== undefined) {
        if (wait <= MAX_RATE_LIMIT_WAIT_MS && attempt < RATE_LIMITED_TRIES) {
          await sleep(wait);
          continue;
        }
        throw new StoreError("unavailable", `${this.api.origin}: cannot ${what}: rate limited (${res.status}${said}); retry after ${Math.ceil(wait / 1000)} s`);
      }
      if (res.status === 401)
        throw new StoreError(
          "auth",
          `${this.api.origin}: cannot ${what}: the token was refused (401${said}); give a token with read:packages and delete:packages`,
        );
      if (res.status === 403)
        throw new StoreError(
          "auth",
          `${this.api.origin}: cannot ${what}: permission denied (403${said}); deleting needs admin on the package and a token with delete:packages (GITHUB_TOKEN may not do: pass a personal access token)`,
        );
      if (res.status === 404) throw new StoreError("not-found", `${this.api.origin}: cannot ${what}: not found (404${said})`);
      throw new StoreError("failed", `${this.api.origin}: cannot ${what}: ${res.status}${said}`);
    }
  }
}

/** How long a rate-limited answer asks to wait (`retry-after`, else until `x-ratelimit-reset`); undefined when it is not one. */
function rateLimitWaitMs(res: Response): number | undefined {
  const exhausted = res.headers.get("x-ratelimit-remaining") === "0";
  const retryAfter = res.headers.get("retry-after");
  if (!(res.status === 429 || (res.status === 403 && (exhausted || retryAfter !== null)))) return undefined;
  if (retryAfter !== null && /^\d+$/.test(retryAfter)) return Number(retryAfter) * 1000;
  const reset = Number(res.headers.get("x-ratelimit-reset"));
  return reset > 0 ? Math.max(0, reset * 1000 - Date.now()) : 60_000;
}
