// The `trust:` policy of assetkit.yml (docs/trust.md, section 7), key signers only for now: which assets must be
// signed, and by which public keys. Once a policy exists it fails closed: an asset no rule matches is refused.
import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import picomatch from "picomatch";
import { AssetError, UsageError } from "../base/errors.ts";
import { keySignerId, verifyingKeyFromPem, type VerifyingKey } from "./keys.ts";
import { verifyKeySignature, type VersionBindingRule } from "./oms.ts";
import type { SignedContent } from "./statement.ts";
import { isObject } from "./json.ts";

export interface TrustRule {
  /** The glob over asset names, as written. */
  match: string;
  matches: (name: string) => boolean;
  /** `unsigned: allow`: the assets it matches need no signature. */
  unsignedAllowed: boolean;
  keys: PolicyKey[];
  binding: VersionBindingRule;
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
  /** Changes whenever a rule or a key does: recorded in each local copy verified under the policy. */
  pin: string;
}

const RULE_KEYS = ["match", "signers", "unsigned", "version-binding"];
/** Keys of the design that later steps implement: refused by name rather than ignored (a policy must not be weaker than it reads). */
const LATER = new Set(["trust-config", "require-attestation", "issuer", "repository", "workflow", "ref", "san"]);

/** The policy from the value of `trust:` in `file` (key paths are relative to `dir`); any mistake is a usage error. */
export async function parseTrustPolicy(value: unknown, file: string, dir: string): Promise<TrustPolicy> {
  const bad = (what: string): never => {
    throw new UsageError(`${file}: trust${what}`);
  };
  const known = (where: string, object: Record<string, unknown>, keys: readonly string[]): void => {
    for (const key of Object.keys(object)) {
      if (LATER.has(key)) bad(`${where}: ${key} (keyless signing, attestations) is not supported yet: use key signers`);
      if (!keys.includes(key)) bad(`${where}: unknown key ${JSON.stringify(key)} (known: ${keys.join(", ")})`);
    }
  };
  if (!isObject(value)) return bad(" must be a mapping with rules");
  known("", value, ["rules"]);
  if (!Array.isArray(value.rules) || value.rules.length === 0) bad(".rules must be a list of rules");
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
    for (const [j, signer] of signers.entries()) {
      if (!isObject(signer)) return bad(`${where}.signers[${j}] must be a mapping with key`);
      known(`${where}.signers[${j}]`, signer, ["key"]);
      if (typeof signer.key !== "string") return bad(`${where}.signers[${j}].key must be the path of a PEM public key`);
      const keyFile = path.resolve(dir, signer.key);
      const pem = await fs.readFile(keyFile).catch(() => bad(`${where}.signers[${j}]: cannot read the key file ${keyFile}`));
      keys.push({ ...verifyingKeyFromPem(pem, keyFile), file: signer.key });
    }
    rules.push({ match, matches: picomatch(match), unsignedAllowed, keys, binding: binding as VersionBindingRule });
  }
  const normalised = rules.map((r) => ({ match: r.match, unsigned: r.unsignedAllowed, keys: r.keys.map((k) => k.hint), binding: r.binding }));
  return { rules, pin: `sha256:${createHash("sha256").update(JSON.stringify(normalised)).digest("hex")}` };
}

/** Which check a version failed: what `verify` reports as its status. */
export type TrustFailure = "unsigned" | "bad-signature" | "no-trust-rule" | "signer-changed" | "policy-changed";

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
 * signature's location for the "not signed" error. Returns who signed it, or undefined when its rule allows it unsigned.
 */
export function checkSignature(policy: TrustPolicy, version: CheckedVersion, signature: Buffer | undefined, where: string): Signer | undefined {
  const rule = ruleFor(policy, version.name);
  if (rule.unsignedAllowed) return undefined;
  const label = `${version.name}:${version.version}`;
  if (!signature) throw new TrustError(`${label}: not signed (no ${where}), and trust rule ${JSON.stringify(rule.match)} requires a signature`, "unsigned");
  if (!version.digest) throw new TrustError(`${label}: its meta has no checksums (written by modelkit?), so no signature can cover it`, "unsigned");
  try {
    const key = verifyKeySignature(signature, rule.keys, {
      content: version,
      contentName: "its meta",
      binding: { name: version.name, version: version.version, digest: version.digest },
      rule: rule.binding,
    });
    return { id: keySignerId(key.hint), name: key.file };
  } catch (err) {
    if (err instanceof AssetError) throw new TrustError(err.message, "bad-signature");
    throw err;
  }
}
