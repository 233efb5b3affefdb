// The GitHub REST client the PR comment uses: @actions/github's octokit, plus a bounded wait-and-retry on rate
// limits. @actions/github bundles only the REST-methods and pagination plugins (no throttling/retry plugin), and
// the project installs no more dependencies, so the retry is written here: a few lines, honouring `retry-after`.
import type { getOctokit } from "@actions/github";

export type GitHubClient = ReturnType<typeof getOctokit>;

/** How often one request is retried after a rate-limit response, and the longest wait accepted. */
const MAX_RATE_LIMIT_RETRIES = 3;
const MAX_RATE_LIMIT_WAIT_MS = 60_000;

interface ResponseError {
  status?: number;
  message?: string;
  response?: { headers?: Record<string, string | number | undefined> };
}

/**
 * @actions/github reads GITHUB_API_URL when it is first imported, so it is imported here, when a client is
 * needed, not when the Action starts.
 */
export async function createGitHubClient(token: string, onRateLimit: (message: string) => void): Promise<GitHubClient> {
  const { getOctokit } = await import("@actions/github");
  const client = getOctokit(token);
  client.hook.wrap("request", async (request, options) => {
    for (let retry = 1; ; retry++) {
      try {
        return await request(options);
      } catch (err) {
        const wait = rateLimitWaitMs(err as ResponseError);
        if (wait === undefined || retry > MAX_RATE_LIMIT_RETRIES || wait > MAX_RATE_LIMIT_WAIT_MS) throw err;
        onRateLimit(`GitHub API rate limit on ${options.method} ${options.url}: retrying in ${Math.ceil(wait / 1000)} s (${retry}/${MAX_RATE_LIMIT_RETRIES})`);
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  });
  return client;
}

/**
 * The wait GitHub asks for on a rate-limit response (403 or 429): `retry-after` seconds (secondary limits), or
 * until `x-ratelimit-reset` when `x-ratelimit-remaining` is 0 (primary limit). Undefined for any other error.
 */
function rateLimitWaitMs(err: ResponseError): number | undefined {
  if (err.status !== 403 && err.status !== 429) return undefined;
  const headers = err.response?.headers ?? {};
  const retryAfter = Number(headers["retry-after"]);
  if (headers["retry-after"] !== undefined && Number.isFinite(retryAfter)) return Math.max(0, retryAfter) * 1000;
  if (String(headers["x-ratelimit-remaining"]) === "0") {
    const reset = Number(headers["x-ratelimit-reset"]);
    if (Number.isFinite(reset)) return Math.max(0, reset * 1000 - Date.now());
  }
  return undefined;
}

/** A token that may read but not write (the GITHUB_TOKEN of a PR from a fork, or a job with read permissions). */
export function isReadOnlyTokenError(err: unknown): boolean {
  const e = err as ResponseError;
  return e.status === 403 && rateLimitWaitMs(e) === undefined && /Resource not accessible by (integration|personal access token)/i.test(e.message ?? "");
}

/** GitHub's 404, for a file that does not exist at a ref. */
export function isNotFoundError(err: unknown): boolean {
  return (err as ResponseError).status === 404;
}
