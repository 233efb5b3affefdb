// GitHub artifact attestations through the shipped CLI, against the GitHub API fake (its attestations endpoints) and
// the local Sigstore fake: `publish --attest` records a SLSA provenance of the version's digest; a token without
// `attestations: write` is a warning, or a failed publish when the policy requires attestations; `fetch` and
// `verify` under `require-attestation: true` page through the attestations of the digest and check them.
// docs/trust.md, section 6.
import assert from "node:assert/strict";
import { access, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { openStore } from "../../src/store/uri.ts";
import { runCli, scratch, writeTree } from "../helpers/cli.ts";
import { startGitHubApiFake, type GitHubApiFake } from "../helpers/github-api-fake.ts";
import { TEST_TUNING } from "../helpers/settings.ts";
import { DEFAULT_IDENTITY, startSigstoreFake, type SigstoreFake } from "../helpers/sigstore-fake.ts";

const ASSET = "models/m";

describe("GitHub attestations (GitHub API fake: attestations endpoints; Sigstore fake)", () => {
  let sigstore: SigstoreFake;
  let github: GitHubApiFake;
  before(async () => {
    sigstore = await startSigstoreFake();
    github = await startGitHubApiFake({
      tokens: { "write-token": { login: "github-actions[bot]" }, "read-token": { login: "github-actions[bot]", readOnly: true } },
    });
  });
  after(async () => {
    await sigstore.close();
    await github.close();
  });

  /** A scratch project; `fill` makes its content (so its digest) differ from the other tests' (the fake keeps every attestation). */
  async function project(fill: number) {
    const cwd = await scratch();
    const store = path.join(cwd, "store");
    await writeTree(cwd, { "in/weights.bin": Buffer.alloc(20_000, fill), "in/config.json": '{"b":2}' });
    await writeFile(path.join(cwd, "trust_config.json"), JSON.stringify(sigstore.trustConfig));
    /** The policy: acme/ml's train workflow signs models/**, with (or without) a required attestation. */
    const policy = (requireAttestation: boolean) =>
      writeFile(
        path.join(cwd, "assetkit.yml"),
        `trust:\n  trust-config: trust_config.json\n  rules:\n    - match: "models/**"\n      signers:\n        - issuer: ${JSON.stringify(sigstore.issuer)}\n          repository: acme/ml\n          workflow: .github/workflows/train.yml\n      require-attestation: ${requireAttestation}\n`,
      );
    await policy(false);
    const env = (token = "write-token") => ({ GITHUB_API_URL: github.url, GITHUB_REPOSITORY: DEFAULT_IDENTITY.repository, GITHUB_TOKEN: token });
    const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) => runCli([...args, "--store", store], { cwd, env: { ...env(), ...extra } });
    const publish = async (version: string, flags: string[], token = "write-token") =>
      cli(["publish", "in", ASSET, "--version", version, ...flags], { ...env(token), SIGSTORE_ID_TOKEN: await sigstore.token() });
    const seed = await openStore(store, cwd, TEST_TUNING);
    const digestOf = async (version: string) =>
      (JSON.parse((await seed.read(`${ASSET}/${version}.meta`))!.data.toString()) as { assetkit: { digest: string } }).assetkit.digest;
    const installed = async () => (await readdir(path.join(cwd, ".assetkit", "assets", ...ASSET.split("/"))).catch(() => [])).filter((f) => !f.startsWith("."));
    return { cwd, store, cli, publish, policy, seed, digestOf, installed };
  }

  it("publish --attest records a SLSA provenance of the asset digest; fetch and verify under require-attestation page through the digest's attestations to it", async () => {
    const t = await project(1);
    const r = await t.publish("1.0.0", ["--sign", "--attest"]);
    assert.equal(r.code, 0, r.stderr);
    const digest = await t.digestOf("1.0.0");
    const recorded = github.attestations.filter((a) => a.digests.includes(digest));
    assert.equal(recorded.length, 1);
    assert.equal(recorded[0]!.repo, "acme/ml");
    const bundle = recorded[0]!.bundle as { dsseEnvelope: { payload: string } };
    const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, "base64").toString()) as {
      predicateType: string;
      subject: { name: string }[];
      predicate: { runDetails: { builder: { id: string } } };
    };
    assert.equal(statement.predicateType, "https://slsa.dev/provenance/v1");
    assert.equal(statement.subject[0]!.name, `assetkit://file/${t.store}/${ASSET}@1.0.0`);
    assert.equal(statement.predicate.runDetails.builder.id, "https://github.com/acme/ml/.github/workflows/train.yml@refs/heads/main");

    // 150 other attestations listed first for the same digest: the one that passes is on the second page.
    const decoy = { dsseEnvelope: { payload: Buffer.from(JSON.stringify({ subject: [{ digest: { sha256: digest.slice(7) } }] })).toString("base64") } };
    github.attestations.unshift(...Array.from({ length: 150 }, (_, i) => ({ id: i + 1, repo: "acme/ml", login: "x", bundle: decoy, digests: [digest] })));
    await t.policy(true);
    const fetched = await t.cli(["fetch", `${ASSET}:1.0.0`]);
    assert.equal(fetched.code, 0, fetched.stderr);
    const pages = github.requests.filter((q) => q.method === "GET" && q.url.includes("/attestations/"));
    assert.ok(pages.length >= 2, `paged: ${pages.map((p) => p.url).join(", ")}`);
    assert.equal((await t.cli(["lock", `${ASSET}:1.0.0`])).code, 0);
    const verified = await t.cli(["verify", "--json"]);
    assert.equal(verified.code, 0, verified.stderr);
  });

  it("under require-attestation a version without one is refused by fetch (nothing installed) and by lock (nothing written); --offline cannot check it", async () => {
    const t = await project(2);
    assert.equal((await t.publish("1.0.0", ["--sign"])).code, 0);
    await t.policy(true);
    const r = await t.cli(["fetch", `${ASSET}:1.0.0`]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr.trim(),
      /^error: models\/m:1\.0\.0: no GitHub attestation of sha256:[0-9a-f]{64} in acme\/ml passes \(none is listed\); nothing installed$/,
    );
    assert.deepEqual(await t.installed(), []);

    // lock checks what it locks under the policy: nothing written.
    const locked = await t.cli(["lock", `${ASSET}:1.0.0`]);
    assert.equal(locked.code, 1, locked.stderr);
    assert.match(locked.stderr, /no GitHub attestation of sha256:[0-9a-f]{64} in acme\/ml passes \(none is listed\); nothing written to assets\.lock/);
    await assert.rejects(access(path.join(t.cwd, "assets.lock")));
    const offline = await t.cli(["fetch", `${ASSET}:1.0.0`, "--offline"]);
    assert.equal(offline.code, 2, offline.stderr);
    assert.match(offline.stderr, /requires a GitHub attestation, which cannot be checked offline/);
  });

  it("a token without attestations: write: a warning and the version published; under require-attestation the publish fails before its meta", async () => {
    const t = await project(3);
    const warned = await t.publish("1.0.0", ["--sign", "--attest"], "read-token");
    assert.equal(warned.code, 0, warned.stderr);
    assert.match(
      warned.stderr,
      /warning: models\/m:1\.0\.0: no attestation recorded in acme\/ml: HTTP 403: Resource not accessible by integration .*\(the job needs permissions: attestations: write and id-token: write\)/,
    );

    await t.policy(true);
    const failed = await t.publish("1.1.0", ["--sign", "--attest"], "read-token");
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(
      failed.stderr,
      /models\/m:1\.1\.0: no attestation recorded in acme\/ml: HTTP 403: .*, and trust rule "models\/\*\*" requires one; nothing published/,
    );
    assert.equal(await t.seed.read(`${ASSET}/1.1.0.meta`), undefined);
    assert.equal(await t.seed.read(`${ASSET}/1.1.0.sig`), undefined);
  });
});
