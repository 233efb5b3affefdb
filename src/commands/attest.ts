// publish|import --attest: a GitHub build-provenance attestation of the version's digest (docs/trust.md, section 6),
// recorded after the version is signed and before its meta is written.
import { AssetError } from "../base/errors.ts";
import type { SignedVersion } from "../registry/registry.ts";
import { uriWithoutQuery } from "../store/redact.ts";
import { provenanceStatement } from "../trust/attestation.ts";
import { signKeylessly, type KeylessSigning } from "../trust/keyless.ts";
import type { Context } from "./context.ts";

/**
 * Signs the provenance keylessly and records it through the repository's attestations API. A refusal (no
 * `attestations: write`, no API on the server) is a warning, unless the asset's trust rule requires attestations:
 * then it fails the publish before the meta.
 */
export async function recordAttestation(ctx: Context, attest: { signing: KeylessSigning; repository: string }, v: SignedVersion): Promise<void> {
  const label = `${v.name}:${v.version}`;
  const rule = ctx.config.trust?.rules.find((r) => r.matches(v.name));
  const notRecorded = (why: string): void => {
    const message = `${label}: no attestation recorded in ${attest.repository}: ${why}`;
    if (rule?.requireAttestation) throw new AssetError(`${message}, and trust rule ${JSON.stringify(rule.match)} requires one; nothing published`);
    ctx.reporter.warn(message);
  };
  if (!ctx.githubToken) return notRecorded("no GitHub token (GITHUB_TOKEN; the Action's github-token)");
  const token = await attest.signing.token();
  // The store as the storage initializer's URIs write it, without credentials or query: where the version was published.
  const store = uriWithoutQuery(ctx.registry.url.includes("://") ? ctx.registry.url : `file://${ctx.registry.url}`);
  const subjectName = `assetkit://${store.replace("://", "/")}/${v.name}@${v.version}`;
  const statement = provenanceStatement(
    { subjectName, name: v.name, version: v.version, digest: v.digest },
    token,
    process.env.GITHUB_SERVER_URL ?? "https://github.com",
  );
  const bundle = await signKeylessly(statement, { ...attest.signing, token: () => Promise.resolve(token) }, `${label}'s attestation`);
  // Loaded here: the GitHub client (Octokit, its throttling and retries) would cost every CLI start-up otherwise.
  const { createAttestation } = await import("../github/attestations.ts");
  try {
    await createAttestation(ctx.githubToken, attest.repository, JSON.parse(bundle.toString("utf8")), (m) => ctx.reporter.warn(m));
  } catch (err) {
    const e = err as { status?: number; message?: string };
    const hint = e.status === 403 || e.status === 404 ? " (the job needs permissions: attestations: write and id-token: write)" : "";
    notRecorded(`${e.status ? `HTTP ${e.status}: ` : ""}${(e.message ?? String(err)).split("\n")[0]}${hint}`);
  }
}
