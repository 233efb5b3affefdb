// Keyless signatures through the shipped CLI against the local Sigstore fake (test/helpers/sigstore-fake.ts: OIDC
// issuer, Fulcio, Rekor, TSA on 127.0.0.1): `publish --sign` with a workflow's OIDC token writes a certificate bundle
// as `<version>.sig`; `fetch`, `verify` and the storage initializer check it under a policy of GitHub identities
// (repository, workflow, ref, issuer), offline from the trust-config file, and refuse other identities, tampered
// files or metas, and the signature of another version. docs/trust.md, step 4 of the plan.
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { SignJWT } from "jose";
import { assetDigest, type AssetMetaDocument } from "../../src/registry/manifest.ts";
import { openStore } from "../../src/store/uri.ts";
import { runAction } from "../helpers/action.ts";
import { runCli, scratch, writeTree } from "../helpers/cli.ts";
import { TEST_TUNING } from "../helpers/settings.ts";
import { DEFAULT_IDENTITY, startSigstoreFake, type SigstoreFake, type WorkflowIdentity } from "../helpers/sigstore-fake.ts";

const ASSET = "models/m";
const INITIALIZER = path.resolve("dist/storage-initializer.js");

/** A policy allowing `signer` (keys of a keyless signer entry) for models/**, with the fake's trust config. */
function policyYaml(signer: Record<string, string>): string {
  const entries = Object.entries(signer)
    .map(([k, v], i) => `${i === 0 ? "        - " : "          "}${k}: ${JSON.stringify(v)}\n`)
    .join("");
  return `trust:\n  trust-config: trust_config.json\n  rules:\n    - match: "models/**"\n      signers:\n${entries}    - match: "**"\n      unsigned: allow\n`;
}

describe("keyless signatures (Sigstore fake)", () => {
  let fake: SigstoreFake;
  before(async () => {
    fake = await startSigstoreFake();
  });
  after(async () => {
    await fake.close();
  });

  async function project() {
    const cwd = await scratch();
    const store = path.join(cwd, "store");
    await writeTree(cwd, { "in/weights.bin": Buffer.alloc(50_000, 7), "in/config.json": '{"a":1}' });
    await writeFile(path.join(cwd, "trust_config.json"), JSON.stringify(fake.trustConfig));
    const allowed = { issuer: fake.issuer, repository: DEFAULT_IDENTITY.repository, workflow: DEFAULT_IDENTITY.workflow, ref: "refs/heads/*" };
    const policy = (signer: Record<string, string> = allowed) => writeFile(path.join(cwd, "assetkit.yml"), policyYaml(signer));
    await policy();
    const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli([...args, "--store", store], { cwd, env });
    /** Publishes `version` signed with a token of `identity` (SIGSTORE_ID_TOKEN). */
    const publishSigned = async (version: string, identity: WorkflowIdentity = DEFAULT_IDENTITY) => {
      const r = await cli(["publish", "in", ASSET, "--version", version, "--sign"], { SIGSTORE_ID_TOKEN: await fake.token(identity) });
      assert.equal(r.code, 0, r.stderr);
      return r;
    };
    const installed = async () => (await readdir(path.join(cwd, ".assetkit", "assets", ...ASSET.split("/"))).catch(() => [])).filter((f) => !f.startsWith("."));
    /** A fetch that must exit 1 with one error line matching `line`, installing nothing. */
    const refused = async (spec: string, line: RegExp, ...flags: string[]) => {
      const r = await cli(["fetch", spec, ...flags]);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr.trim(), line);
      assert.deepEqual(await installed(), []);
    };
    const seed = await openStore(store, cwd, TEST_TUNING);
    return { cwd, store, cli, policy, allowed, publishSigned, installed, refused, seed };
  }

  it("publish --sign writes a certificate bundle; fetch --offline verifies it from the trust-config with every Sigstore service stopped", async () => {
    const t = await project();
    await t.publishSigned("1.0.0");
    const bundle = JSON.parse((await t.seed.read(`${ASSET}/1.0.0.sig`))!.data.toString()) as { verificationMaterial: Record<string, unknown[]> };
    assert.ok(bundle.verificationMaterial.certificate, "a Fulcio certificate");
    assert.equal(bundle.verificationMaterial.tlogEntries!.length, 1, "a Rekor entry");
    assert.equal((bundle.verificationMaterial.timestampVerificationData as unknown as { rfc3161Timestamps: unknown[] }).rfc3161Timestamps.length, 1);
    assert.deepEqual(
      fake.requests.filter((r) => r.method === "POST").map((r) => r.path),
      ["/api/v2/signingCert", "/api/v1/log/entries", "/api/v1/timestamp"],
    );

    // Another fake on another port stands for "no Sigstore at all": the first one is stopped for the offline fetch.
    await fake.close();
    try {
      const r = await t.cli(["fetch", `${ASSET}:1.0.0`, "--offline", "--json"]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await t.installed(), ["1.0.0"]);
      await t.cli(["lock", `${ASSET}:1.0.0`]);
      const verified = await t.cli(["verify", "--json"]);
      assert.equal(verified.code, 0, verified.stderr);
    } finally {
      fake = await startSigstoreFake();
    }
  });

  it("refuses a signer the rule does not name: other repository, workflow, ref or issuer; a key-only rule", async () => {
    const t = await project();
    await t.publishSigned("1.0.0");
    const san = "https://github\\.com/acme/ml/\\.github/workflows/train\\.yml@refs/heads/main";
    const refusal = new RegExp(
      `^error: models/m:1\\.0\\.0: its signature is by ${san} \\(issuer http://127\\.0\\.0\\.1:\\d+, ref refs/heads/main\\), which trust rule "models/\\*\\*" does not allow; nothing installed$`,
    );
    for (const change of [
      { repository: "evil/ml" },
      { workflow: ".github/workflows/other.yml" },
      { workflow: "acme/shared/.github/workflows/train.yml" },
      { ref: "refs/tags/*" },
      { issuer: "https://token.actions.githubusercontent.com" },
    ]) {
      await t.policy({ ...t.allowed, ...change });
      await t.refused(`${ASSET}:1.0.0`, refusal);
    }
    const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    await writeFile(path.join(t.cwd, "release.pub"), publicKey.export({ type: "spki", format: "pem" }));
    await t.policy({ key: "release.pub" });
    await t.refused(
      `${ASSET}:1.0.0`,
      /its signature is keyless \(a Sigstore certificate\), and trust rule "models\/\*\*" allows only keys; nothing installed$/,
    );

    // A workflow of another repository signed it: refused under the policy that accepts acme/ml's.
    await t.policy();
    await t.publishSigned("1.1.0", { ...DEFAULT_IDENTITY, repository: "evil/ml" });
    await t.refused(
      `${ASSET}:1.1.0`,
      /models\/m:1\.1\.0: its signature is by https:\/\/github\.com\/evil\/ml\/\.github\/workflows\/train\.yml@refs\/heads\/main/,
    );
    // The allowed identity by exact SAN.
    await t.policy({ issuer: fake.issuer, san: `https://github.com/acme/ml/.github/workflows/train.yml@refs/heads/main` });
    assert.equal((await t.cli(["fetch", `${ASSET}:1.0.0`])).code, 0);
  });

  it("--offline without a trust-config checks against the public-good root assetkit ships (no request): the fake's certificate does not chain to it", async () => {
    const t = await project();
    await t.publishSigned("1.0.0");
    const yaml = policyYaml(t.allowed).replace("  trust-config: trust_config.json\n", "");
    await writeFile(path.join(t.cwd, "assetkit.yml"), yaml);
    await t.refused(
      `${ASSET}:1.0.0`,
      /^error: models\/m:1\.0\.0: its signature does not verify against the Sigstore trusted root \(.+\); nothing installed$/,
      "--offline",
    );
  });

  it("refuses a tampered file, a tampered meta, a tampered bundle and the signature of another version", async () => {
    const t = await project();
    await t.publishSigned("1.0.0");
    await t.publishSigned("1.1.0");
    await t.publishSigned("1.2.0");

    // The signature of 1.0.0 over 1.1.0 (same files).
    await t.seed.write(`${ASSET}/1.1.0.sig`, (await t.seed.read(`${ASSET}/1.0.0.sig`))!.data);
    await t.refused(`${ASSET}:1.1.0`, /^error: models\/m:1\.1\.0: its signature is for models\/m:1\.0\.0; nothing installed$/);

    // A meta rewritten consistently (another sha256, the digest to match).
    const metaKey = `${ASSET}/1.2.0.meta`;
    const doc = JSON.parse((await t.seed.read(metaKey))!.data.toString()) as AssetMetaDocument;
    doc.assetkit!.files.find((f) => f.path === "config.json")!.sha256 = "0".repeat(64);
    doc.assetkit!.digest = assetDigest(doc.assetkit!.files, doc.assetkit!.part_size);
    await t.seed.write(metaKey, Buffer.from(JSON.stringify(doc)));
    await t.refused(
      `${ASSET}:1.2.0`,
      /^error: models\/m:1\.2\.0: its signature is for asset digest sha256:[0-9a-f]{64}, not sha256:[0-9a-f]{64}; nothing installed$/,
    );

    // The statement inside the bundle changed to match that meta: the transparency log and the signature disagree.
    const sigKey = `${ASSET}/1.2.0.sig`;
    const bundle = JSON.parse((await t.seed.read(sigKey))!.data.toString()) as { dsseEnvelope: { payload: string } };
    const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, "base64").toString()) as { predicate: { assetkit: { digest: string } } };
    statement.predicate.assetkit.digest = doc.assetkit!.digest;
    bundle.dsseEnvelope.payload = Buffer.from(JSON.stringify(statement)).toString("base64");
    await t.seed.write(sigKey, Buffer.from(JSON.stringify(bundle)));
    await t.refused(`${ASSET}:1.2.0`, /^error: models\/m:1\.2\.0: its signature does not verify against the Sigstore trusted root \(.+\); nothing installed$/);

    // A data object replaced after signing.
    await t.seed.write(`${ASSET}/1.0.0/config.json`, Buffer.from('{"a":2}'));
    const r = await t.cli(["fetch", `${ASSET}:1.0.0`]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /config\.json/);
    assert.deepEqual(await t.installed(), []);
  });

  it("a token Fulcio cannot verify fails the publish before its meta or .sig; outside Actions --sign without a token is a usage error", async () => {
    const t = await project();
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const forged = await new SignJWT({
      iss: fake.issuer,
      aud: "sigstore",
      sub: "repo:acme/ml:ref:refs/heads/main",
      job_workflow_ref: "acme/ml/.github/workflows/train.yml@refs/heads/main",
    })
      .setProtectedHeader({ alg: "ES256", kid: "fake-1" })
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(privateKey);
    const r = await t.cli(["publish", "in", ASSET, "--version", "1.0.0", "--sign"], { SIGSTORE_ID_TOKEN: forged });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error: models\/m:1\.0\.0 cannot be signed with Sigstore \(trust_config\.json\): .*401/m);
    assert.ok(!r.stderr.includes(forged.split(".")[1]!), "the token is not printed");
    const keys: string[] = [];
    for await (const o of t.seed.list("")) keys.push(o.key);
    assert.ok(!keys.some((k) => k.endsWith(".meta") || k.endsWith(".sig")), keys.join(", "));

    const noToken = await t.cli(["publish", "in", ASSET, "--version", "1.0.0", "--sign"]);
    assert.equal(noToken.code, 2, noToken.stderr);
    assert.match(noToken.stderr, /--sign needs an OIDC identity token/);
  });

  it("the Action with sign: true takes the job's OIDC token; without id-token: write the publish fails naming the permission", async () => {
    const t = await project();
    fake.identity = { ...DEFAULT_IDENTITY, ref: "refs/heads/release" };
    try {
      const r = await runAction(
        t.cwd,
        { command: "publish", path: "in", name: ASSET, version: "1.0.0", sign: "true", store: t.store },
        { GITHUB_ACTIONS: "true", ACTIONS_ID_TOKEN_REQUEST_URL: fake.tokenRequestUrl, ACTIONS_ID_TOKEN_REQUEST_TOKEN: fake.tokenRequestToken },
      );
      assert.equal(r.code, 0, r.stdout);
    } finally {
      fake.identity = DEFAULT_IDENTITY;
    }
    const fetched = await runAction(t.cwd, { command: "fetch", specs: `${ASSET}:1.0.0`, offline: "true", cache: "false", store: t.store });
    assert.equal(fetched.code, 0, fetched.stdout);
    assert.deepEqual(await t.installed(), ["1.0.0"]);

    const denied = await t.cli(["publish", "in", ASSET, "--version", "1.1.0", "--sign"], { GITHUB_ACTIONS: "true" });
    assert.equal(denied.code, 1, denied.stderr);
    assert.match(denied.stderr, /^error: keyless signing needs the job's OIDC token: give the job permissions: id-token: write/);
  });

  it("the storage initializer under a keyless policy writes a signed version's files, and nothing of an unsigned one", async () => {
    const t = await project();
    await t.publishSigned("1.0.0");
    assert.equal((await t.cli(["publish", "in", ASSET, "--version", "1.1.0"])).code, 0);
    const source = (version: string) => `assetkit://file/${t.store}#${ASSET}:${version}`;
    const initialize = (version: string, dest: string) =>
      runCli([source(version), dest], { cwd: path.dirname(t.cwd), cli: INITIALIZER, env: { ASSETKIT_TRUST_POLICY: path.join(t.cwd, "assetkit.yml") } });

    const unsigned = path.join(t.cwd, "model-unsigned");
    const refusedRun = await initialize("1.1.0", unsigned);
    assert.notEqual(refusedRun.code, 0, refusedRun.stderr);
    assert.match(refusedRun.stderr, /models\/m:1\.1\.0: not signed/);
    assert.deepEqual(await readdir(unsigned).catch(() => []), []);

    const signed = path.join(t.cwd, "model-signed");
    const ran = await initialize("1.0.0", signed);
    assert.equal(ran.code, 0, ran.stderr);
    assert.deepEqual((await readdir(signed)).sort(), ["config.json", "weights.bin"]);
  });
});
