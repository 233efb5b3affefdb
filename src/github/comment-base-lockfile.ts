// A lockfile as a commit has it, read through the repository contents API (the checkout holds only one commit):
// the pull request's base commit (what each asset version was before the PR), or a branch head (prune).
import { UsageError } from "../base/errors.ts";
import { parseLockfile, type Lockfile } from "../project/lockfile.ts";
import { isNotFoundError, type GitHubClient } from "./comment-client.ts";
import type { PullRequest } from "./pull-request.ts";

/** `repoPath` is '/'-separated, relative to the repository root. Undefined when the base commit has no such file. */
export function readBaseLockfile(client: GitHubClient, pr: PullRequest, repoPath: string): Promise<Lockfile | undefined> {
  return readLockfileAt(client, pr, pr.baseSha, repoPath);
}

/** The lockfile at `repoPath` in commit `ref`; undefined when that commit has no such file. */
export async function readLockfileAt(
  client: GitHubClient,
  repo: { owner: string; repo: string },
  ref: string,
  repoPath: string,
): Promise<Lockfile | undefined> {
  let data: unknown;
  try {
    ({ data } = await client.rest.repos.getContent({ owner: repo.owner, repo: repo.repo, path: repoPath, ref }));
  } catch (err) {
    if (isNotFoundError(err)) return undefined;
    throw err;
  }
  const where = `${repoPath} at ${ref.slice(0, 12)}`;
  const file = data as { type?: string; encoding?: string; content?: string };
  if (file.type !== "file") throw new UsageError(`${where} is not a file`);
  // Files over 1 MB come without content ("encoding": "none"); no lockfile is that large.
  if (file.encoding !== "base64" || typeof file.content !== "string") throw new UsageError(`${where} is larger than the contents API returns (1 MB)`);
  return parseLockfile(Buffer.from(file.content, "base64").toString("utf8"), where);
}
