import { reservedPathProblem } from "../local/assets-dir.ts";
import type { Context } from "./context.ts";
import { UsageError } from "../base/errors.ts";
import { startHashing, type HashingInput, type ImportOrigin } from "../registry/manifest.ts";
import { formatBytes } from "../base/units.ts";
import { provenanceFromEnv } from "../github/provenance.ts";
import { formatSpec, parseSpec, type VersionSelector } from "../registry/spec.ts";
import type { Bump } from "../registry/versioning.ts";
import { CREATED_BY } from "../base/version.ts";
import { readFileSync } from "node:fs";
import { keySignerId, signingKeyFromPem, type SigningKey } from "../trust/keys.ts";
import { keylessSigning, type KeylessSigning, type TrustConfig } from "../trust/keyless.ts";
import { signVersion, signVersionKeyless } from "../trust/oms.ts";
import type { SignedVersion } from "../registry/registry.ts";
import { recordAttestation } from "./attest.ts";

export interface PublishOptions {
  /** The file or folder to publish. */
  path: string;
  /** name, or name:series (name:1 publishes the next 1.x). */
  target: string;
  bump?: string;
  version?: string;
  ifChanged?: boolean;
  /** key=value pairs kept in the meta. */
  metadata?: string[];
  /** Sign keylessly (Sigstore): with the job's OIDC token in GitHub Actions, else SIGSTORE_ID_TOKEN. */
  sign?: boolean;
  /** Which Sigstore signs keylessly: public-good or github (default: ASSETKIT_SIGSTORE, else by the repository's visibility). */
  sigstore?: string;
  /** Record a GitHub build-provenance attestation of the version's digest (needs id-token: write, attestations: write). */
  attest?: boolean;
  /** A PEM private key file to sign the version with (else the PEM in ASSETKIT_SIGNING_KEY, if set). */
  signKey?: string;
  /** The PEM private key itself (the Action's `sign-key` input, from a secret); --sign-key's file wins. */
  signKeyPem?: string;
}

export interface PublishResult {
  name: string;
  version: string;
  spec: string;
  digest: string;
  published: boolean;
  /** True when this run signed the version (wrote its `.sig`); false for an unchanged one (if-changed) or without a key. */
  signed: boolean;
  /** The key signer when signed with a key: `key:<hint>`, as assets.lock pins it (null for a keyless signature: its certificate names the signer). */
  signer: string | null;
  store: string;
  size: number;
  files: number;
}

export async function publishCommand(ctx: Context, options: PublishOptions): Promise<PublishResult> {
  const target = parsePublishTarget(options, ctx.config.trust?.trustConfig);
  // The hash record spares reading the files found as they were (plain publish too: a file's hashes are hashes).
  return publishPrepared(ctx, target, await startHashing(options.path, { record: { dir: ctx.assetsDir.hashRecordDir } }), options.path);
}

/** A publish's target and settings, checked before any byte is read. */
export interface PublishTarget {
  name: string;
  series?: Extract<VersionSelector, { kind: "numeric" }>;
  bump?: Bump;
  version?: string;
  ifChanged: boolean;
  metadata: Record<string, string>;
  /** Signs the version (its `.sig`, written before its meta): with a key (--sign-key, ASSETKIT_SIGNING_KEY) or keylessly (--sign). */
  signer?: { key: SigningKey } | { keyless: KeylessSigning };
  /** --attest: the keyless signing of the attestation, and the repository of the run it is recorded in. */
  attest?: { signing: KeylessSigning; repository: string };
}

/** The publish target; `trustConfig` (the policy's) names the Sigstore services a keyless signature uses. */
export function parsePublishTarget(
  options: Omit<PublishOptions, "path">,
  trustConfig: TrustConfig | undefined,
  env: NodeJS.ProcessEnv = process.env,
): PublishTarget {
  const target = parseSpec(options.target);
  if (target.subPath) throw new UsageError(`publish takes a name or name:series, not a sub-path ([${target.subPath}])`);
  if (target.selector.kind === "date") throw new UsageError(`publish takes a name or name:series, not a version: pass --version ${target.selector.text}`);
  if (target.selector.kind === "range" || target.selector.kind === "alias") {
    throw new UsageError(`publish takes a name or name:series (like ${target.name}:1), not ${options.target}`);
  }
  const series = target.selector.kind === "numeric" ? target.selector : undefined;
  const bump = parseBump(options.bump);
  if (options.version !== undefined && (series || bump)) throw new UsageError("--version names the version itself: drop the :series and --bump");
  const signer = signerOf(options, trustConfig, env);
  const attest = options.attest ? attestationTarget(options, signer, trustConfig, env) : undefined;
  return {
    name: target.name,
    ...(series ? { series } : {}),
    ...(bump ? { bump } : {}),
    ...(options.version !== undefined ? { version: withoutVPrefix(options.version) } : {}),
    ifChanged: options.ifChanged ?? false,
    metadata: parseMetadata(options.metadata ?? []),
    ...(signer ? { signer } : {}),
    ...(attest ? { attest } : {}),
  };
}

/** Where --attest records the attestation (the run's repository) and how it signs it (keylessly, as --sign does). */
function attestationTarget(
  options: Omit<PublishOptions, "path">,
  signer: PublishTarget["signer"],
  trustConfig: TrustConfig | undefined,
  env: NodeJS.ProcessEnv,
): PublishTarget["attest"] {
  const repository = env.GITHUB_REPOSITORY;
  if (!repository?.includes("/"))
    throw new UsageError("--attest records the attestation in the run's GitHub repository: GITHUB_REPOSITORY (owner/name) is not set");
  const signing = signer && "keyless" in signer ? signer.keyless : keylessSigning(env, trustConfig, options.sigstore);
  return { signing, repository };
}

/** A key when one is given (--sign-key, the sign-key input, else ASSETKIT_SIGNING_KEY), else keyless when --sign asks for it; checked before any upload. */
function signerOf(options: Omit<PublishOptions, "path">, trustConfig: TrustConfig | undefined, env: NodeJS.ProcessEnv): PublishTarget["signer"] {
  const key = signingKeyOf(options, env);
  if (key) return { key };
  return options.sign ? { keyless: keylessSigning(env, trustConfig, options.sigstore) } : undefined;
}

/** The key a publish signs with: the file --sign-key names, else the PEM given (the Action's input), else the PEM ASSETKIT_SIGNING_KEY holds (CI secrets). */
function signingKeyOf({ signKey: file, signKeyPem: pem }: Pick<PublishOptions, "signKey" | "signKeyPem">, env: NodeJS.ProcessEnv): SigningKey | undefined {
  if (pem !== undefined && file === undefined) return signingKeyFromPem(pem, "the sign-key input");
  if (file !== undefined) {
    let pem: Buffer;
    try {
      pem = readFileSync(file);
    } catch (err) {
      throw new UsageError(`cannot read the --sign-key file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return signingKeyFromPem(pem, `--sign-key ${file}`);
  }
  return env.ASSETKIT_SIGNING_KEY ? signingKeyFromPem(env.ASSETKIT_SIGNING_KEY, "ASSETKIT_SIGNING_KEY") : undefined;
}

/**
 * Publishes an input by the registry's protocol. `what` names the input in errors; `origin` records where an
 * import came from.
 */
export async function publishPrepared(ctx: Context, target: PublishTarget, input: HashingInput, what: string, origin?: ImportOrigin): Promise<PublishResult> {
  const reserved = reservedPathProblem(
    input.files.map((f) => f.path),
    input.isDirectory,
  );
  if (reserved) throw new UsageError(`cannot publish ${what}: ${reserved}`);
  const { signer, attest, ...request } = target;
  const sign = signer && ((v: SignedVersion) => ("key" in signer ? signVersion(v, v, signer.key) : signVersionKeyless(v, v, signer.keyless)));
  const outcome = await ctx.registry.publish({
    ...request,
    input,
    // The attestation is recorded after the signature is made and before the .sig and the meta are written.
    ...(sign || attest
      ? {
          sign: async (v: SignedVersion) => {
            const signature = await sign?.(v);
            if (attest) await recordAttestation(ctx, attest, v);
            return signature;
          },
        }
      : {}),
    createdBy: CREATED_BY,
    source: { ...provenanceFromEnv(), ...(origin ? { import: origin } : {}) },
    onProgress: (p) => ctx.reporter.progress?.(p.bytes, p.totalBytes, `publishing ${target.name}`, { done: p.files, total: p.totalFiles }),
  });
  const spec = formatSpec({ name: target.name, version: outcome.version });
  if (outcome.published) {
    const { uploaded, copied, kept } = outcome;
    const unchanged =
      (copied.files ? `; ${copied.files} unchanged file(s), ${formatBytes(copied.bytes)}, copied inside the store` : "") +
      (kept?.files ? `; ${kept.files} file(s), ${formatBytes(kept.bytes)}, already in the store (shared by content)` : "");
    const signed = signer ? ", signed" : "";
    ctx.reporter.info(`published ${spec}${signed}: uploaded ${uploaded.files} file(s), ${formatBytes(uploaded.bytes)}${unchanged}`);
  }
  return {
    name: target.name,
    version: outcome.version,
    spec,
    digest: outcome.digest,
    published: outcome.published,
    signed: outcome.published && signer !== undefined,
    // A keyless signer is known from its certificate once signed: `show` and `verify` name it.
    signer: outcome.published && signer && "key" in signer ? keySignerId(signer.key.hint) : null,
    store: ctx.registry.url,
    size: input.size,
    files: input.files.length,
  };
}

function parseBump(bump: string | undefined): Bump | undefined {
  if (bump === undefined || bump === "") return undefined;
  if (bump === "major" || bump === "minor" || bump === "patch") return bump;
  throw new UsageError(`bad --bump ${JSON.stringify(bump)}: use major, minor or patch`);
}

export function parseMetadata(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`bad metadata ${JSON.stringify(pair)}: write key=value`);
    out[pair.slice(0, eq).trim()] = pair.slice(eq + 1);
  }
  return out;
}

/** A release tag's version (v1.4.0, as in github.ref_name) is the version 1.4.0; anything else is kept as given. */
export function withoutVPrefix(version: string): string {
  return /^v\d/.test(version) ? version.slice(1) : version;
}
