// `command: comment` of the built Action, against a fake of the GitHub REST API (test/helpers/github-api-fake.ts)
// and a real local file store with published assets. The comment's Markdown is parsed with marked, so "it renders
// as a table" is checked on the parse, not by eye.
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, afterEach, before, describe, it } from "node:test";
import { marked, type Tokens } from "marked";
import { runAction } from "../helpers/action.ts";
import { runCli, scratch, writeTree } from "../helpers/cli.ts";
import { startGitHubApiFake, type GitHubApiFake } from "../helpers/github-api-fake.ts";

const REPO = "acme/ml";
const MARKER = "<!-- assetkit:pr-comment -->";
const WRITE_TOKEN = "ghs_write";
const READ_ONLY_TOKEN = "ghs_fork";
const HEADER = ["spec", "version", "base", "change", "size", "digest", "published", "by", "run"];

let fake: GitHubApiFake;
before(async () => {
  fake = await startGitHubApiFake({
    tokens: {
      [WRITE_TOKEN]: { login: "github-actions[bot]" },
      [READ_ONLY_TOKEN]: { login: "github-actions[bot]", readOnly: true },
      ghp_personal: { login: "octo-dev" },
    },
  });
});
after(() => fake.close());
// A failed rate-limit test must not leave its injected 403s to the next test.
afterEach(() => fake.rateLimitNext(0));

/** Provenance a training workflow run leaves in the metas it publishes. */
const PUBLISHER_ENV = {
  GITHUB_REPOSITORY: REPO,
  GITHUB_RUN_ID: "4242",
  GITHUB_SERVER_URL: "https://github.com",
  GITHUB_WORKFLOW: "train",
  GITHUB_ACTOR: "alice",
  GITHUB_SHA: "c".repeat(40),
};

async function cli(cwd: string, args: string[], env: NodeJS.ProcessEnv = PUBLISHER_ENV): Promise<void> {
  const r = await runCli(args, { cwd, env });
  assert.equal(r.code, 0, `assetkit ${args.join(" ")}: ${r.stderr}`);
}

async function publishVersions(cwd: string, name: string, versions: string[], env?: NodeJS.ProcessEnv): Promise<void> {
  for (const version of versions) {
    await writeTree(cwd, { [`in/${name}.bin`]: `${name} ${version}` });
    await cli(cwd, ["publish", `in/${name}.bin`, name, "--version", version], env);
  }
}

function lockfileText(assets: Record<string, string>): string {
  const entries = Object.fromEntries(Object.entries(assets).map(([spec, version]) => [spec, { name: spec.split(":")[0], version, digest: null }]));
  return JSON.stringify({ lockfileVersion: 1, store: ".assetkit/store", assets: entries }, null, 2) + "\n";
}

/** Each pull request of these tests has its own base commit, so one test's base lockfile is not another's. */
const baseShaOf = (number: number) => String(number).padStart(40, "b");

/** The Action in `cwd` (the workspace) for pull request `number` of acme/ml, as a pull_request run. */
async function commentOn(cwd: string, number: number, inputs: Record<string, string> = {}, env: NodeJS.ProcessEnv = {}) {
  const eventPath = path.join(cwd, `event-${number}.json`);
  await writeFile(
    eventPath,
    JSON.stringify({ action: "synchronize", number, pull_request: { number, base: { sha: baseShaOf(number), ref: "main" }, head: { sha: "d".repeat(40) } } }),
  );
  return runAction(
    cwd,
    { command: "comment", "github-token": WRITE_TOKEN, ...inputs },
    {
      GITHUB_EVENT_NAME: "pull_request",
      GITHUB_EVENT_PATH: eventPath,
      GITHUB_REPOSITORY: REPO,
      GITHUB_API_URL: fake.url,
      GITHUB_SERVER_URL: "https://github.com",
      GITHUB_WORKSPACE: cwd,
      ...env,
    },
  );
}

/** The one table of a Markdown text, as marked parses it: header texts and rows of cell texts. */
function tableOf(markdown: string): { header: string[]; rows: string[][] } {
  const tables = marked.lexer(markdown).filter((t): t is Tokens.Table => t.type === "table");
  assert.equal(tables.length, 1, `expected one table in:\n${markdown}`);
  return { header: tables[0]!.header.map((c) => c.text), rows: tables[0]!.rows.map((r) => r.map((c) => c.text)) };
}

function rowOf(table: { rows: string[][] }, spec: string): string[] {
  const row = table.rows.find((r) => decodeEntities(r[0]!).replaceAll("\u200b", "") === spec);
  assert.ok(row, `no row for ${spec} in ${JSON.stringify(table.rows)}`);
  return row;
}

function decodeEntities(text: string): string {
  return text.replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)));
}

const requestsSince = (from: number) => fake.requests.slice(from);

describe("comment (GitHub API fake)", () => {
  it("one comment after three runs: created once, then left alone or edited in place; versions compared with the base lockfile", async () => {
    const cwd = await scratch();
    await publishVersions(cwd, "models/up", ["1.0.0", "1.1.0"]);
    await publishVersions(cwd, "models/down", ["1.0.0"]);
    await publishVersions(cwd, "models/same", ["1.0.0"]);
    await publishVersions(cwd, "models/new", ["0.1.0"]);
    await cli(cwd, ["lock", "models/up:1", "models/down:1", "models/same:1", "models/new"]);
    fake.setup({
      files: {
        [REPO]: {
          [baseShaOf(7)]: {
            "assets.lock": lockfileText({ "models/up:1": "1.0.0", "models/down:1": "1.2.0", "models/same:1": "1.0.0", "models/gone:2": "2.0.0" }),
          },
        },
      },
    });
    const from = fake.requests.length;

    const first = await commentOn(cwd, 7);
    assert.equal(first.code, 0, first.stdout);
    const [comment] = fake.commentsOn(REPO, 7);
    assert.ok(comment);
    assert.equal(first.outputs["comment-url"], `https://github.com/acme/ml/pull/7#issuecomment-${comment.id}`);
    assert.ok(comment.body.startsWith(MARKER));
    assert.ok(comment.body.length <= 65_536);
    const table = tableOf(comment.body);
    assert.deepEqual(table.header, HEADER);
    assert.deepEqual(rowOf(table, "models/up:1").slice(1, 4), ["1.1.0", "1.0.0", "**upgraded**"]);
    assert.deepEqual(rowOf(table, "models/down:1").slice(1, 4), ["1.0.0", "1.2.0", "**downgraded**"]);
    assert.deepEqual(rowOf(table, "models/same:1").slice(1, 4), ["1.0.0", "1.0.0", "unchanged"]);
    assert.deepEqual(rowOf(table, "models/new").slice(1, 4), ["0.1.0", "—", "**added**"]);
    assert.deepEqual(rowOf(table, "models/gone:2").slice(1, 4), ["—", "2.0.0", "**removed**"]);
    const up = rowOf(table, "models/up:1");
    assert.equal(up[4], "15 B");
    assert.match(up[5]!, /^`[0-9a-f]{12}`$/);
    assert.match(up[6]!, /^\d{4}-\d\d-\d\d \d\d:\d\d UTC$/);
    assert.equal(up[7], "alice — train in acme/ml");
    assert.equal(up[8], "[run](https://github.com/acme/ml/actions/runs/4242)");
    assert.equal(table.rows.at(-1)![0], "models/same:1", "unchanged rows come last");
    assert.ok(table.rows.every((r) => r.length === HEADER.length));
    assert.match(first.summary, /\| models\/up:1 \| 1\.1\.0 \| 1\.0\.0 \| \*\*upgraded\*\*/);

    const second = await commentOn(cwd, 7);
    assert.equal(second.code, 0, second.stdout);
    assert.equal(second.outputs["comment-url"], first.outputs["comment-url"]);

    await publishVersions(cwd, "models/up", ["1.2.0"]);
    await cli(cwd, ["lock", "--update", "models/up:1"]);
    const third = await commentOn(cwd, 7);
    assert.equal(third.code, 0, third.stdout);
    assert.equal(third.outputs["comment-url"], first.outputs["comment-url"]);

    assert.equal(fake.commentsOn(REPO, 7).length, 1);
    assert.deepEqual(rowOf(tableOf(fake.commentsOn(REPO, 7)[0]!.body), "models/up:1").slice(1, 4), ["1.2.0", "1.0.0", "**upgraded**"]);
    const writes = requestsSince(from).filter((r) => r.method !== "GET");
    assert.deepEqual(
      writes.map((r) => `${r.method} ${r.url}`),
      ["POST /repos/acme/ml/issues/7/comments", `PATCH /repos/acme/ml/issues/comments/${comment.id}`],
      "the second run, with nothing changed, writes nothing",
    );
    assert.ok(requestsSince(from).some((r) => r.url === `/repos/acme/ml/contents/assets.lock?ref=${baseShaOf(7)}`));
  });

  it("finds its comment on page 3 of 250 and never edits a comment another author seeded with the marker", async () => {
    const cwd = await scratch();
    await publishVersions(cwd, "models/clf", ["1.0.0"]);
    const comments = Array.from({ length: 250 }, (_, i) => ({ repo: REPO, issue: 8, login: i % 2 ? "alice" : "bob", body: `review note ${i}` }));
    comments[3] = { repo: REPO, issue: 8, login: "mallory", body: `${MARKER}\nplanted` };
    comments[230] = { repo: REPO, issue: 8, login: "github-actions[bot]", body: `${MARKER}\nan earlier run's table` };
    fake.setup({ comments });
    const [planted, ours] = [fake.commentsOn(REPO, 8)[3]!, fake.commentsOn(REPO, 8)[230]!];
    const from = fake.requests.length;

    const r = await commentOn(cwd, 8, { specs: "models/clf:1" });
    assert.equal(r.code, 0, r.stdout);
    assert.equal(r.outputs["comment-url"], `https://github.com/acme/ml/pull/8#issuecomment-${ours.id}`);
    assert.equal(planted.body, `${MARKER}\nplanted`);
    assert.equal(fake.commentsOn(REPO, 8).length, 250);
    assert.deepEqual(rowOf(tableOf(ours.body), "models/clf:1").slice(1, 4), ["1.0.0", "—", "**added**"]);
    const lists = requestsSince(from).filter((q) => q.url.startsWith("/repos/acme/ml/issues/8/comments"));
    assert.deepEqual(
      lists.map((q) => new URL(q.url, fake.url).searchParams.get("page") ?? "1"),
      ["1", "2", "3"],
    );
    assert.ok(lists.every((q) => new URL(q.url, fake.url).searchParams.get("per_page") === "100"));
  });

  it("when only a comment by another author carries the marker, creates its own", async () => {
    const cwd = await scratch();
    await publishVersions(cwd, "models/clf", ["1.0.0"]);
    fake.setup({ comments: [{ repo: REPO, issue: 9, login: "mallory", body: `${MARKER}\n| spec |\n| --- |\n| all good |` }] });
    const r = await commentOn(cwd, 9, { specs: "models/clf" });
    assert.equal(r.code, 0, r.stdout);
    const [planted, created] = fake.commentsOn(REPO, 9);
    assert.equal(planted!.body, `${MARKER}\n| spec |\n| --- |\n| all good |`);
    assert.equal(created!.login, "github-actions[bot]");
    assert.equal(r.outputs["comment-url"], `https://github.com/acme/ml/pull/9#issuecomment-${created!.id}`);
  });

  it("a read-only token (fork PR): a warning, the table in the job summary, exit 0, no comment", async () => {
    const cwd = await scratch();
    await publishVersions(cwd, "models/clf", ["1.0.0"]);
    const r = await commentOn(cwd, 10, { specs: "models/clf:1", "github-token": READ_ONLY_TOKEN });
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /::warning::cannot comment on acme\/ml#10: the token may not write/);
    assert.equal(r.outputs["comment-url"], "");
    assert.equal(fake.commentsOn(REPO, 10).length, 0);
    assert.ok(fake.requests.some((q) => q.method === "POST" && q.url === "/repos/acme/ml/issues/10/comments" && q.status === 403));
    const table = tableOf(r.summary);
    assert.deepEqual(table.header, HEADER);
    assert.deepEqual(rowOf(table, "models/clf:1").slice(1, 4), ["1.0.0", "—", "**added**"]);
  });

  it("outside a pull request: says so, posts nothing, exit 0", async () => {
    const cwd = await scratch();
    const from = fake.requests.length;
    const r = await commentOn(cwd, 11, { specs: "models/clf" }, { GITHUB_EVENT_NAME: "push" });
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /no pull request comment: this run is for the push event, not pull_request/);
    assert.match(r.summary, /no pull request comment/);
    assert.equal(r.outputs["comment-url"], "");
    assert.equal(requestsSince(from).length, 0);
  });

  it("no lockfile at the base commit (404): every spec is added", async () => {
    const cwd = await scratch();
    await publishVersions(cwd, "models/a", ["1.0.0"]);
    await publishVersions(cwd, "models/b", ["2.0.0"]);
    await cli(cwd, ["lock", "models/a:1", "models/b"]);
    const from = fake.requests.length;
    const r = await commentOn(cwd, 12);
    assert.equal(r.code, 0, r.stdout);
    assert.ok(requestsSince(from).some((q) => q.url.startsWith("/repos/acme/ml/contents/assets.lock?") && q.status === 404));
    const body = fake.commentsOn(REPO, 12)[0]!.body;
    assert.match(body, /the base commit `bbbbbbb` has no assets\.lock: every spec is new/);
    assert.deepEqual(
      tableOf(body).rows.map((row) => [row[0], row[3]]),
      [
        ["models/a:1", "**added**"],
        ["models/b", "**added**"],
      ],
    );
  });

  it("escapes hostile specs, provenance and base-lockfile text: no HTML, no mention, no foreign link, cells intact", async () => {
    const cwd = await scratch();
    const file = "x|<img src=x onerror=alert(1)>@octocat*_.bin";
    const spec = `models/evil:1[${file}]`;
    await writeTree(cwd, { [`in/evil/${file}`]: "w" });
    const hostile = { ...PUBLISHER_ENV, GITHUB_WORKFLOW: "**pwn** | <script>alert(1)</script>\n# @octocat", GITHUB_SERVER_URL: "https://evil.example" };
    await cli(cwd, ["publish", "in/evil", "models/evil", "--version", "1.0.0"], hostile);
    await cli(cwd, ["lock", spec]);
    fake.setup({ files: { [REPO]: { [baseShaOf(13)]: { "assets.lock": lockfileText({ [spec]: "1.0.0 | <b>@octocat</b>" }) } } } });

    const r = await commentOn(cwd, 13);
    assert.equal(r.code, 0, r.stdout);
    const body = fake.commentsOn(REPO, 13)[0]!.body;
    for (const raw of ["<img", "<script", "<b>", "@octocat", "https://evil.example", "**pwn**"]) assert.ok(!body.includes(raw), `${raw} is in the body`);
    const table = tableOf(body);
    assert.equal(table.rows.length, 1);
    const row = rowOf(table, spec);
    assert.equal(row.length, HEADER.length);
    assert.equal(decodeEntities(row[2]!), "1.0.0 | <b>@\u200boctocat</b>");
    assert.equal(row[3], "**changed**");
    assert.equal(decodeEntities(row[7]!), "alice — **pwn** | <script>alert(1)</script> # @\u200boctocat in acme/ml");
    assert.equal(decodeEntities(row[8]!), "https://evil.example/acme/ml/actions/runs/4242", "a run elsewhere is text, not a link");
  });

  it("stays under 65,536 characters with many rows: folded in <details>, the rest counted; the summary has every row", async () => {
    const cwd = await scratch();
    const names = Array.from({ length: 300 }, (_, i) => `${String(i).padStart(3, "0")}-${"w".repeat(200)}.bin`);
    await writeTree(cwd, Object.fromEntries(names.map((n) => [`in/big/${n}`, n])));
    await cli(cwd, ["publish", "in/big", "models/big", "--version", "1.0.0"]);
    const r = await commentOn(cwd, 14, { specs: names.map((n) => `models/big:1[${n}]`).join("\n") });
    assert.equal(r.code, 0, r.stdout);
    const body = fake.commentsOn(REPO, 14)[0]!.body;
    assert.ok(body.length <= 65_536, `${body.length} characters`);
    assert.match(body, /<details><summary>300 assets<\/summary>/);
    const shown = tableOf(body).rows.length;
    assert.ok(shown > 100 && shown < 300, `${shown} rows shown`);
    assert.match(body, new RegExp(`_${300 - shown} more spec\\(s\\) not shown`));
    assert.equal(tableOf(r.summary).rows.length, 300);
  });

  it("waits out a secondary rate limit (retry-after) and retries a bounded number of times", async () => {
    const cwd = await scratch();
    await publishVersions(cwd, "models/clf", ["1.0.0"]);
    let from = fake.requests.length;
    fake.rateLimitNext(2, 1);
    const r = await commentOn(cwd, 15, { specs: "models/clf" });
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /rate limit on GET \/repos\/\{owner\}\/\{repo\}\/contents\/\{path\}: retrying in 1 s \(1\/3\)/);
    assert.deepEqual(
      requestsSince(from).map((q) => q.status),
      [403, 403, 404, 200, 201],
    );
    assert.equal(fake.commentsOn(REPO, 15).length, 1);

    from = fake.requests.length;
    fake.rateLimitNext(10, 1);
    const limited = await commentOn(cwd, 16, { specs: "models/clf" });
    assert.equal(limited.code, 1);
    assert.match(limited.stdout, /::error::cannot read assets\.lock at the base commit b{38}16: You have exceeded a secondary rate limit/);
    assert.equal(requestsSince(from).length, 4, "one request and three retries");
  });

  it("with another token, finds its comments by the comment-author input, and warns when the author differs", async () => {
    const cwd = await scratch();
    await publishVersions(cwd, "models/clf", ["1.0.0"]);
    const unset = await commentOn(cwd, 17, { specs: "models/clf", "github-token": "ghp_personal" });
    assert.equal(unset.code, 0, unset.stdout);
    assert.match(unset.stdout, /::warning::the comment was written by octo-dev, not github-actions\[bot\]: set the input comment-author to octo-dev/);
    await publishVersions(cwd, "models/clf", ["1.1.0"]);
    const set = await commentOn(cwd, 17, { specs: "models/clf", "github-token": "ghp_personal", "comment-author": "Octo-Dev" });
    assert.equal(set.code, 0, set.stdout);
    assert.doesNotMatch(set.stdout, /::warning::/);
    assert.equal(fake.commentsOn(REPO, 17).length, 1);
    assert.equal(rowOf(tableOf(fake.commentsOn(REPO, 17)[0]!.body), "models/clf")[1], "1.1.0");
  });
  it("under a trust policy: a signed by column from the lockfile's pins (no .sig read), a changed signer flagged, a stale pin fails the run", async () => {
    const cwd = await scratch();
    for (const name of ["release", "other"]) {
      const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
      await writeFile(path.join(cwd, `${name}.pem`), privateKey.export({ type: "pkcs8", format: "pem" }));
      await writeFile(path.join(cwd, `${name}.pub`), publicKey.export({ type: "spki", format: "pem" }));
    }
    await writeTree(cwd, { "in/m.bin": "m", "in/d.bin": "d" });
    await cli(cwd, ["publish", "in/m.bin", "models/m", "--version", "1.0.0", "--sign-key", "release.pem"]);
    await cli(cwd, ["publish", "in/m.bin", "models/m", "--version", "1.1.0", "--sign-key", "other.pem"]);
    await cli(cwd, ["publish", "in/d.bin", "datasets/d", "--version", "1.0.0"]);
    const policy = `trust:\n  rules:\n    - match: "models/**"\n      signers:\n        - key: release.pub\n        - key: other.pub\n    - match: "**"\n      unsigned: allow\n`;
    await writeFile(path.join(cwd, "assetkit.yml"), policy);
    await cli(cwd, ["lock", "models/m:1.0.0", "datasets/d:1"]);
    const base = await readFile(path.join(cwd, "assets.lock"), "utf8");
    // The PR moves models/m to a version another key signed.
    await cli(cwd, ["lock", "models/m:1.1.0", "datasets/d:1", "--lockfile", "pr.lock"]);
    const pr = JSON.parse(await readFile(path.join(cwd, "pr.lock"), "utf8")) as { assets: Record<string, unknown> };
    const lock = JSON.parse(base) as { assets: Record<string, unknown> };
    lock.assets = { "models/m:1": { ...(pr.assets["models/m:1.1.0"] as object) }, "datasets/d:1": pr.assets["datasets/d:1"] };
    const baseLock = JSON.parse(base) as { assets: Record<string, unknown> };
    baseLock.assets = { "models/m:1": baseLock.assets["models/m:1.0.0"], "datasets/d:1": baseLock.assets["datasets/d:1"] };
    await writeFile(path.join(cwd, "assets.lock"), JSON.stringify(lock));
    fake.setup({ files: { [REPO]: { [baseShaOf(31)]: { "assets.lock": JSON.stringify(baseLock) } } } });

    await rm(path.join(cwd, ".assetkit", "store", "models", "m", "1.1.0.sig")); // the comment reads no signature
    const run = await commentOn(cwd, 31);
    assert.equal(run.code, 0, run.stdout);
    const table = tableOf(fake.commentsOn(REPO, 31)[0]!.body);
    assert.deepEqual(table.header, [...HEADER, "signed by"]);
    assert.equal(rowOf(table, "models/m:1").at(-1), "other.pub (**signer changed**, was release.pub)");
    assert.equal(rowOf(table, "datasets/d:1").at(-1), "unsigned");

    await writeFile(path.join(cwd, "assetkit.yml"), policy.replace("        - key: other.pub\n", ""));
    const stale = await commentOn(cwd, 31);
    assert.notEqual(stale.code, 0);
    assert.match(
      stale.stdout,
      /the trust policy changed since .*assets\.lock was written \(it pins sha256:.*, the policy in force is sha256:.*\): run assetkit lock/,
    );
  });
});
