// The pull request a workflow run is about, read from the event payload the runner writes to GITHUB_EVENT_PATH.
import { readFile } from "node:fs/promises";
import { UsageError } from "../base/errors.ts";

export interface PullRequest {
  owner: string;
  repo: string;
  number: number;
  /** The commit the PR is compared against: where the base branch's lockfile is read. */
  baseSha: string;
}

/** Events whose payload carries `pull_request` (the `_target` variant runs in the base repository's context). */
const PULL_REQUEST_EVENTS = ["pull_request", "pull_request_target"];

/**
 * The PR of this run, or `{ event }` naming the event when the run is not about a pull request. The repository is
 * GITHUB_REPOSITORY (the base repository, also for PRs from forks), else the payload's.
 */
export async function pullRequestOfRun(env: NodeJS.ProcessEnv = process.env): Promise<PullRequest | { event: string }> {
  const event = env.GITHUB_EVENT_NAME ?? "";
  if (!PULL_REQUEST_EVENTS.includes(event)) return { event: event || "(none: GITHUB_EVENT_NAME is not set)" };
  if (!env.GITHUB_EVENT_PATH) throw new UsageError(`GITHUB_EVENT_NAME is ${event} but GITHUB_EVENT_PATH is not set`);
  let payload: {
    pull_request?: { number?: unknown; base?: { sha?: unknown } };
    repository?: { full_name?: unknown };
  };
  try {
    payload = JSON.parse(await readFile(env.GITHUB_EVENT_PATH, "utf8"));
  } catch (err) {
    throw new UsageError(`cannot read the event payload ${env.GITHUB_EVENT_PATH}: ${(err as Error).message}`);
  }
  const number = payload.pull_request?.number;
  const baseSha = payload.pull_request?.base?.sha;
  if (!Number.isSafeInteger(number) || typeof baseSha !== "string") {
    throw new UsageError(`the ${event} event payload has no pull_request.number and pull_request.base.sha`);
  }
  const fullName = env.GITHUB_REPOSITORY || (typeof payload.repository?.full_name === "string" ? payload.repository.full_name : "");
  const [owner, repo, ...rest] = fullName.split("/");
  if (!owner || !repo || rest.length > 0) throw new UsageError(`cannot tell the repository: GITHUB_REPOSITORY is ${JSON.stringify(fullName)}, not owner/name`);
  return { owner, repo, number: number as number, baseSha };
}

/** The repository of this run, from GITHUB_REPOSITORY. */
export function repositoryOfRun(env: NodeJS.ProcessEnv = process.env): { owner: string; repo: string } {
  const [owner, repo, ...rest] = (env.GITHUB_REPOSITORY ?? "").split("/");
  if (!owner || !repo || rest.length > 0)
    throw new UsageError(`cannot tell the repository: GITHUB_REPOSITORY is ${JSON.stringify(env.GITHUB_REPOSITORY ?? "")}, not owner/name`);
  return { owner, repo };
}
