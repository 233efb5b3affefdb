// End to end under a real runner: nektos/act in host mode (no Docker; installed by scripts/install-test-servers.sh)
// runs the workflows of this folder, which use the Action as `uses: ./` (dist/, built by scripts/test.ts), on the
// project's Node 24, with act's own cache server. The store is MinIO (from scripts/test.ts) behind a counting proxy
// (scripts/request-counter.ts) that runs in this process: store requests are measured, not assumed. So act is
// always spawned asynchronously, or the proxy could not answer.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { startRequestCounter, type RequestCounter } from "../../scripts/request-counter.ts";
import { s3TestEnv } from "../conformance/factories/s3.ts";
import { runCli, writeTree } from "../helpers/cli.ts";
import { startGitHubApiFake } from "../helpers/github-api-fake.ts";
import { startSigstoreFake } from "../helpers/sigstore-fake.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const ACT_TIMEOUT_MS = 180_000;

interface ActRun {
  code: number;
  log: string;
  /** key=value lines the workflow's steps appended to $E2E_REPORT. */
  report: Record<string, string>;
  seconds: number;
}

/** act, as scripts/install-test-servers.sh installs it: $(go env GOBIN) or $(go env GOPATH)/bin. */
async function actBinary(): Promise<string> {
  const { stdout } = await promisify(execFile)("go", ["env", "GOBIN", "GOPATH"], { encoding: "utf8" });
  const [gobin = "", gopath = ""] = stdout.split("\n");
  const act = path.join(gobin || path.join(gopath.split(path.delimiter)[0]!, "bin"), "act");
  await access(act).catch(() => {
    throw new Error(`${act} is missing: run 'bash scripts/install-test-servers.sh'`);
  });
  return act;
}

describe("end to end: the Action under act (host mode), act's cache server, MinIO behind a request counter", () => {
  let act: string;
  let scratch: string;
  let counter: RequestCounter;
  let store: string;
  const s3 = s3TestEnv();

  before(async () => {
    const minio = process.env.ASSETKIT_TEST_S3_ENDPOINT;
    assert.ok(minio, "ASSETKIT_TEST_S3_ENDPOINT is not set: run this file through scripts/test.ts, which starts MinIO");
    act = await actBinary();
    scratch = await mkdtemp(path.join(tmpdir(), "assetkit-e2e-"));
    counter = await startRequestCounter(minio);
    store = `s3://${process.env.ASSETKIT_TEST_S3_BUCKET}/e2e-${path.basename(scratch)}?endpoint=${counter.url}`;
  });

  after(async () => {
    await counter?.stop();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  /**
   * Runs one workflow file with act in host mode. Every run of a test shares one cache-server folder (what a
   * repository's cache is across runs); act's config, caches and host workspaces live in the scratch folder
   * (HOME too, so no ~/.actrc of the machine applies); the environment is only PATH, with Node 24 first, and
   * those folders, so nothing of a surrounding CI runner (ACTIONS_CACHE_URL, GITHUB_*) leaks in.
   */
  async function runAct(
    workflow: string,
    options: { event?: string; eventFile?: string; vars?: Record<string, string>; secrets?: Record<string, string>; env?: Record<string, string> } = {},
  ): Promise<ActRun> {
    const run = await mkdtemp(path.join(scratch, "run-"));
    const report = path.join(run, "report");
    const home = path.join(scratch, "home");
    await mkdir(home, { recursive: true });
    const flags = (flag: string, values: Record<string, string>): string[] => Object.entries(values).flatMap(([k, v]) => [flag, `${k}=${v}`]);
    const args = [
      options.event ?? "workflow_dispatch",
      "-W",
      path.join(ROOT, "test/e2e", workflow),
      "-C",
      ROOT,
      "-P",
      "ubuntu-latest=-self-hosted",
      "--cache-server-addr",
      "127.0.0.1",
      "--cache-server-path",
      path.join(scratch, "act-cache-server"),
      "--action-cache-path",
      path.join(scratch, "act"),
      ...(options.eventFile ? ["-e", options.eventFile] : []),
      ...flags("--var", { ASSET_STORE: store, ...options.vars }),
      ...flags("--secret", { AWS_ACCESS_KEY_ID: s3.AWS_ACCESS_KEY_ID!, AWS_SECRET_ACCESS_KEY: s3.AWS_SECRET_ACCESS_KEY!, ...options.secrets }),
      ...flags("--env", { E2E_REPORT: report, ...options.env }),
    ];
    const env = {
      PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH}`,
      HOME: home,
      XDG_CONFIG_HOME: path.join(home, ".config"),
      XDG_CACHE_HOME: path.join(home, ".cache"),
    };
    const t0 = Date.now();
    const { code, log } = await new Promise<{ code: number; log: string }>((resolve) => {
      const child = spawn(act, args, { cwd: ROOT, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d) => (out += d));
      child.stderr.on("data", (d) => (out += d));
      const timer = setTimeout(() => process.kill(-child.pid!, "SIGKILL"), ACT_TIMEOUT_MS);
      child.on("close", (exit) => {
        clearTimeout(timer);
        resolve({ code: exit ?? 1, log: out });
      });
    });
    const text = await readFile(report, "utf8").catch(() => "");
    const entries = text
      .split("\n")
      .filter(Boolean)
      .map((line) => line.split(/=(.*)/s).slice(0, 2) as [string, string]);
    return { code, log, report: Object.fromEntries(entries), seconds: (Date.now() - t0) / 1000 };
  }

  it("(a) a training job publishes the next 1.x; a later step reads steps.publish.outputs.version", async () => {
    const r = await runAct("publish.yml");
    assert.equal(r.code, 0, r.log);
    assert.equal(r.report.version, "1.0.0", r.log);
    const shown = await runCli(["--store", store, "--json", "show", `models/e2e-sentiment:${r.report.version}`], { cwd: scratch, env: s3 });
    assert.equal(shown.code, 0, shown.stderr);
    const meta = JSON.parse(shown.stdout);
    assert.equal(meta.assetkit.digest, r.report.digest);
    assert.deepEqual(meta.contents, ["config.json", "weights.bin"]);
    assert.deepEqual(meta.assetkit.metadata, { dataset: "e2e" });
    process.stderr.write(`e2e (a) publish: act run ${r.seconds.toFixed(1)} s\n`);
  });

  it("(b) a fetch job run twice: the second run restores from act's cache, with zero requests to the store", async () => {
    const model = await writeTree(path.join(scratch, "model"), { "weights.bin": "e2e weights", "config.json": "{}" });
    const lockfile = path.join(scratch, "assets.lock");
    for (const args of [
      ["publish", model, "models/e2e-fetched"],
      ["--lockfile", lockfile, "lock", "models/e2e-fetched:1"],
    ]) {
      const r = await runCli(["--store", store, ...args], { cwd: scratch, env: s3 });
      assert.equal(r.code, 0, r.stderr);
    }

    counter.reset();
    const cold = await runAct("fetch.yml", { vars: { LOCKFILE: lockfile } });
    assert.equal(cold.code, 0, cold.log);
    assert.equal(cold.report["cache-hit"], "false", cold.log);
    const coldReads = counter.objectReads();
    assert.ok(coldReads >= 3, `the first run downloads from the store (meta and two files), but read ${coldReads} objects`);
    assert.match(cold.log, /cache: saved models\/e2e-fetched:1\.0\.0/);

    counter.reset();
    const warm = await runAct("fetch.yml", { vars: { LOCKFILE: lockfile } });
    assert.equal(warm.code, 0, warm.log);
    assert.equal(warm.report["cache-hit"], "true", warm.log);
    assert.notEqual(warm.report.path, cold.report.path, "each run has its own assets dir (under its runner.temp)");
    assert.deepEqual(counter.requests(), [], "the second run made no request at all to the store");
    assert.match(warm.log, /restored models\/e2e-fetched:1\.0\.0 from the cache/);
    process.stderr.write(
      `e2e (b) fetch: cold run ${cold.seconds.toFixed(1)} s (${coldReads} object reads), warm run ${warm.seconds.toFixed(1)} s (0 requests)\n`,
    );
  });

  it("(d) cache budget: a PR run with cache-save-branches: main saves nothing; a restore-only run restores and never saves; cache-max-size holds", async () => {
    const lockfile = path.join(scratch, "budget.lock");
    for (const content of ["budget v1", "budget v2"]) {
      const model = await writeTree(path.join(scratch, `budget-${content.slice(-2)}`), { "weights.bin": content });
      const r = await runCli(["--store", store, "publish", model, "models/e2e-budget"], { cwd: scratch, env: s3 });
      assert.equal(r.code, 0, r.stderr);
    }
    const lock = await runCli(["--store", store, "--lockfile", lockfile, "lock", "models/e2e-budget:1.0.0", "models/e2e-budget:1.1.0"], {
      cwd: scratch,
      env: s3,
    });
    assert.equal(lock.code, 0, lock.stderr);
    const event = path.join(scratch, "budget-pull_request.json");
    await writeFile(
      event,
      JSON.stringify({
        action: "synchronize",
        number: 9,
        pull_request: { number: 9, base: { ref: "main", sha: "0".repeat(40) }, head: { ref: "feature" } },
        repository: { full_name: "acme/ml" },
      }),
    );
    const run = (vars: Record<string, string>, pr: boolean) =>
      runAct("cache-budget.yml", {
        ...(pr ? { event: "pull_request", eventFile: event } : {}),
        vars: { LOCKFILE: lockfile, SAVE_BRANCHES: "", MAX_SIZE: "", ...vars },
      });

    for (const attempt of [1, 2]) {
      const onPr = await run({ SPEC: "models/e2e-budget:1.0.0", CACHE: "true", SAVE_BRANCHES: "main" }, true);
      assert.equal(onPr.code, 0, onPr.log);
      assert.equal(onPr.report["cache-hit"], "false", `PR run ${attempt}: nothing was saved before, so nothing restores`);
      assert.notEqual(onPr.report["ref-name"], "main");
      assert.match(onPr.log, /cache: not saving models\/e2e-budget:1\.0\.0: branch .* is not in cache-save-branches \(main\)/);
      assert.doesNotMatch(onPr.log, /cache: saved/);
    }

    const saving = await run({ SPEC: "models/e2e-budget:1.0.0", CACHE: "true" }, false);
    assert.equal(saving.code, 0, saving.log);
    assert.match(saving.log, /cache: saved models\/e2e-budget:1\.0\.0/);

    counter.reset();
    const restoreOnly = await run({ SPEC: "models/e2e-budget:1.0.0", CACHE: "restore-only" }, true);
    assert.equal(restoreOnly.code, 0, restoreOnly.log);
    assert.equal(restoreOnly.report["cache-hit"], "true", restoreOnly.log);
    assert.deepEqual(counter.requests(), [], "restored from the cache: no store request");

    const notCached = await run({ SPEC: "models/e2e-budget:1.1.0", CACHE: "restore-only" }, false);
    assert.equal(notCached.code, 0, notCached.log);
    assert.equal(notCached.report["cache-hit"], "false");
    assert.match(notCached.log, /cache: not saving models\/e2e-budget:1\.1\.0: cache is restore-only/);
    assert.doesNotMatch(notCached.log, /cache: saved/);

    const tooLarge = await run({ SPEC: "models/e2e-budget:1.1.0", CACHE: "true", MAX_SIZE: "4B" }, false);
    assert.equal(tooLarge.code, 0, tooLarge.log);
    assert.match(tooLarge.log, /cache: not saving models\/e2e-budget:1\.1\.0: 9 bytes is above cache-max-size \(4 bytes\)/);
  });

  it("(c) a PR job posts the lockfile's changes as one sticky comment to the GitHub API (a local fake)", async () => {
    const locks = { base: path.join(scratch, "base.lock"), pr: path.join(scratch, "pr.lock") };
    for (const [weights, lockfile] of [
      ["v1", locks.base],
      ["v2", locks.pr],
    ] as const) {
      const model = await writeTree(path.join(scratch, `pr-model-${weights}`), { "weights.bin": weights });
      for (const args of [
        ["publish", model, "models/e2e-pr:1"],
        ["--lockfile", lockfile, "lock", "models/e2e-pr:1"],
      ]) {
        const r = await runCli(["--store", store, ...args], { cwd: scratch, env: s3 });
        assert.equal(r.code, 0, r.stderr);
      }
    }
    const baseSha = "5f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4";
    const github = await startGitHubApiFake({
      tokens: { "e2e-token": { login: "github-actions[bot]" } },
      files: { "acme/ml": { [baseSha]: { "assets.lock": await readFile(locks.base, "utf8") } } },
    });
    try {
      const event = path.join(scratch, "pull_request.json");
      await writeFile(
        event,
        JSON.stringify({
          action: "synchronize",
          number: 7,
          pull_request: { number: 7, base: { ref: "main", sha: baseSha }, head: { ref: "retrain" } },
          repository: { full_name: "acme/ml" },
        }),
      );
      const run = () =>
        runAct("pr-comment.yml", {
          event: "pull_request",
          eventFile: event,
          vars: { PR_LOCKFILE: locks.pr },
          secrets: { GITHUB_TOKEN: "e2e-token" },
          env: { GITHUB_API_URL: github.url, GITHUB_REPOSITORY: "acme/ml" },
        });
      const first = await run();
      assert.equal(first.code, 0, first.log);
      const [comment, ...more] = github.commentsOn("acme/ml", 7);
      assert.equal(more.length, 0);
      assert.equal(comment!.login, "github-actions[bot]");
      assert.match(comment!.body, /against assets\.lock at the base commit `5f1e2d3`/, "the base branch's lockfile was read through the API");
      assert.match(comment!.body, /\| models\/e2e-pr:1 \| 1\.1\.0 \| 1\.0\.0 \| \*\*upgraded\*\* \|/, comment!.body);
      assert.equal(first.report["comment-url"], `https://github.com/acme/ml/pull/7#issuecomment-${comment!.id}`);

      const second = await run();
      assert.equal(second.code, 0, second.log);
      assert.equal(github.commentsOn("acme/ml", 7).length, 1, "the second run edits its comment instead of adding one");
      assert.equal(second.report["comment-url"], first.report["comment-url"]);
      process.stderr.write(
        `e2e (c) PR comment: act runs ${first.seconds.toFixed(1)} s and ${second.seconds.toFixed(1)} s, ${github.requests.length} GitHub API requests\n`,
      );
    } finally {
      await github.close();
    }
  });

  it("(d) a tag push (v1.4.0) publishes 1.4.0 from github.ref_name, promotes it to a second store with channel production; the markdown output is read; the deploy event reaches the GitHub API (a local fake)", async () => {
    const production = store.replace(/\/e2e-/, "/e2e-prod-");
    const github = await startGitHubApiFake({ tokens: { "e2e-token": { login: "github-actions[bot]" } } });
    try {
      const event = path.join(scratch, "push.json");
      await writeFile(event, JSON.stringify({ ref: "refs/tags/v1.4.0", repository: { full_name: "acme/ml" } }));
      const r = await runAct("release.yml", {
        event: "push",
        eventFile: event,
        vars: { PROD_STORE: production },
        secrets: { GITHUB_TOKEN: "e2e-token" },
        env: { GITHUB_API_URL: github.url, GITHUB_REPOSITORY: "acme/ml" },
      });
      assert.equal(r.code, 0, r.log);
      assert.deepEqual([r.report.version, r.report.copied, r.report.notes], ["1.4.0", "true", "ok"], r.log);
      const resolved = await runCli(["--store", production, "--json", "resolve", "models/e2e-release:production"], { cwd: scratch, env: s3 });
      assert.equal(JSON.parse(resolved.stdout).resolved[0].version, "1.4.0", resolved.stderr);
      assert.deepEqual(
        github.dispatches.map((d) => [d.repo, d.event_type, d.client_payload.version, d.client_payload.channel]),
        [["acme/ml", "assetkit-promoted", "1.4.0", "production"]],
      );
      process.stderr.write(`e2e (d) release on a tag push: act run ${r.seconds.toFixed(1)} s\n`);
    } finally {
      await github.close();
    }
  });

  it("(f) on an OCI registry with token auth (registry C): a job publishes, moves production and fetches it back; ORAS pulls the channel byte-identical", async () => {
    const registry = process.env.ASSETKIT_TEST_OCI_C;
    assert.ok(registry, "ASSETKIT_TEST_OCI_C is not set: run this file through scripts/test.ts, which starts the registries");
    const host = new URL(registry).host;
    const namespace = `e2e-${path
      .basename(scratch)
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")}`;
    const user = process.env.ASSETKIT_TEST_OCI_C_USER!;
    const password = process.env.ASSETKIT_TEST_OCI_C_PASSWORD!;
    const r = await runAct("oci.yml", { vars: { OCI_STORE: `oci://${host}/${namespace}?settle=0` }, secrets: { OCI_USERNAME: user, OCI_PASSWORD: password } });
    assert.equal(r.code, 0, r.log);
    assert.equal(r.report.version, "1.0.0", r.log);
    assert.ok(!r.log.includes(password), "the registry password is never printed");
    const out = path.join(scratch, "oras-out");
    await mkdir(out, { recursive: true });
    const oras = path.join(path.dirname(act), "oras");
    await new Promise<void>((resolve, reject) =>
      execFile(
        oras,
        ["pull", "--plain-http", "-u", user, "--password-stdin", "-o", out, `${host}/${namespace}/models/e2e-oci:production`],
        (err, _o, stderr) => (err ? reject(new Error(stderr)) : resolve()),
      ).stdin!.end(password),
    );
    assert.match(await readFile(path.join(out, "weights.bin"), "utf8"), /^oci weights of run /);
    process.stderr.write(`e2e (f) OCI registry: act run ${r.seconds.toFixed(1)} s\n`);
  });

  it("(e) a release job signs keylessly and attests (id-token: write, attestations: write), against the Sigstore fake and the GitHub API fake (attestations endpoints); a fetch under the policy that requires both finds and checks them", async () => {
    const sigstore = await startSigstoreFake({ identity: { repository: "acme/ml", workflow: ".github/workflows/release.yml", ref: "refs/heads/main" } });
    const github = await startGitHubApiFake({ tokens: { "e2e-token": { login: "github-actions[bot]" } } });
    try {
      const trustConfig = path.join(scratch, "trust_config.json");
      await writeFile(trustConfig, JSON.stringify(sigstore.trustConfig));
      const policy = path.join(scratch, "attest-policy.yml");
      await writeFile(
        policy,
        `trust:\n  trust-config: ${trustConfig}\n  rules:\n    - match: "models/**"\n      signers:\n        - issuer: ${JSON.stringify(sigstore.issuer)}\n          repository: acme/ml\n          workflow: .github/workflows/release.yml\n          ref: refs/heads/main\n      require-attestation: true\n`,
      );
      const r = await runAct("publish-attest.yml", {
        vars: { TRUST_POLICY: policy },
        secrets: { GITHUB_TOKEN: "e2e-token" },
        env: {
          GITHUB_API_URL: github.url,
          GITHUB_REPOSITORY: "acme/ml",
          ACTIONS_ID_TOKEN_REQUEST_URL: sigstore.tokenRequestUrl,
          ACTIONS_ID_TOKEN_REQUEST_TOKEN: sigstore.tokenRequestToken,
        },
      });
      assert.equal(r.code, 0, r.log);
      assert.match(r.report.version ?? "", /^1\.\d+\.\d+$/, r.log);
      assert.deepEqual(
        github.attestations.map((a) => [a.repo, a.digests]),
        [["acme/ml", [r.report.digest]]],
      );
      assert.ok(
        github.requests.some((q) => q.method === "GET" && q.url.includes("/attestations/")),
        "the fetch listed the digest's attestations",
      );
      process.stderr.write(`e2e (e) keyless signing and attestation: act run ${r.seconds.toFixed(1)} s\n`);
    } finally {
      await github.close();
      await sigstore.close();
    }
  });
});
