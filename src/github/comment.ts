// The one sticky comment on a pull request: found again by a hidden marker AND its author, so a comment someone
// else wrote (and seeded with our marker) is never taken for ours; created when there is none, else edited.
import type { GitHubClient } from "./comment-client.ts";
import type { PullRequest } from "./pull-request.ts";

/** Hidden in the rendered comment; starts every body assetkit posts. */
export const COMMENT_MARKER = "<!-- assetkit:pr-comment -->";

/**
 * Who comments with the workflow's GITHUB_TOKEN. That token cannot ask who it is (`GET /user` is refused to
 * installation tokens), so the author is known, not asked; other tokens name theirs with the `comment-author` input.
 */
export const GITHUB_TOKEN_LOGIN = "github-actions[bot]";

export interface PostedComment {
  url: string;
  id: number;
  action: "created" | "updated" | "unchanged";
  /** The login GitHub recorded as the author: differs from the expected one when the token is not whose we think. */
  author: string;
}

/** Our previous comment: the first one, through every page, that carries the marker and was written by `author`. */
export async function findComment(client: GitHubClient, pr: PullRequest, author: string): Promise<{ id: number; body: string; url: string } | undefined> {
  const pages = client.paginate.iterator(client.rest.issues.listComments, { owner: pr.owner, repo: pr.repo, issue_number: pr.number, per_page: 100 });
  for await (const { data } of pages) {
    const ours = data.find((c) => c.body?.includes(COMMENT_MARKER) && sameLogin(c.user?.login, author));
    if (ours) return { id: ours.id, body: ours.body ?? "", url: ours.html_url };
  }
  return undefined;
}

/** Edits our previous comment (unless its body is already `body`) or creates it. `body` must carry the marker. */
export async function upsertComment(client: GitHubClient, pr: PullRequest, author: string, body: string): Promise<PostedComment> {
  const previous = await findComment(client, pr, author);
  if (previous?.body === body) return { url: previous.url, id: previous.id, action: "unchanged", author };
  const { data } = previous
    ? await client.rest.issues.updateComment({ owner: pr.owner, repo: pr.repo, comment_id: previous.id, body })
    : await client.rest.issues.createComment({ owner: pr.owner, repo: pr.repo, issue_number: pr.number, body });
  return { url: data.html_url, id: data.id, action: previous ? "updated" : "created", author: data.user?.login ?? "" };
}

/** GitHub logins are case-insensitive. */
function sameLogin(login: string | undefined, author: string): boolean {
  return login !== undefined && login.toLowerCase() === author.toLowerCase();
}
