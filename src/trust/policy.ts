// The `trust:` policy of assetkit.yml (docs/trust.md, section 7): which assets must be signed, and by whom (public
// keys, or GitHub Actions workflows certified by Sigstore). Once a policy exists it fails closed: an asset no rule
// matches is refused.
import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import picomatch from "picomatch";
import { AssetError, UsageError } from "../base/errors.ts";
import { keySignerId, verifyingKeyFromPem, type VerifyingKey } from "./keys.ts";
import { checkedStatement, keyThatSigned, readSignature, type StatementExpectation, type VersionBindingRule } from "./oms.ts";
import type { SignedContent } from "./statement.ts";
import { isObject } from "./json.ts";
import {
  identityDifference,
  keylessSignerOf,
  loadTrustConfig,
  verifyCertificateBundle,
  type KeylessSigner,
  type TrustConfig,
  type TrustedRootSource,
} from "./keyless.ts";

export interface TrustRule {
  /** The glob over asset names, as written. */
  match: string;
  matches: (name: string) => boolean;
  /** `unsigned: allow`: the assets it matches need no signature. */
  unsignedAllowed: boolean;
  keys: PolicyKey[];
  /** Identities of Sigstore certificates (keyless signatures) it allows. */
  identities: KeylessSigner[];
  binding: VersionBindingRule;
  /** `require-attestation: true`: a GitHub attestation of the version's digest by one of `identities` is required too. */
  requireAttestation: boolean;
}

/** A signer key of a rule, with the path its policy names it by (what `show` and the PR comment print). */
export interface PolicyKey extends VerifyingKey {
  file: string;
}

/** Who signed a version, as a policy accepted it. */
export interface Signer {
  /** What assets.lock pins: `key:<hint>` (model_signing's public key hint). */
  id: string;
  /** How the policy names it: the key file as written there. */
  name: string;
}

export interface TrustPolicy {
  rules: TrustRule[];
  /** `trust-config`: the Sigstore trusted root (and signing services) to use instead of public-good's. */
  trustConfig?: TrustConfig;
  /** Changes whenever a rule, a key or the trust config does: recorded in each local copy verified under the policy. */
  pin: string;
}

const RULE_KEYS = ["match", "signers", "unsigned", "version-binding", "require-attestation"];
const KEYLESS_KEYS = ["issuer", "repository", "workflow", "ref", "san"];

/** The policy from the value of `trust:` in `file` (key and trust-config paths are relative to `dir`); any mistake is a usage error. */
export async function parseTrustPolicy(value: unknown, file: string, dir: string): Promise<TrustPolicy> {
  const bad = (what: string): never => {
    throw new UsageError(`${file}: trust${what}`);
  };
  const known = (where: string, object: Record<string, unknown>, keys: readonly string[]): void => {
    for (const key of Object.keys(object)) {
      if (!keys.includes(key)) bad(`${where}: unknown key ${JSON.stringify(key)} (known: ${keys.join(", ")})`);
    }
  };
  if (!isObject(value)) return bad(" must be a mapping with rules");
  known("", value, ["rules", "trust-config"]);
  if (!Array.isArray(value.rules) || value.rules.length === 0) bad(".rules must be a list of rules");
  let trustConfig: TrustConfig | undefined;
  if (value["trust-config"] !== undefined) {
    if (typeof value["trust-config"] !== "string") bad(".trust-config must be the path of a Sigstore ClientTrustConfig JSON file");
    const where = path.resolve(dir, value["trust-config"] as string);
    trustConfig = await loadTrustConfig(where, (why) => bad(`.trust-config: ${where} ${why}`));
  }
  const rules: TrustRule[] = [];
  for (const [i, raw] of (value.rules as unknown[]).entries()) {
    const where = `.rules[${i}]`;
    if (!isObject(raw)) return bad(`${where} must be a mapping (match, signers, unsigned, version-binding)`);
    known(where, raw, RULE_KEYS);
    if (typeof raw.match !== "string" || raw.match === "") bad(`${where}.match must be a glob over asset names`);
    const match = raw.match as string;
    const binding = raw["version-binding"] ?? "version";
    if (binding !== "version" && binding !== "content") bad(`${where}.version-binding must be version or content`);
    if (raw.unsigned !== undefined && raw.unsigned !== "allow") bad(`${where}.unsigned can only be allow`);
    const unsignedAllowed = raw.unsigned === "allow";
    const signers = raw.signers ?? [];
    if (!Array.isArray(signers)) return bad(`${where}.signers must be a list`);
    if (unsignedAllowed === signers.length > 0) bad(`${where} needs signers, or unsigned: allow (not both)`);
    const keys: PolicyKey[] = [];
    const identities: KeylessSigner[] = [];
    for (const [j, signer] of signers.entries()) {
      const at = `${where}.signers[${j}]`;
      if (!isObject(signer)) return bad(`${at} must be a mapping: key, or issuer with repository (workflow, ref) or san`);
      if (signer.key === undefined) {
        identities.push(keylessSigner(signer, at, known, bad));
        continue;
      }
      known(at, signer, ["key"]);
      if (typeof signer.key !== "string") return bad(`${at}.key must be the path of a PEM public key`);
      const keyFile = path.resolve(dir, signer.key);
      const pem = await fs.readFile(keyFile).catch(() => bad(`${at}: cannot read the key file ${keyFile}`));
      keys.push({ ...verifyingKeyFromPem(pem, keyFile), file: signer.key });
    }
    const requireAttestation = raw["require-attestation"] ?? false;
    if (typeof requireAttestation !== "boolean") bad(`${where}.require-attestation must be true or false`);
    if (requireAttestation && !identities.some((i) => i.repository))
      bad(`${where}.require-attestation needs a keyless signer with repository (the attestations are looked up in it)`);
    rules.push({
      match,
      matches: picomatch(match),
      unsignedAllowed,
      keys,
      identities,
      binding: binding as VersionBindingRule,
      requireAttestation: requireAttestation as boolean,
    });
  }
  const normalised = {
    rules: rules.map((r) => ({
      match: r.match,
      unsigned: r.unsignedAllowed,
      keys: r.keys.map((k) => k.hint),
      identities: r.identities,
      binding: r.binding,
      ...(r.requireAttestation ? { attestation: true } : {}),
    })),
    trustConfig: trustConfig?.sha256,
  };
  return {
    rules,
    ...(trustConfig ? { trustConfig } : {}),
    pin: `sha256:${createHash("sha256").update(JSON.stringify(normalised)).digest("hex")}`,
  };
}

/** A keyless signer entry: an issuer and a GitHub repository (optionally workflow, ref glob), or an issuer and an exact SAN. */
function keylessSigner(
  signer: Record<string, unknown>,
  at: string,
  known: (where: string, object: Record<string, unknown>, keys: readonly string[]) => void,
  bad: (what: string) => never,
): KeylessSigner {
  known(at, signer, KEYLESS_KEYS);
  for (const key of KEYLESS_KEYS)
    if (signer[key] !== undefined && (typeof signer[key] !== "string" || signer[key] === "")) bad(`${at}.${key} must be a string`);
  const { issuer, repository, workflow, ref, san } = signer as Record<string, string | undefined>;
  if (!issuer) return bad(`${at} needs key, or issuer (keyless: e.g. https://token.actions.githubusercontent.com)`);
  if (!repository === !san) return bad(`${at} needs repository (a GitHub workflow's owner/name), or san (an exact certificate identity), not both`);
  if (repository && !/^[^/\s]+\/[^/\s]+$/.test(repository)) bad(`${at}.repository must be owner/name`);
  if (san && (workflow || ref)) bad(`${at}: workflow and ref go with repository, not san`);
  return { issuer, ...(repository ? { repository } : {}), ...(workflow ? { workflow } : {}), ...(ref ? { ref } : {}), ...(san ? { san } : {}) };
}

/** Which check a version failed: what `verify` reports as its status. */
export type TrustFailure = "unsigned" | "bad-signature" | "untrusted-signer" | "no-attestation" | "no-trust-rule" | "signer-changed" | "policy-changed";

/** A version the trust policy refuses: one line naming it and the failed check. */
export class TrustError extends AssetError {
  readonly failure: TrustFailure;
  constructor(message: string, failure: TrustFailure) {
    super(message);
    this.failure = failure;
  }
}

/** The rule that applies to an asset: the first whose glob matches its name. */
export function ruleFor(policy: TrustPolicy, name: string): TrustRule {
  const rule = policy.rules.find((r) => r.matches(name));
  if (!rule)
    throw new TrustError(`${name}: no trust rule matches it, and the trust policy refuses such assets (add a rule, or a last match: "**")`, "no-trust-rule");
  return rule;
}

/** A version's meta as its signature is checked against it. */
export interface CheckedVersion extends SignedContent {
  name: string;
  version: string;
  digest?: string;
}

/**
 * Checks a version's signature (`signature`: the `.sig` bytes, undefined when it has none) under the policy,
 * before any byte of it is used; throws one line naming `name:version` and the failed check. `where` names the
 * signature's location for the "not signed" error; `roots` gives the Sigstore trusted root, asked only for a keyless
 * signature. Returns who signed it, or undefined when its rule allows it unsigned.
 */
export async function checkSignature(
  policy: TrustPolicy,
  version: CheckedVersion,
  signature: Buffer | undefined,
  where: string,
  roots: TrustedRootSource,
): Promise<Signer | undefined> {
  const rule = ruleFor(policy, version.name);
  if (rule.unsignedAllowed) return undefined;
  const label = `${version.name}:${version.version}`;
  if (!signature) throw new TrustError(`${label}: not signed (no ${where}), and trust rule ${JSON.stringify(rule.match)} requires a signature`, "unsigned");
  if (!version.digest) throw new TrustError(`${label}: its meta has no checksums (written by modelkit?), so no signature can cover it`, "unsigned");
  const expected: StatementExpectation = {
    content: version,
    contentName: "its meta",
    binding: { name: version.name, version: version.version, digest: version.digest },
    rule: rule.binding,
  };
  try {
    const bundle = readSignature(signature, label);
    let signer: Signer;
    if (bundle.keyHint !== undefined) {
      const key = keyThatSigned(bundle, rule.keys, label);
      signer = { id: keySignerId(key.hint), name: key.file };
    } else {
      if (rule.identities.length === 0)
        throw new TrustError(
          `${label}: its signature is keyless (a Sigstore certificate), and trust rule ${JSON.stringify(rule.match)} allows only keys`,
          "untrusted-signer",
        );
      const identity = await verifyCertificateBundle(bundle, await roots(policy), label);
      const refused = identityDifference(identity, rule.identities);
      if (refused)
        throw new TrustError(`${label}: its signature is by ${refused}, which trust rule ${JSON.stringify(rule.match)} does not allow`, "untrusted-signer");
      signer = keylessSignerOf(identity);
    }
    checkedStatement(bundle, expected, label);
    return signer;
  } catch (err) {
    if (err instanceof AssetError && !(err instanceof TrustError)) throw new TrustError(err.message, "bad-signature");
    throw err;
  }
}
