// Who signed a version, as `show` reports it: read from its `.sig` whether or not a policy applies, and checked
// when one does. Never throws for the version's sake: a failed check is part of the report.
import { AssetError } from "../base/errors.ts";
import { readSignature } from "./oms.ts";
import { keySignerId } from "./keys.ts";
import { checkSignature, type CheckedVersion, type TrustPolicy } from "./policy.ts";
import type { TrustedRootSource } from "./keyless.ts";

export interface SignatureReport {
  /** How it is signed: with a key, keylessly (a Sigstore certificate), or not at all. */
  kind: "key" | "keyless" | "unsigned";
  /**
   * As assets.lock pins it: `key:<hint>`, or for a keyless signature `github:<owner>/<repo>/<workflow>@<ref>` (else
   * `sigstore:<san>`) once verified; null when unsigned. Without `verified`, only what the bundle claims.
   */
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

/** `checked`: the version as the policy's check needs it (its whole file list), read only when a policy applies. */
export async function signatureReport(
  policy: TrustPolicy | undefined,
  version: { name: string; version: string },
  checked: () => Promise<CheckedVersion>,
  signature: Buffer | undefined,
  where: string,
  roots: TrustedRootSource,
): Promise<SignatureReport> {
  const label = `${version.name}:${version.version}`;
  let signer: string | null = null;
  let detail: string | null = null;
  let kind: SignatureReport["kind"] = "unsigned";
  if (signature) {
    kind = "key";
    try {
      const hint = readSignature(signature, label).keyHint;
      if (hint === undefined) kind = "keyless";
      else signer = keySignerId(hint);
    } catch (err) {
      if (!(err instanceof AssetError)) throw err;
      detail = err.message;
    }
  }
  const named = policy?.rules.flatMap((r) => r.keys).find((k) => keySignerId(k.hint) === signer);
  if (!policy) return { kind, signer, name: null, verified: false, allowed: null, detail };
  try {
    const verified = await checkSignature(policy, await checked(), signature, where, roots);
    return { kind, signer: verified?.id ?? signer, name: verified?.name ?? named?.file ?? null, verified: verified !== undefined, allowed: true, detail };
  } catch (err) {
    if (!(err instanceof AssetError)) throw err;
    return { kind, signer, name: named?.file ?? null, verified: false, allowed: false, detail: err.message };
  }
}

/** One line for people: who signed the version and what the policy says of it. */
export function signatureLine(report: SignatureReport): string {
  const policy = report.allowed === null ? "not checked: no trust policy" : report.allowed ? "allowed by the trust policy" : `refused: ${report.detail}`;
  if (report.kind === "unsigned") return `signature: unsigned (${policy})`;
  const who = report.name
    ? `${report.name} (${report.signer})`
    : (report.signer ?? (report.kind === "keyless" ? "a Sigstore certificate" : "an unreadable signature"));
  return `signature: signed by ${who}${report.verified ? ", verified" : ""} (${policy})`;
}
