// The GitHub REST client the PR comment uses: @actions/github's octokit with GitHub's recommended throttling
// (@octokit/plugin-throttling: waits out rate limits, bounded here) and retries of server errors (@octokit/plugin-retry).
import type { getOctokit } from "@actions/github";
import { retry } from "@octokit/plugin-retry";
import { throttling } from "@octokit/plugin-throttling";

export type GitHubClient = ReturnType<typeof getOctokit>;

/** How often one request is retried after a rate-limit response, and the longest wait accepted. */
const MAX_RATE_LIMIT_RETRIES = 3;
const MAX_RATE_LIMIT_WAIT_S = 60;

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
  const waitOut = (retryAfter: number, options: { method?: string; url?: string }, _octokit: unknown, retryCount: number): boolean => {
    if (retryCount >= MAX_RATE_LIMIT_RETRIES || retryAfter > MAX_RATE_LIMIT_WAIT_S) return false;
    onRateLimit(`GitHub API rate limit on ${options.method} ${options.url}: retrying in ${retryAfter} s (${retryCount + 1}/${MAX_RATE_LIMIT_RETRIES})`);
    return true;
  };
  return getOctokit(token, { throttle: { onRateLimit: waitOut, onSecondaryRateLimit: waitOut } }, retry, throttling);
}

/** A token that may read but not write (the GITHUB_TOKEN of a PR from a fork, or a job with read permissions). */
export function isReadOnlyTokenError(err: unknown): boolean {
  const e = err as ResponseError;
  return e.status === 403 && /Resource not accessible by (integration|personal access token)/i.test(e.message ?? "");
}

/** GitHub's 404, for a file that does not exist at a ref. */
export function isNotFoundError(err: unknown): boolean {
  return (err as ResponseError).status === 404;
}
