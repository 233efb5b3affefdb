// The `trust:` policy of assetkit.yml: what it accepts (key signers, unsigned: allow, version-binding), what it
// refuses as a usage error (exit 2 through the CLI), and which rule applies to an asset (the first match).
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";
import { UsageError } from "../../src/base/errors.ts";
import { parseTrustPolicy, ruleFor, TrustError } from "../../src/trust/policy.ts";
import { runCli, scratch } from "../helpers/cli.ts";

async function keys() {
  const dir = await scratch();
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" });
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "pem" });
  await writeFile(path.join(dir, "ec.pub"), ec);
  await writeFile(path.join(dir, "rsa.pub"), rsa);
  return dir;
}

describe("trust policy", () => {
  it("takes the first rule whose glob matches; an asset no rule matches is refused", async () => {
    const dir = await keys();
    const policy = await parseTrustPolicy(
      {
        rules: [
          { match: "models/public/**", unsigned: "allow" },
          { match: "models/**", signers: [{ key: "ec.pub" }], "version-binding": "content" },
        ],
      },
      "assetkit.yml",
      dir,
    );
    assert.equal(ruleFor(policy, "models/public/m").unsignedAllowed, true);
    const signed = ruleFor(policy, "models/m");
    assert.equal(signed.binding, "content");
    assert.equal(signed.keys.length, 1);
    assert.throws(
      () => ruleFor(policy, "datasets/d"),
      (err: unknown) => err instanceof TrustError && err.failure === "no-trust-rule",
    );
  });

  it("refuses, naming the place: unknown keys, incomplete keyless signers, an unreadable trust-config, unreadable or non-EC keys, a rule with both or neither", async () => {
    const dir = await keys();
    const cases: [unknown, RegExp][] = [
      [{ rules: [{ match: "**", signers: [{ key: "ec.pub" }], extra: 1 }] }, /trust\.rules\[0\]: unknown key "extra"/],
      [
        { rules: [{ match: "**", signers: [{ issuer: "https://token.actions.githubusercontent.com" }] }] },
        /signers\[0\] needs repository \(a GitHub workflow's owner\/name\), or san/,
      ],
      [{ rules: [{ match: "**", signers: [{ repository: "acme/ml" }] }] }, /signers\[0\] needs key, or issuer/],
      [{ rules: [{ match: "**", signers: [{ issuer: "https://i", repository: "acme" }] }] }, /repository must be owner\/name/],
      [{ rules: [{ match: "**", signers: [{ issuer: "https://i", san: "x", ref: "refs/*" }] }] }, /workflow and ref go with repository, not san/],
      [{ "trust-config": "x.json", rules: [{ match: "**", unsigned: "allow" }] }, /trust\.trust-config: .*x\.json cannot be read/],
      [{ rules: [{ match: "**", signers: [{ key: "ec.pub" }], "require-attestation": true }] }, /require-attestation needs a keyless signer with repository/],
      [{ rules: [{ match: "**", signers: [{ key: "missing.pub" }] }] }, /cannot read the key file .*missing\.pub/],
      [{ rules: [{ match: "**", signers: [{ key: "rsa.pub" }] }] }, /rsa keys are not supported/],
      [{ rules: [{ match: "**", signers: [{ key: "ec.pub" }], unsigned: "allow" }] }, /needs signers, or unsigned: allow \(not both\)/],
      [{ rules: [{ match: "**" }] }, /needs signers, or unsigned: allow/],
      [{ rules: [] }, /trust\.rules must be a list of rules/],
    ];
    for (const [value, message] of cases) {
      await assert.rejects(parseTrustPolicy(value, "assetkit.yml", dir), (err: unknown) => err instanceof UsageError && message.test(err.message));
    }
  });

  it("a bad policy in assetkit.yml is a usage error (exit 2) before any store request", async () => {
    const cwd = await scratch();
    await writeFile(path.join(cwd, "assetkit.yml"), 'trust:\n  rules:\n    - match: "**"\n      signers:\n        - key: nowhere.pub\n');
    const r = await runCli(["fetch", "m:1.0.0", "--store", path.join(cwd, "store")], { cwd });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: .*assetkit\.yml: trust\.rules\[0\]\.signers\[0\]: cannot read the key file .*nowhere\.pub\n$/);
  });
});
