// Deploy events: a repository_dispatch (assetkit-published / assetkit-promoted) so that a deploy workflow can
// start on `on: repository_dispatch`. Best effort: a token that may not send it is a warning, never a failure.
import { createGitHubClient } from "./comment-client.ts";

export interface DeployEvent {
  event_type: "assetkit-published" | "assetkit-promoted";
  /** GitHub allows at most 10 top-level properties. */
  client_payload: { name: string; version: string; digest: string | null; channel: string | null; previous: string | null; store: string };
}

/** Sends the event to `repository` (owner/repo); true when GitHub accepted it. */
export async function sendDeployEvent(token: string, repository: string, event: DeployEvent, warn: (message: string) => void): Promise<boolean> {
  const [owner, repo] = repository.split("/");
  if (!owner || !repo) {
    warn(`no ${event.event_type} event sent: GITHUB_REPOSITORY is not set (owner/repo)`);
    return false;
  }
  try {
    const client = await createGitHubClient(token, warn);
    await client.rest.repos.createDispatchEvent({ owner, repo, ...event });
    return true;
  } catch (err) {
    const e = err as { status?: number; message?: string };
    const hint = e.status === 403 || e.status === 404 ? " (the token needs contents: write on the repository)" : "";
    warn(`no ${event.event_type} event sent to ${repository}: ${e.status ? `HTTP ${e.status}: ` : ""}${(e.message ?? String(err)).split("\n")[0]}${hint}`);
    return false;
  }
}
