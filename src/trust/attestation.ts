// GitHub artifact attestations of a version (docs/trust.md, section 6): a SLSA v1 build-provenance statement whose
// subject is the version's asset digest (so `gh attestation verify` finds it by digest), signed keylessly like a
// `.sig`; and the check of the attestations GitHub lists for a digest under a trust rule's keyless signers.
import { AssetError } from "../base/errors.ts";
import { parseBundle } from "./bundle.ts";
import { isObject } from "./json.ts";
import { identityDifference, verifyCertificateBundle, type KeylessSigner } from "./keyless.ts";

export const SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1";
const GITHUB_WORKFLOW_BUILD_TYPE = "https://actions.github.io/buildtypes/workflow/v1";

/** The attestation subject: the store (without credentials or query) and the version, with the asset digest. */
export interface AttestedVersion {
  /** `assetkit://<scheme>/<bucket-or-host>/<prefix>/<name>@<version>` */
  subjectName: string;
  name: string;
  version: string;
  /** `sha256:<hex>` */
  digest: string;
}

/** The claims of a JWT's payload (the signer's own OIDC token: it is checked by Fulcio, not here). */
function tokenClaims(token: string): Record<string, string> {
  const payload = token.split(".")[1] ?? "";
  try {
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as unknown;
    return isObject(claims) ? (Object.fromEntries(Object.entries(claims).map(([k, v]) => [k, String(v)])) as Record<string, string>) : {};
  } catch {
    return {};
  }
}

/** The in-toto statement of the build provenance, built from the OIDC token's claims as actions/attest-build-provenance builds it. */
export function provenanceStatement(version: AttestedVersion, token: string, serverUrl: string): Buffer {
  const c = tokenClaims(token);
  const [workflowPath = "", workflowRef = ""] = (c.workflow_ref ?? "").replace(`${c.repository}/`, "").split("@");
  const statement = {
    _type: "https://in-toto.io/Statement/v1",
    subject: [{ name: version.subjectName, digest: { sha256: version.digest.replace(/^sha256:/, "") } }],
    predicateType: SLSA_PROVENANCE_V1,
    predicate: {
      buildDefinition: {
        buildType: GITHUB_WORKFLOW_BUILD_TYPE,
        externalParameters: { workflow: { ref: workflowRef, repository: `${serverUrl}/${c.repository}`, path: workflowPath } },
        internalParameters: {
          github: {
            event_name: c.event_name,
            repository_id: c.repository_id,
            repository_owner_id: c.repository_owner_id,
            runner_environment: c.runner_environment,
          },
        },
        resolvedDependencies: [{ uri: `git+${serverUrl}/${c.repository}@${c.ref}`, digest: { gitCommit: c.sha } }],
      },
      runDetails: {
        builder: { id: `${serverUrl}/${c.job_workflow_ref}` },
        metadata: { invocationId: `${serverUrl}/${c.repository}/actions/runs/${c.run_id}/attempts/${c.run_attempt}` },
      },
    },
  };
  return Buffer.from(JSON.stringify(statement));
}

/** Why an attestation bundle does not attest this version under `signers`, or undefined when it does. */
async function attestationProblem(
  bundle: unknown,
  version: Omit<AttestedVersion, "subjectName">,
  signers: readonly KeylessSigner[],
  trustedRoot: unknown,
): Promise<string | undefined> {
  const label = `${version.name}:${version.version}`;
  try {
    const parsed = parseBundle(Buffer.from(JSON.stringify(bundle)), (why) => {
      throw new AssetError(`its bundle ${why}`);
    });
    const identity = await verifyCertificateBundle(parsed, trustedRoot, label);
    const refused = identityDifference(identity, signers);
    if (refused) return `by ${refused}, not an allowed signer`;
    const statement = JSON.parse(parsed.payload.toString("utf8")) as { predicateType?: unknown; subject?: { name?: unknown; digest?: { sha256?: unknown } }[] };
    if (statement.predicateType !== SLSA_PROVENANCE_V1) return `of predicate type ${JSON.stringify(statement.predicateType)}, not ${SLSA_PROVENANCE_V1}`;
    const hex = version.digest.replace(/^sha256:/, "");
    const subject = (statement.subject ?? []).find((s) => s.digest?.sha256 === hex);
    if (!subject) return "about another digest";
    if (typeof subject.name !== "string" || !subject.name.endsWith(`/${version.name}@${version.version}`)) return `for ${String(subject.name)}`;
    return undefined;
  } catch (err) {
    return (err as Error).message.replace(`${label}: `, "");
  }
}

/**
 * Passes when one of `bundles` (the attestations GitHub lists for the digest) is a verified SLSA provenance of this
 * version by one of `signers`; else throws one line naming the version and why the last one failed.
 */
export async function checkAttestations(
  bundles: readonly unknown[],
  version: Omit<AttestedVersion, "subjectName">,
  signers: readonly KeylessSigner[],
  trustedRoot: unknown,
  where: string,
): Promise<void> {
  let last = "none is listed";
  for (const bundle of bundles) {
    const problem = await attestationProblem(bundle, version, signers, trustedRoot);
    if (problem === undefined) return;
    last = `the last one: ${problem}`;
  }
  throw new AssetError(`${version.name}:${version.version}: no GitHub attestation of ${version.digest} in ${where} passes (${last})`);
}
