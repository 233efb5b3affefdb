// prune through the shipped Action and CLI: policy, channels and their history, lockfiles (on every branch,
// read through a fake of the GitHub REST API), the dry-run plan, and what a failure to read a branch does.
import assert from "node:assert/strict";
import { readFile, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { runAction } from "../helpers/action.ts";
import { runCli, scratch, writeTree } from "../helpers/cli.ts";
import { startGitHubApiFake, type GitHubApiFake } from "../helpers/github-api-fake.ts";

const REPO = "acme/models";

/** A project whose local store has `models/m` at versions 1.0.0 … 10.0.0 (each with its own content). */
async function tenVersions() {
  const cwd = await scratch();
  const cli = (...args: string[]) => runCli(args, { cwd });
  for (let i = 1; i <= 10; i++) {
    await writeTree(cwd, { "model/weights.bin": `weights ${i}`, "model/config.json": `{"v":${i}}` });
    assert.equal((await cli("publish", "model", "models/m", "--version", `${i}.0.0`)).code, 0);
  }
  return { cwd, cli };
}

function lockfile(cwd: string, versions: string[]): string {
  const assets = Object.fromEntries(versions.map((v) => [`models/m:${v}`, { name: "models/m", version: v, digest: null }]));
  return JSON.stringify({ lockfileVersion: 1, store: path.join(cwd, ".assetkit/store"), assets }, null, 2) + "\n";
}

async function listed(cli: (...args: string[]) => Promise<{ stdout: string }>): Promise<string[]> {
  return JSON.parse((await cli("list", "models/m", "--json")).stdout).assets[0].versions;
}

describe("prune (Action, with a fake of the GitHub REST API)", () => {
  let github: GitHubApiFake;
  before(async () => {
    github = await startGitHubApiFake({ anyToken: { login: "github-actions[bot]" } });
  });
  after(() => github.close());

  it("--keep-last 2 with production on 3.0.0 and a lockfile on another branch naming 5.0.0 deletes exactly the other 6; the dry run says why each other version stays", async () => {
    const { cwd, cli } = await tenVersions();
    assert.equal((await cli("promote", "models/m:3.0.0", "production")).code, 0);
    // 31 branches: more than one page of the branch list (30 a page by default).
    const branches = ["main", ...Array.from({ length: 29 }, (_, i) => `topic-${i}`), "feature/retrain"];
    github.setup({ branches: { [REPO]: branches }, files: { [REPO]: { "feature/retrain": { "assets.lock": lockfile(cwd, ["5.0.0"]) } } } });
    const env = { GITHUB_API_URL: github.url, GITHUB_REPOSITORY: REPO, GITHUB_WORKSPACE: cwd };
    const inputs = { command: "prune", "keep-last": "2", "github-token": "t" };

    const dry = await runAction(cwd, inputs, env);
    assert.equal(dry.code, 0, dry.stdout);
    const wouldDelete = [...dry.stdout.matchAll(/would delete\tmodels\/m:(\S+)\t/g)].map((m) => m[1]);
    assert.deepEqual(wouldDelete, ["8.0.0", "7.0.0", "6.0.0", "4.0.0", "2.0.0", "1.0.0"]);
    assert.match(dry.stdout, /keep\tmodels\/m:10\.0\.0\tlatest; among the last 2/);
    assert.match(dry.stdout, /keep\tmodels\/m:9\.0\.0\tamong the last 2/);
    assert.match(dry.stdout, /keep\tmodels\/m:5\.0\.0\tlocked in assets\.lock on branch feature\/retrain/);
    assert.match(dry.stdout, /keep\tmodels\/m:3\.0\.0\tchannel production/);
    assert.match(dry.summary, /would delete models\/m:8\.0\.0/);
    assert.equal((await listed(cli)).length, 10, "the dry run deleted nothing");
    const contentReads = github.requests.filter((r) => r.url.includes("/contents/"));
    assert.equal(contentReads.length, branches.length, "the lockfile was read on every branch, across pages");

    const real = await runAction(cwd, { ...inputs, "dry-run": "false" }, env);
    assert.equal(real.code, 0, real.stdout);
    assert.deepEqual(JSON.parse(real.outputs.removed!).versions, 6);
    assert.deepEqual(await listed(cli), ["10.0.0", "9.0.0", "5.0.0", "3.0.0"]);
    const storeFiles = (await readdir(path.join(cwd, ".assetkit/store/models/m"))).sort();
    assert.deepEqual(
      storeFiles,
      ["10.0.0", "10.0.0.meta", "3.0.0", "3.0.0.meta", "5.0.0", "5.0.0.meta", "9.0.0", "9.0.0.meta"],
      "no meta or data of a deleted version is left",
    );
    for (const v of ["10.0.0", "9.0.0", "5.0.0", "3.0.0"]) {
      const fetched = await runCli(["fetch", `models/m:${v}`, "--assets-dir", path.join(cwd, `fresh-${v}`), "--json"], { cwd });
      assert.equal(fetched.code, 0, fetched.stderr);
    }
    const verify = await cli("fetch", "models/m:production", "--json");
    assert.equal(JSON.parse(verify.stdout).resolved[0].version, "3.0.0");
  });

  it("a branch whose lockfile cannot be read (403) stops the prune: nothing is deleted", async () => {
    const { cwd, cli } = await tenVersions();
    github.setup({ branches: { "acme/locked": ["main", "secret"] }, forbiddenRefs: ["secret"] });
    const env = { GITHUB_API_URL: github.url, GITHUB_REPOSITORY: "acme/locked", GITHUB_WORKSPACE: cwd };
    const r = await runAction(cwd, { command: "prune", "keep-last": "1", "github-token": "t", "dry-run": "false" }, env);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /cannot read assets\.lock on branch secret: .*prune stopped, nothing deleted/);
    assert.equal((await listed(cli)).length, 10);
  });

  it("a rate-limited branch list is retried; a repository the token cannot see stops the prune", async () => {
    const { cwd, cli } = await tenVersions();
    github.setup({ branches: { "acme/limited": ["main"] } });
    const env = { GITHUB_API_URL: github.url, GITHUB_REPOSITORY: "acme/limited", GITHUB_WORKSPACE: cwd };
    github.rateLimitNext(1, 1);
    const seen = github.requests.length;
    const limited = await runAction(cwd, { command: "prune", "keep-last": "8", "github-token": "t", "dry-run": "false" }, env);
    assert.equal(limited.code, 0, limited.stdout);
    assert.equal(github.requests[seen]?.status, 403, "the first request met the rate limit");
    assert.equal((await listed(cli)).length, 8);
    const missing = await runAction(
      cwd,
      { command: "prune", "keep-last": "1", "github-token": "t", "dry-run": "false" },
      { ...env, GITHUB_REPOSITORY: "acme/none" },
    );
    assert.equal(missing.code, 1);
    assert.match(missing.stdout, /cannot list the branches of acme\/none/);
    assert.equal((await listed(cli)).length, 8);
  });
});

describe("prune (CLI)", () => {
  it("keeps locked versions, channel history (a table without history reads as [version, previous]), --per-series and --keep-within", async () => {
    const { cwd, cli } = await tenVersions();
    await writeFile(path.join(cwd, "other.lock"), lockfile(cwd, ["2.0.0"]));
    // A channel file as written before history existed: version and previous only.
    assert.equal((await cli("promote", "models/m:6.0.0", "staging")).code, 0);
    assert.equal((await cli("promote", "models/m:7.0.0", "staging")).code, 0);
    const plan = JSON.parse((await cli("prune", "--keep-last", "1", "--keep-locked", "other.lock", "--json")).stdout);
    const keep = Object.fromEntries(plan.assets[0].keep.map((k: { version: string; reasons: string[] }) => [k.version, k.reasons]));
    assert.deepEqual(Object.keys(keep).sort(), ["10.0.0", "2.0.0", "6.0.0", "7.0.0"]);
    assert.deepEqual(keep["6.0.0"], ["in the history of channel staging"]);
    assert.deepEqual(keep["2.0.0"], [`locked in ${path.join(cwd, "other.lock")}`]);
    assert.equal(plan.dryRun, true);
    assert.ok(
      plan.assets[0].remove.every((r: { size: number }) => r.size > 0),
      "each deletion has its size",
    );

    const history1 = JSON.parse((await cli("prune", "--keep-last", "1", "--keep-history", "1", "--json")).stdout);
    assert.ok(!history1.assets[0].keep.some((k: { version: string }) => k.version === "6.0.0"), "--keep-history 1 keeps only where the channel points");

    const series = JSON.parse((await cli("prune", "--keep-last", "1", "--per-series", "--keep-history", "0", "--json")).stdout);
    assert.equal(series.assets[0].remove.length, 0, "each version is the newest of its own major series");

    const within = JSON.parse((await cli("prune", "--keep-within", "1d", "--json")).stdout);
    assert.equal(within.assets[0].remove.length, 0, "everything was pushed today");

    const applied = await cli("prune", "--keep-last", "1", "--keep-locked", "other.lock", "--yes");
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stdout, /^deleted 6 version\(s\)/m);
    assert.deepEqual(await listed(cli), ["10.0.0", "7.0.0", "6.0.0", "2.0.0"]);
  });

  it("prunes a store written by modelkit (no digests, no aliases) the same way", async () => {
    const cwd = await scratch();
    const store = path.join(cwd, "mk");
    // modelkit's layout (major_minor versions): data, meta without an assetkit block, an index without digests.
    const tree: Record<string, string> = { "m.versions": JSON.stringify({ versions: ["0.3", "0.2", "0.1", "0.0"] }) };
    for (const v of ["0.0", "0.1", "0.2", "0.3"]) {
      tree[`m/${v}`] = `data ${v}`;
      tree[`m/${v}.meta`] = JSON.stringify({ push_date: new Date().toISOString(), is_directory: false, contents: [] });
    }
    await writeTree(store, tree);
    const cli = (...args: string[]) => runCli([...args, "--store", store], { cwd });
    const plan = JSON.parse((await cli("prune", "--keep-last", "2", "--json")).stdout);
    assert.deepEqual(plan.assets[0].remove, [
      { version: "0.1", size: 8 },
      { version: "0.0", size: 8 },
    ]);
    assert.equal((await cli("prune", "--keep-last", "2", "--yes")).code, 0);
    assert.deepEqual((await readdir(path.join(store, "m"))).sort(), ["0.2", "0.2.meta", "0.3", "0.3.meta"]);
    assert.deepEqual(JSON.parse(await readFile(path.join(store, "m.versions"), "utf8")), { versions: ["0.3", "0.2"], digests: {} });
    assert.equal((await cli("fetch", "m:0.2")).code, 0);
  });

  it("refuses to run without a policy, and with a missing --keep-locked file (exit 2)", async () => {
    const { cli } = await tenVersions();
    const none = await cli("prune");
    assert.equal(none.code, 2);
    assert.match(none.stderr, /prune needs a policy/);
    assert.equal((await cli("prune", "--keep-last", "1", "--keep-locked", "nope.lock", "--yes")).code, 2);
    assert.equal((await cli("prune", "--keep-last", "0")).code, 2);
    assert.equal((await listed(cli)).length, 10);
  });
});
