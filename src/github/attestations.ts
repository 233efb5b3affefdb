// GitHub's artifact attestations API (docs/trust.md, section 6): record a version's provenance bundle, and list
// the bundles recorded for a digest.
import { createGitHubClient } from "./comment-client.ts";

/** POST /repos/{owner}/{repo}/attestations (needs attestations: write): the new attestation's id. */
export async function createAttestation(token: string, repository: string, bundle: unknown, warn: (message: string) => void): Promise<number> {
  const [owner, repo] = repository.split("/");
  const client = await createGitHubClient(token, warn);
  const response = await client.request("POST /repos/{owner}/{repo}/attestations", { owner: owner!, repo: repo!, bundle: bundle as never });
  return (response.data as { id: number }).id;
}

/** Every bundle listed for `digest` (sha256:<hex>) in `repository`, all pages; none when GitHub has none (404). */
export async function listAttestations(token: string, repository: string, digest: string, warn: (message: string) => void): Promise<unknown[]> {
  const [owner, repo] = repository.split("/");
  const client = await createGitHubClient(token, warn);
  try {
    // The answer is {attestations: […]}, not a list: each page is mapped to its list (pages follow the Link header).
    const listed = await client.paginate(
      "GET /repos/{owner}/{repo}/attestations/{subject_digest}",
      { owner: owner!, repo: repo!, subject_digest: digest, per_page: 100 },
      (response) => (response.data as { attestations?: { bundle?: unknown }[] }).attestations ?? [],
    );
    return listed.map((a) => a.bundle).filter((b) => b !== undefined && b !== null);
  } catch (err) {
    if ((err as { status?: number }).status === 404) return [];
    throw err;
  }
}
