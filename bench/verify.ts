// What checking a signed version costs (issue 25: "verification of a 2,000-file version adds ≤ 50 ms"): the work a
// fetch under a trust policy adds besides its one GET of the `.sig` (that request is counted by the tests, not here):
// the OMS statement rebuilt from the meta, the bundle parsed, its statement compared with the meta and the ECDSA
// signature checked with the policy's key. Timed in this process with assetkit's own modules (src/trust), round
// after round; the first round, before the JIT warmed up, is reported apart (a fresh CLI process pays about that).
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { signingKeyFromPem } from "../src/trust/keys.ts";
import { signVersion } from "../src/trust/oms.ts";
import { checkSignature, parseTrustPolicy } from "../src/trust/policy.ts";

export interface VerifyCost {
  files: number;
  /** Bytes of the `.sig` the fetch reads. */
  signatureBytes: number;
  rounds: number;
  /** Milliseconds: the first round, then the median and spread of all of them. */
  firstMs: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
}

/** The bound on what verification adds to a fetch of a 2,000-file version. */
export const VERIFY_TARGET_MS = 50;

export async function measureVerify(options: { files: number; rounds: number; scratch: string }): Promise<VerifyCost> {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  await writeFile(path.join(options.scratch, "bench-release.pub"), publicKey.export({ type: "spki", format: "pem" }));
  const policy = await parseTrustPolicy({ rules: [{ match: "**", signers: [{ key: "bench-release.pub" }] }] }, "bench", options.scratch);
  // A meta as publish writes it: nested paths, each file's sha256.
  const files = Array.from({ length: options.files }, (_, i) => ({
    path: `shard-${String(i % 20).padStart(2, "0")}/file-${String(i).padStart(5, "0")}.bin`,
    sha256: createHash("sha256").update(randomBytes(16)).digest("hex"),
  }));
  const version = { name: "bench/signed", version: "1.0.0", digest: `sha256:${randomBytes(32).toString("hex")}`, isDirectory: true, files };
  const signature = signVersion(version, version, signingKeyFromPem(privateKey.export({ type: "pkcs8", format: "pem" }), "bench key"));
  const times: number[] = [];
  for (let round = 0; round < options.rounds; round++) {
    const started = performance.now();
    // A key signature never asks for the Sigstore trusted root.
    await checkSignature(policy, version, signature, "bench", () => Promise.reject(new Error("no trusted root in this bench")));
    times.push(performance.now() - started);
  }
  const sorted = [...times].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return {
    files: options.files,
    signatureBytes: signature.length,
    rounds: options.rounds,
    firstMs: times[0]!,
    medianMs: median,
    minMs: sorted[0]!,
    maxMs: sorted.at(-1)!,
  };
}
