// The Action's promote and publish as a release job uses them: the markdown output, promote with `to`, and
// deploy events (repository_dispatch) sent to a local fake of the GitHub REST API, with a read-only token too.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { runAction } from "../helpers/action.ts";
import { scratch, writeTree } from "../helpers/cli.ts";
import { startGitHubApiFake, type GitHubApiFake } from "../helpers/github-api-fake.ts";

let fake: GitHubApiFake;
before(async () => {
  fake = await startGitHubApiFake({
    tokens: { "write-token": { login: "github-actions[bot]" }, "read-token": { login: "github-actions[bot]", readOnly: true } },
  });
});
after(() => fake.close());

const github = (token: string) => ({ GITHUB_API_URL: fake.url, GITHUB_REPOSITORY: "octo/models", "INPUT_GITHUB-TOKEN": token });

describe("Action: release job (fake GitHub API)", () => {
  it("publishes v1.4.0 as 1.4.0, promotes it to a second store with channel production; markdown outputs; dispatch events reach the fake", async () => {
    const cwd = await writeTree(await scratch(), { "model/w.bin": "weights" });
    const staging = path.join(cwd, "staging");
    const production = path.join(cwd, "production");
    const published = await runAction(
      cwd,
      { command: "publish", path: "model", name: "m", version: "v1.4.0", store: staging, notify: "true" },
      github("write-token"),
    );
    assert.equal(published.code, 0, published.stdout);
    assert.equal(published.outputs.version, "1.4.0");
    assert.match(published.outputs.markdown!, /\| m:1\.4\.0 \| 1\.4\.0 \| `sha256:/);
    assert.equal(published.outputs.markdown, published.summary);

    const promoted = await runAction(
      cwd,
      { command: "promote", name: "m", version: "v1.4.0", channel: "production", to: production, store: staging, notify: "true" },
      github("write-token"),
    );
    assert.equal(promoted.code, 0, promoted.stdout);
    assert.equal(promoted.outputs.copied, "true");
    assert.equal(promoted.outputs.spec, "m:production");
    assert.match(
      promoted.outputs.markdown!,
      /^Store: .*production\n[\s\S]*\| m:production \| 1\.4\.0 \|.*copied into .*production; promoted &#40;new channel&#41;/m,
    );

    const events = fake.dispatches.filter((d) => d.repo === "octo/models");
    assert.deepEqual(
      events.map((e) => e.event_type),
      ["assetkit-published", "assetkit-promoted"],
    );
    assert.deepEqual(events[1]!.client_payload, {
      name: "m",
      version: "1.4.0",
      digest: published.outputs.digest,
      channel: "production",
      previous: null,
      store: production,
    });
  });

  it("history writes the channel's moves to the job summary and the history output", async () => {
    const cwd = await writeTree(await scratch(), { "w.bin": "w" });
    for (const i of [0, 1]) {
      assert.equal((await runAction(cwd, { command: "publish", path: "w.bin", name: "h" })).code, 0);
      const env = { GITHUB_ACTOR: `user${i}`, GITHUB_REPOSITORY: "octo/models", GITHUB_RUN_ID: `${i + 10}` };
      assert.equal((await runAction(cwd, { command: "promote", name: "h", version: `1.${i}.0`, channel: "production" }, env)).code, 0);
    }
    const r = await runAction(cwd, { command: "history", name: "h", channel: "production" });
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual(
      JSON.parse(r.outputs.history!).channels[0].history.map((m: { version: string }) => m.version),
      ["1.1.0", "1.0.0"],
    );
    assert.match(
      r.summary,
      /#### h:production → 1\.1\.0[\s\S]*\| 1\.1\.0 \| 1\.0\.0 \| .* \| user1 \| \[run\]\(https:\/\/github\.com\/octo\/models\/actions\/runs\/11\) \|\n\| 1\.0\.0 \| — \|/,
    );
    assert.equal(r.outputs.markdown, r.summary);
  });

  it("a token that may not send the event: a warning, and the step still succeeds", async () => {
    const cwd = await writeTree(await scratch(), { "w.bin": "w" });
    const before = fake.dispatches.length;
    const r = await runAction(cwd, { command: "publish", path: "w.bin", name: "w", notify: "true" }, github("read-token"));
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /::warning::no assetkit-published event sent to octo\/models: HTTP 403: Resource not accessible by integration/);
    assert.equal(fake.dispatches.length, before);
  });
});
