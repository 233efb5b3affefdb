// The asset versions that the lockfile at the head of every branch of the repository names, for prune: a version
// some branch still pins is never deleted. Any branch whose lockfile cannot be read stops the prune.
import { AssetError } from "../base/errors.ts";
import type { LockedVersion } from "../registry/retention.ts";
import { readLockfileAt } from "./comment-base-lockfile.ts";
import type { GitHubClient } from "./comment-client.ts";

export async function lockedOnBranches(
  client: GitHubClient,
  repo: { owner: string; repo: string },
  repoPath: string,
): Promise<{ branches: number; locked: LockedVersion[] }> {
  let branches;
  try {
    branches = await client.paginate(client.rest.repos.listBranches, { owner: repo.owner, repo: repo.repo, per_page: 100 });
  } catch (err) {
    throw new AssetError(`cannot list the branches of ${repo.owner}/${repo.repo}: ${(err as Error).message}; prune stopped, nothing deleted`, { cause: err });
  }
  const locked: LockedVersion[] = [];
  for (const branch of branches) {
    let lock;
    try {
      // At the head commit the list returned: one consistent snapshot of the branch.
      lock = await readLockfileAt(client, repo, branch.commit.sha, repoPath);
    } catch (err) {
      throw new AssetError(`cannot read ${repoPath} on branch ${branch.name}: ${(err as Error).message}; prune stopped, nothing deleted`, { cause: err });
    }
    for (const entry of Object.values(lock?.assets ?? {}))
      locked.push({ name: entry.name, version: entry.version, where: `${repoPath} on branch ${branch.name}` });
  }
  return { branches: branches.length, locked };
}
