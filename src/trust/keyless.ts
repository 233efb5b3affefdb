// Keyless (Sigstore) signing and verification, the light half (docs/trust.md, sections 5 and 7): where the identity
// token and the signing services come from, which trusted root a certificate is checked against, and whether the
// identity a certificate names is one a policy allows. The Sigstore libraries are loaded only when a keyless
// signature is actually made or checked (./sigstore.ts).
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { promises as fs } from "node:fs";
import path from "node:path";
import picomatch from "picomatch";
import { AssetError, UsageError } from "../base/errors.ts";
import type { ParsedBundle } from "./bundle.ts";
import { isObject } from "./json.ts";
import type { CertificateIdentity } from "./sigstore.ts";

/** A policy's keyless signer: a GitHub workflow identity (repository, workflow, ref glob), or an exact SAN, from `issuer`. */
export interface KeylessSigner {
  issuer: string;
  /** owner/name: the certificate's Source Repository URI (OID .1.12) names it. */
  repository?: string;
  /** The signer workflow: a path in `repository`, or owner/name/path for a reusable one (the SAN up to `@`). */
  workflow?: string;
  /** Glob over the Source Repository Ref (OID .1.14), e.g. refs/heads/main or refs/tags/v*. */
  ref?: string;
  /** The exact SAN (non-GitHub issuers). */
  san?: string;
}

/** A Sigstore ClientTrustConfig file (`trust-config`): its trusted root, and the signing services it names. */
export interface TrustConfig {
  file: string;
  sha256: string;
  trustedRoot: unknown;
  signingConfig?: unknown;
}

/** The trusted root a keyless signature is verified against (JSON of a Sigstore TrustedRoot). */
export type TrustedRootSource = (policy: { trustConfig?: TrustConfig }) => Promise<unknown>;

/** A ClientTrustConfig (trustedRoot + signingConfig), or a bare TrustedRoot; `bad(why)` throws the caller's error. */
export async function loadTrustConfig(file: string, bad: (why: string) => never): Promise<TrustConfig> {
  const data = await fs.readFile(file).catch(() => bad("cannot be read"));
  let json: unknown;
  try {
    json = JSON.parse(data.toString("utf8"));
  } catch {
    return bad("is not JSON");
  }
  const sha256 = createHash("sha256").update(data).digest("hex");
  if (isObject(json) && isObject(json.trustedRoot)) {
    return { file, sha256, trustedRoot: json.trustedRoot, ...(isObject(json.signingConfig) ? { signingConfig: json.signingConfig } : {}) };
  }
  if (isObject(json) && typeof json.mediaType === "string" && json.mediaType.includes("trustedroot")) return { file, sha256, trustedRoot: json };
  return bad("is neither a Sigstore ClientTrustConfig (trustedRoot, signingConfig) nor a TrustedRoot");
}

/**
 * The trusted root: the policy's trust-config, else public-good's, from Sigstore's TUF repository (cached in
 * `cacheDir`), or with `offline` the copy the Sigstore TUF client ships (no request). Loaded once per process.
 */
export function trustedRootSource(options: { offline: boolean; cacheDir: string }): TrustedRootSource {
  let publicGood: Promise<unknown> | undefined;
  return async (policy) => {
    if (policy.trustConfig) return policy.trustConfig.trustedRoot;
    publicGood ??= import("./sigstore.ts").then((s) => s.publicGoodTrustedRoot({ offline: options.offline, cachePath: options.cacheDir }));
    return publicGood;
  };
}

/** Verifies a certificate bundle's signature, chain and log proofs; returns who the certificate names. */
export async function verifyCertificateBundle(bundle: ParsedBundle, trustedRoot: unknown, label: string): Promise<CertificateIdentity> {
  const { verifyKeyless } = await import("./sigstore.ts");
  try {
    return verifyKeyless(bundle.json, trustedRoot);
  } catch (err) {
    throw new AssetError(`${label}: its signature does not verify against the Sigstore trusted root (${(err as Error).message})`);
  }
}

/** The path of a URL (no leading slash), lowercased: GitHub owner and repository names are case-insensitive. */
function urlPath(url: string): string | undefined {
  try {
    return new URL(url).pathname.slice(1).toLowerCase();
  } catch {
    return undefined;
  }
}

function allows(signer: KeylessSigner, identity: CertificateIdentity): boolean {
  if (identity.issuer !== signer.issuer) return false;
  if (signer.san !== undefined) return identity.san === signer.san;
  if (!identity.repositoryUri || urlPath(identity.repositoryUri) !== signer.repository!.toLowerCase()) return false;
  if (signer.workflow !== undefined) {
    const at = identity.san.lastIndexOf("@");
    const workflow = signer.workflow.startsWith(".github/") ? `${signer.repository}/${signer.workflow}` : signer.workflow;
    if (at < 0 || urlPath(identity.san.slice(0, at)) !== workflow.toLowerCase()) return false;
  }
  return signer.ref === undefined || (identity.ref !== undefined && picomatch(signer.ref)(identity.ref));
}

/** Undefined when one of `signers` allows the certificate's identity; else how to name the signer in the refusal. */
export function identityDifference(identity: CertificateIdentity, signers: readonly KeylessSigner[]): string | undefined {
  if (signers.some((s) => allows(s, identity))) return undefined;
  return `${identity.san || "a certificate without a subject"} (issuer ${identity.issuer || "unknown"}${identity.ref ? `, ref ${identity.ref}` : ""})`;
}

/** GitHub Actions' OIDC issuer: its certificates name a workflow (https://github.com/<owner>/<repo>/<path>@<ref>). */
const GITHUB_ACTIONS_ISSUER = "https://token.actions.githubusercontent.com";

/**
 * Who a certificate names, as assets.lock pins it and `show` prints it: `github:<owner>/<repo>/<workflow>@<ref>` for a
 * GitHub workflow, else `sigstore:<san>`; the name adds the issuer.
 */
export function keylessSignerOf(identity: CertificateIdentity): { id: string; name: string } {
  const github = identity.issuer === GITHUB_ACTIONS_ISSUER && identity.san.startsWith("https://github.com/");
  const id = github ? `github:${identity.san.slice("https://github.com/".length)}` : `sigstore:${identity.san}`;
  return { id, name: `${identity.san} (issuer ${identity.issuer})` };
}

/** What a keyless signature needs: an OIDC token for audience `sigstore`, and the signing services. */
export interface KeylessSigning {
  token: () => Promise<string>;
  signingConfig: unknown;
  /** Which services, for messages: public-good, github or the trust-config file. */
  services: string;
}

const SIGNING_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.signingconfig.v0.2+json";
const service = (url: string) => ({ url, majorApiVersion: 1, operator: new URL(url).hostname });
/** Public-good Sigstore: Fulcio, Rekor v1 (the identity is published in the transparency log) and its TSA. */
const PUBLIC_GOOD = {
  mediaType: SIGNING_CONFIG_MEDIA_TYPE,
  caUrls: [service("https://fulcio.sigstore.dev")],
  oidcUrls: [service("https://oauth2.sigstore.dev/auth")],
  rekorTlogUrls: [service("https://rekor.sigstore.dev")],
  tsaUrls: [service("https://timestamp.sigstore.dev/api/v1/timestamp")],
  rekorTlogConfig: { selector: "ANY" },
  tsaConfig: { selector: "ANY" },
};
/** GitHub's Sigstore instance for private repositories (as actions/attest uses it): its Fulcio and TSA, no transparency log. */
const GITHUB = {
  mediaType: SIGNING_CONFIG_MEDIA_TYPE,
  caUrls: [service("https://fulcio.githubapp.com")],
  oidcUrls: [],
  rekorTlogUrls: [],
  tsaUrls: [service("https://timestamp.githubapp.com/api/v1/timestamp")],
  tsaConfig: { selector: "ANY" },
};

/**
 * The token and services of a keyless signature, checked before any byte is uploaded. Token: the job's OIDC token in
 * GitHub Actions (needs `permissions: id-token: write`), else SIGSTORE_ID_TOKEN. Services: the trust-config's, else
 * `sigstore` or ASSETKIT_SIGSTORE (public-good or github), else as actions/attest chooses: GitHub's for a private or internal repository.
 */
export function keylessSigning(env: NodeJS.ProcessEnv, trustConfig: TrustConfig | undefined, sigstore?: string): KeylessSigning {
  let token: () => Promise<string>;
  if (env.ACTIONS_ID_TOKEN_REQUEST_URL && env.ACTIONS_ID_TOKEN_REQUEST_TOKEN) {
    token = async () => {
      const core = await import("@actions/core");
      try {
        return await core.getIDToken("sigstore");
      } catch (err) {
        throw new AssetError(`cannot get the job's OIDC token for Sigstore: ${(err as Error).message}`);
      }
    };
  } else if (env.SIGSTORE_ID_TOKEN) {
    const value = env.SIGSTORE_ID_TOKEN;
    token = () => Promise.resolve(value);
  } else if (env.GITHUB_ACTIONS === "true") {
    throw new AssetError("keyless signing needs the job's OIDC token: give the job permissions: id-token: write (or sign with a key: sign-key)");
  } else {
    throw new UsageError(
      "--sign needs an OIDC identity token: run in GitHub Actions with permissions: id-token: write, or set SIGSTORE_ID_TOKEN (or sign with a key: --sign-key)",
    );
  }
  if (trustConfig) {
    if (!trustConfig.signingConfig) throw new UsageError(`${trustConfig.file} has no signingConfig: keyless signing needs the services to sign with`);
    return { token, signingConfig: trustConfig.signingConfig, services: path.basename(trustConfig.file) };
  }
  const chosen = sigstore || env.ASSETKIT_SIGSTORE || (privateRepository(env) ? "github" : "public-good");
  if (chosen !== "public-good" && chosen !== "github") throw new UsageError(`bad sigstore ${JSON.stringify(chosen)}: use public-good or github`);
  return { token, signingConfig: chosen === "github" ? GITHUB : PUBLIC_GOOD, services: chosen };
}

/** Whether the workflow's event payload says the repository is private or internal. */
function privateRepository(env: NodeJS.ProcessEnv): boolean {
  if (!env.GITHUB_EVENT_PATH) return false;
  try {
    const event = JSON.parse(readFileSync(env.GITHUB_EVENT_PATH, "utf8")) as { repository?: { visibility?: string; private?: boolean } };
    return event.repository?.visibility === "private" || event.repository?.visibility === "internal" || event.repository?.private === true;
  } catch {
    return false;
  }
}

/** A JWT (the identity token is a credential: the Sigstore client quotes it in some errors). */
const JWT = /eyJ[\w-]*\.[\w-]+\.[\w-]*/g;

/** The bundle signing `payload` (an in-toto statement) keylessly; any service failure is one line naming `label`. */
export async function signKeylessly(payload: Buffer, signing: KeylessSigning, label: string): Promise<Buffer> {
  const { signKeyless } = await import("./sigstore.ts");
  try {
    return await signKeyless(payload, signing.signingConfig, signing.token);
  } catch (err) {
    if (err instanceof AssetError) throw err;
    const cause = (err as { cause?: Error }).cause?.message;
    const message = `${(err as Error).message}${cause ? `: ${cause}` : ""}`.replace(JWT, "<token>");
    throw new AssetError(`${label} cannot be signed with Sigstore (${signing.services}): ${message}`);
  }
}
