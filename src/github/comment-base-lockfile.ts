// The lockfile as the pull request's base commit has it, read through the repository contents API (the
// checkout holds only the PR's head), to say what each asset version was before the PR.
import { UsageError } from "../errors.ts";
import { parseLockfile, type Lockfile } from "../lockfile.ts";
import { isNotFoundError, type GitHubClient } from "./comment-client.ts";
import type { PullRequest } from "./pull-request.ts";

/** `repoPath` is '/'-separated, relative to the repository root. Undefined when the base commit has no such file. */
export async function readBaseLockfile(client: GitHubClient, pr: PullRequest, repoPath: string): Promise<Lockfile | undefined> {
  let data: unknown;
  try {
    ({ data } = await client.rest.repos.getContent({ owner: pr.owner, repo: pr.repo, path: repoPath, ref: pr.baseSha }));
  } catch (err) {
    if (isNotFoundError(err)) return undefined;
    throw err;
  }
  const where = `${repoPath} at ${pr.baseSha.slice(0, 12)}`;
  const file = data as { type?: string; encoding?: string; content?: string };
  if (file.type !== "file") throw new UsageError(`${where} is not a file`);
  // Files over 1 MB come without content ("encoding": "none"); no lockfile is that large.
  if (file.encoding !== "base64" || typeof file.content !== "string") throw new UsageError(`${where} is larger than the contents API returns (1 MB)`);
  return parseLockfile(Buffer.from(file.content, "base64").toString("utf8"), where);
}
