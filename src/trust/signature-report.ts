// Who signed a version, as `show` reports it: read from its `.sig` whether or not a policy applies, and checked
// when one does. Never throws for the version's sake: a failed check is part of the report.
import { AssetError } from "../base/errors.ts";
import { readSignature } from "./oms.ts";
import { keySignerId } from "./keys.ts";
import { checkSignature, type CheckedVersion, type TrustPolicy } from "./policy.ts";

export interface SignatureReport {
  /** How it is signed: with a key, or not at all. */
  kind: "key" | "unsigned";
  /** `key:<hint>`, as assets.lock pins it; null when unsigned. Without `verified`, only what the bundle claims. */
  signer: string | null;
  /** How the policy in force names the signer (its key file); null when it names no such key. */
  name: string | null;
  /** The signature verified under the policy in force. */
  verified: boolean;
  /** Whether the policy in force accepts the version (signed by an allowed key, or allowed unsigned); null without a policy. */
  allowed: boolean | null;
  /** Why the policy refuses it, or why the signature cannot be read. */
  detail: string | null;
}

export function signatureReport(policy: TrustPolicy | undefined, version: CheckedVersion, signature: Buffer | undefined, where: string): SignatureReport {
  const label = `${version.name}:${version.version}`;
  let signer: string | null = null;
  let detail: string | null = null;
  if (signature) {
    try {
      const hint = readSignature(signature, label).keyHint;
      signer = hint === undefined ? null : keySignerId(hint);
    } catch (err) {
      if (!(err instanceof AssetError)) throw err;
      detail = err.message;
    }
  }
  const kind = signature ? "key" : "unsigned";
  const named = policy?.rules.flatMap((r) => r.keys).find((k) => keySignerId(k.hint) === signer);
  if (!policy) return { kind, signer, name: null, verified: false, allowed: null, detail };
  try {
    const verified = checkSignature(policy, version, signature, where);
    return { kind, signer, name: verified?.name ?? named?.file ?? null, verified: verified !== undefined, allowed: true, detail };
  } catch (err) {
    if (!(err instanceof AssetError)) throw err;
    return { kind, signer, name: named?.file ?? null, verified: false, allowed: false, detail: err.message };
  }
}

/** One line for people: who signed the version and what the policy says of it. */
export function signatureLine(report: SignatureReport): string {
  const policy = report.allowed === null ? "not checked: no trust policy" : report.allowed ? "allowed by the trust policy" : `refused: ${report.detail}`;
  if (report.kind === "unsigned") return `signature: unsigned (${policy})`;
  const who = report.name ? `${report.name} (${report.signer})` : (report.signer ?? "an unreadable signature");
  return `signature: signed by ${who}${report.verified ? ", verified" : ""} (${policy})`;
}
