// Keyless signatures through the official Sigstore libraries (docs/trust.md, sections 5 and 8): a Fulcio certificate
// for the job's OIDC identity, a Rekor entry and/or an RFC 3161 timestamp, all in one bundle; and their verification
// against a trusted root. Loaded only when a keyless signature is made or checked (a lazy chunk of ~1 MB).
import { bundleFromJSON, bundleToJSON } from "@sigstore/bundle";
import { SigningConfig, TrustedRoot } from "@sigstore/protobuf-specs";
import { bundleBuilderFromSigningConfig } from "@sigstore/sign";
import { getTrustedRoot } from "@sigstore/tuf";
import seeds from "@sigstore/tuf/seeds.json" with { type: "json" };
import { toSignedEntity, toTrustMaterial, Verifier } from "@sigstore/verify";
import { IN_TOTO_PAYLOAD_TYPE } from "./dsse.ts";

/** The Fulcio certificate extensions a policy matches (OIDs 1.3.6.1.4.1.57264.1.*), as the certificate states them. */
export interface CertificateIdentity {
  /** The OIDC issuer (.1.8; .1.1 in older certificates). */
  issuer: string;
  /** The subject alternative name: for GitHub Actions, https://github.com/<owner>/<repo>/<workflow path>@<ref>. */
  san: string;
  /** Source Repository URI (.1.12), e.g. https://github.com/acme/ml. */
  repositoryUri?: string;
  /** Source Repository Ref (.1.14), e.g. refs/heads/main. */
  ref?: string;
}

/** Signs `payload` (an in-toto statement) as a DSSE bundle: certificate from the CA, entries from the witnesses of `signingConfig`. */
export async function signKeyless(payload: Buffer, signingConfigJson: unknown, token: () => Promise<string>): Promise<Buffer> {
  const builder = bundleBuilderFromSigningConfig({
    signingConfig: SigningConfig.fromJSON(signingConfigJson),
    identityProvider: { getToken: token },
    bundleType: "dsseEnvelope",
  });
  const bundle = await builder.create({ data: payload, type: IN_TOTO_PAYLOAD_TYPE });
  return Buffer.from(JSON.stringify(bundleToJSON(bundle)));
}

/**
 * Verifies a certificate bundle against `trustedRootJson` (chain, SCT, timestamps, transparency-log inclusion, the
 * DSSE signature) and returns who the certificate names. Throws the library's error, whose message says what failed.
 */
export function verifyKeyless(bundleJson: unknown, trustedRootJson: unknown): CertificateIdentity {
  const root = TrustedRoot.fromJSON(trustedRootJson);
  const verifier = new Verifier(toTrustMaterial(root), {
    tlogThreshold: root.tlogs.length > 0 ? 1 : 0,
    ctlogThreshold: root.ctlogs.length > 0 ? 1 : 0,
    timestampThreshold: 1,
  });
  const entity = toSignedEntity(bundleFromJSON(bundleJson));
  const signer = verifier.verify(entity);
  if (entity.key.$case !== "certificate") throw new Error("is not a certificate bundle");
  const certificate = entity.key.certificate;
  const text = (oid: string) => certificate.extension(oid)?.valueObj.subs?.[0]?.value.toString("utf8");
  const repositoryUri = text("1.3.6.1.4.1.57264.1.12");
  const ref = text("1.3.6.1.4.1.57264.1.14");
  return {
    issuer: signer.identity?.extensions?.issuer ?? "",
    san: signer.identity?.subjectAlternativeName ?? "",
    ...(repositoryUri !== undefined ? { repositoryUri } : {}),
    ...(ref !== undefined ? { ref } : {}),
  };
}

/**
 * Public-good's trusted root: from Sigstore's TUF repository (metadata cached in `cachePath`), or, offline, the one
 * the TUF client ships in its seed (as old as the installed @sigstore/tuf: key rotations after it are unknown).
 */
export async function publicGoodTrustedRoot(options: { offline: boolean; cachePath: string }): Promise<unknown> {
  if (options.offline) return JSON.parse(Buffer.from(seeds["https://tuf-repo-cdn.sigstore.dev"].targets["trusted_root.json"], "base64").toString("utf8"));
  return TrustedRoot.toJSON(await getTrustedRoot({ cachePath: options.cachePath }));
}
