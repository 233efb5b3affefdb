// The Action run as the runner runs it: node dist/index.js with INPUT_*, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY.
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";
import { runAction } from "../helpers/action.ts";
import { scratch, writeTree } from "../helpers/cli.ts";

describe("Action (node dist/index.js)", () => {
  it("publish writes version, spec, digest, published to GITHUB_OUTPUT and a summary table", async () => {
    const cwd = await scratch();
    await writeTree(cwd, { "out/model.bin": "weights" });
    const env = {
      GITHUB_REPOSITORY: "acme/ml",
      GITHUB_SHA: "abc123",
      GITHUB_RUN_ID: "42",
      GITHUB_SERVER_URL: "https://github.com",
      GITHUB_REF: "refs/heads/main",
      GITHUB_WORKFLOW: "train",
    };
    const r = await runAction(cwd, { command: "publish", path: "out", name: "models/clf", metadata: "team=nlp\nepochs=3" }, env);
    assert.equal(r.code, 0, r.stdout);
    assert.equal(r.outputs.version, "1.0.0");
    assert.equal(r.outputs.spec, "models/clf:1.0.0");
    assert.match(r.outputs.digest!, /^sha256:[0-9a-f]{64}$/);
    assert.equal(r.outputs.published, "true");
    assert.match(r.summary, /\| spec \| version \| digest \| size \| path \|/);
    assert.match(r.summary, /\| models\/clf:1\.0\.0 \| 1\.0\.0 \| `sha256:/);
    const meta = JSON.parse(await readFile(path.join(cwd, ".assetkit/store/models/clf/1.0.0.meta"), "utf8"));
    assert.deepEqual(meta.assetkit.source, {
      repository: "acme/ml",
      sha: "abc123",
      ref: "refs/heads/main",
      run_url: "https://github.com/acme/ml/actions/runs/42",
      workflow: "train",
    });
    assert.deepEqual(meta.assetkit.metadata, { team: "nlp", epochs: "3" });

    const unchanged = await runAction(cwd, { command: "publish", path: "out", name: "models/clf", "if-changed": "true" });
    assert.equal(unchanged.outputs.published, "false");
    assert.equal(unchanged.outputs.version, "1.0.0");
  });

  it("lock, then fetch frozen: outputs resolved, paths, path, cache-hit", async () => {
    const cwd = await scratch();
    await writeTree(cwd, { "idx/faiss.index": "v", "idx/meta.json": "{}" });
    assert.equal((await runAction(cwd, { command: "publish", path: "idx", name: "indexes/docs" })).code, 0);
    const lock = await runAction(cwd, { command: "lock", specs: "indexes/docs:1\nindexes/docs:1[faiss.index]" });
    assert.equal(lock.code, 0, lock.stdout);
    assert.equal(lock.outputs.lockfile, path.join(cwd, "assets.lock"));
    const cold = await runAction(cwd, { command: "fetch", frozen: "true" });
    assert.equal(cold.code, 0, cold.stdout);
    const resolved = JSON.parse(cold.outputs.resolved!);
    assert.deepEqual(Object.keys(resolved), ["indexes/docs:1", "indexes/docs:1[faiss.index]"]);
    assert.equal(resolved["indexes/docs:1"].version, "1.0.0");
    assert.equal(resolved["indexes/docs:1[faiss.index]"].path, path.join(cwd, ".assetkit/assets/indexes/docs/1.0.0/faiss.index"));
    assert.equal(cold.outputs.path, path.join(cwd, ".assetkit/assets/indexes/docs/1.0.0"));
    assert.equal(cold.outputs.paths!.split("\n").length, 2);
    assert.equal(cold.outputs["cache-hit"], "false");
    assert.match(cold.summary, /indexes\/docs:1\[faiss\.index\]|indexes\/docs:1&#91;faiss\.index&#93;/);
    const warm = await runAction(cwd, { command: "fetch", frozen: "true" });
    assert.equal(warm.outputs["cache-hit"], "true");
  });

  it("fails the step with one clear line on a bad input", async () => {
    const cwd = await scratch();
    const r = await runAction(cwd, { command: "resolve", specs: "x:((" });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /::error::bad spec "x:\(\("/);
    assert.equal(r.stdout.match(/::error::/g)?.length, 1, "one error annotation");
    assert.match(r.summary, /### assetkit resolve failed\n\nbad spec "x:&#40;&#40;"/);
    const unknown = await runAction(cwd, { command: "deploy" });
    assert.match(unknown.stdout, /::error::unknown command "deploy"/);
  });

  it("outside a runner: a summary file that is missing is created, one in a missing folder is a warning", async () => {
    const cwd = await scratch();
    const created = path.join(cwd, "summary.md");
    const ok = await runAction(cwd, { command: "resolve", specs: "x:((" }, { GITHUB_STEP_SUMMARY: created });
    assert.equal(ok.code, 1);
    assert.match(await readFile(created, "utf8"), /### assetkit resolve failed/);
    assert.equal(ok.stderr, "");

    const unwritable = path.join(cwd, "no-such-folder", "summary.md");
    const failed = await runAction(cwd, { command: "resolve", specs: "x:((" }, { GITHUB_STEP_SUMMARY: unwritable });
    assert.equal(failed.code, 1);
    assert.match(failed.stdout, /::error::bad spec "x:\(\(".*\n::warning::job summary not written: ENOENT: .*no-such-folder/);
    assert.equal(failed.stderr, "", "no stack trace");
    await writeTree(cwd, { "out/model.bin": "weights" });
    const published = await runAction(cwd, { command: "publish", path: "out", name: "models/clf" }, { GITHUB_STEP_SUMMARY: unwritable });
    assert.equal(published.code, 0, published.stdout);
    assert.equal(published.outputs.version, "1.0.0");
    assert.match(published.stdout, /::warning::job summary not written/);
    assert.equal(published.stderr, "");
  });
  it("publish and import sign with the sign-key input (the PEM itself, masked); fetch under the policy outputs each signer", async () => {
    const cwd = await scratch();
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const pem = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    await writeTree(cwd, { "out/model.bin": "weights", "release.pub": publicKey.export({ type: "spki", format: "pem" }) as string });
    const published = await runAction(cwd, { command: "publish", path: "out", name: "models/clf", "sign-key": pem });
    assert.equal(published.code, 0, published.stdout);
    const imported = await runAction(cwd, { command: "import", source: "out", name: "models/imported", "sign-key": pem });
    assert.equal(imported.code, 0, imported.stdout);
    const body = pem.split("\n").filter((line) => line && !line.startsWith("-----"));
    for (const line of body) assert.ok(published.stdout.includes(`::add-mask::${line}`), "each line of the key is masked");
    for (const name of ["clf", "imported"]) await readFile(path.join(cwd, `.assetkit/store/models/${name}/1.0.0.sig`));

    await writeTree(cwd, { "assetkit.yml": 'trust:\n  rules:\n    - match: "**"\n      signers:\n        - key: release.pub\n' });
    const fetched = await runAction(cwd, { command: "fetch", specs: "models/clf:1\nmodels/imported:1" });
    assert.equal(fetched.code, 0, fetched.stdout);
    const resolved = JSON.parse(fetched.outputs.resolved!) as Record<string, { signer: string }>;
    assert.match(resolved["models/clf:1"]!.signer, /^key:[0-9a-f]{64}$/);
    assert.equal(resolved["models/imported:1"]!.signer, resolved["models/clf:1"]!.signer);

    const bad = await runAction(cwd, { command: "publish", path: "out", name: "models/other", "sign-key": "not a key" });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stdout, /::error::the sign-key input is not a PEM private key/);
  });
});
