// Where a version came from, read from the variables GitHub Actions sets (absent elsewhere).
import type { Provenance } from "../registry/manifest.ts";

export function provenanceFromEnv(env: NodeJS.ProcessEnv = process.env): Provenance {
  const source: Provenance = {};
  const actor = env.GITHUB_ACTOR ?? env.USER ?? env.USERNAME;
  if (actor) source.actor = actor;
  if (env.GITHUB_REPOSITORY) source.repository = env.GITHUB_REPOSITORY;
  if (env.GITHUB_SHA) source.sha = env.GITHUB_SHA;
  if (env.GITHUB_REF) source.ref = env.GITHUB_REF;
  if (env.GITHUB_REPOSITORY && env.GITHUB_RUN_ID) {
    source.run_url = `${env.GITHUB_SERVER_URL ?? "https://github.com"}/${env.GITHUB_REPOSITORY}/actions/runs/${env.GITHUB_RUN_ID}`;
  }
  if (env.GITHUB_WORKFLOW) source.workflow = env.GITHUB_WORKFLOW;
  return source;
}
