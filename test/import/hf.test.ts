// assetkit import hf://… through the shipped CLI, against a faithful local fake of the Hugging Face Hub and
// its LFS CDN (test/helpers/hf-hub-fake.ts): revisions pinned to commits, LFS sha256 checks, gated repos,
// missing revisions, rate limits, --include/--exclude, sub-paths, datasets, --if-changed.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli, scratch } from "../helpers/cli.ts";
import { commitSha, startHubFake, type FakeRepo, type HubFake } from "../helpers/hf-hub-fake.ts";

const TOKEN = "hf_secretTokenThatMustNeverBePrinted";
const first = commitSha("first");
const second = commitSha("second");
const weights = Buffer.alloc(300_000, 9); // LFS (above the fake's threshold)
const model: Record<string, Buffer> = {
  "config.json": Buffer.from('{"model_type": "bert"}'),
  "model.safetensors": weights,
  "onnx/model.onnx": Buffer.alloc(5_000, 1),
  ...Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`tokenizer/part-${i}.txt`, Buffer.from(`token ${i}`)])),
};
const repos: FakeRepo[] = [
  {
    id: "acme/bert",
    refs: { main: first, v1: first },
    commits: { [first]: model, [second]: { ...model, "config.json": Buffer.from('{"model_type": "bert", "v": 2}') } },
  },
  { id: "acme/llama", gated: true, tokens: [TOKEN], refs: { main: first }, commits: { [first]: { "weights.bin": Buffer.alloc(2_000, 2) } } },
  {
    id: "acme/corrupt",
    refs: { main: first },
    commits: {
      [first]: { "big.bin": Buffer.alloc(4_000, 5), ...Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`small/${i}.txt`, Buffer.from(`s${i}`)])) },
    },
  },
  {
    type: "dataset",
    id: "acme/reviews",
    refs: { main: second },
    commits: { [second]: { "data/train.csv": Buffer.from("a,b\n1,2\n"), "README.md": Buffer.from("# reviews") } },
  },
];

let hub: HubFake;
before(async () => {
  hub = await startHubFake(repos);
});
after(() => hub.close());

async function project(env: NodeJS.ProcessEnv = {}) {
  const cwd = await scratch();
  const cli = (...args: string[]) => runCli(args, { cwd, env: { HF_ENDPOINT: hub.url, ...env } });
  const json = async (...args: string[]) => {
    const r = await cli(...args, "--json");
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, new RegExp(TOKEN));
    return JSON.parse(r.stdout);
  };
  return { cwd, cli, json };
}

async function fetchedFiles(p: Awaited<ReturnType<typeof project>>, spec: string): Promise<Record<string, Buffer>> {
  const root = (await p.json("fetch", spec)).resolved[0].path as string;
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => undefined);
  if (!entries) return { "": await readFile(root) };
  const out: Record<string, Buffer> = {};
  for (const e of entries)
    if (e.isFile() && e.name !== ".SUCCESS")
      out[path.relative(root, path.join(e.parentPath, e.name)).split(path.sep).join("/")] = await readFile(path.join(e.parentPath, e.name));
  return out;
}

describe("import from the Hugging Face Hub (fake Hub)", () => {
  it("a repo at a branch: every file byte-identical (LFS from the CDN, tree pages followed), recorded at its commit sha; the token never leaves the Hub", async () => {
    const p = await project({ HF_TOKEN: TOKEN });
    const r = await p.json("import", "hf://acme/bert@main", "bert");
    assert.equal(r.published, true);
    assert.equal(r.source, "hf://acme/bert@main");
    assert.deepEqual(await fetchedFiles(p, "bert"), model);
    const meta = await p.json("show", "bert");
    assert.deepEqual(
      { ...meta.assetkit.source.import, fingerprint: undefined },
      { uri: "hf://acme/bert@main", revision: "main", commit: first, fingerprint: undefined },
    );
    const cdn = hub.requests.filter((q) => q.host === "cdn");
    assert.ok(cdn.length >= 2 && cdn.every((q) => !q.authorized && q.status < 300), "LFS files came from the CDN, without the token");
    assert.ok(
      hub.requests.some((q) => q.url.includes("cursor=")),
      "the tree's second page was read",
    );
    assert.doesNotMatch(JSON.stringify(meta), new RegExp(TOKEN));
  });

  it("--include/--exclude, a sub-folder and a single file", async () => {
    const p = await project();
    await p.json("import", "hf://acme/bert", "filtered", "--include", "*.json", "--include", "onnx/**", "--exclude", "onnx/*.txt");
    assert.deepEqual(Object.keys(await fetchedFiles(p, "filtered")).sort(), ["config.json", "onnx/model.onnx"]);
    await p.json("import", "hf://acme/bert@v1/onnx", "onnx");
    assert.deepEqual(await fetchedFiles(p, "onnx"), { "model.onnx": model["onnx/model.onnx"] });
    await p.json("import", "hf://acme/bert/model.safetensors", "weights");
    assert.deepEqual(await fetchedFiles(p, "weights"), { "": weights });
    await p.json("import", "hf://datasets/acme/reviews/data", "reviews");
    assert.deepEqual(Object.keys(await fetchedFiles(p, "reviews")), ["train.csv"]);
  });

  it("--if-changed: the same commit publishes nothing and downloads nothing; a moved branch publishes", async () => {
    const p = await project();
    assert.equal((await p.json("import", "hf://acme/bert@main", "pinned")).version, "1.0.0");
    const before = hub.requests.length;
    const again = await p.json("import", "hf://acme/bert@main", "pinned", "--if-changed");
    assert.deepEqual([again.version, again.published], ["1.0.0", false]);
    assert.ok(!hub.requests.slice(before).some((q) => q.url.includes("/resolve/")), "no file downloaded");
    repos[0]!.refs.main = second;
    try {
      const moved = await p.json("import", "hf://acme/bert@main", "pinned", "--if-changed");
      assert.deepEqual([moved.version, moved.published], ["1.1.0", true]);
      assert.equal((await p.json("show", "pinned")).assetkit.source.import.commit, second);
    } finally {
      repos[0]!.refs.main = first;
    }
  });

  it("an LFS file whose bytes do not match the Hub's sha256 exits 1; nothing published, the other downloads stopped and the temp folder removed", async () => {
    const tmp = await scratch();
    const p = await project({ TMPDIR: tmp });
    hub.corrupt(createHash("sha256").update(Buffer.alloc(4_000, 5)).digest("hex"));
    const r = await p.cli("import", "hf://acme/corrupt", "corrupt");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: integrity check failed for big\.bin of acme\/corrupt@[0-9a-f]{12}: expected 4000 bytes with sha256/);
    assert.equal((await p.cli("list", "corrupt")).code, 1, "no version");
    assert.deepEqual(await readdir(tmp), []);
  });

  it("429 answers are waited out per Retry-After", async () => {
    const p = await project();
    hub.rateLimit(3, 1);
    const before = hub.requests.length;
    assert.equal((await p.json("import", "hf://acme/bert/config.json", "limited")).published, true);
    assert.equal(hub.requests.slice(before).filter((q) => q.status === 429).length, 3);
  });

  it("503s are retried within ASSETKIT_RETRIES (the store layers' budget); with ASSETKIT_RETRIES=0 the first fails the import", async () => {
    hub.unavailable(2);
    let before = hub.requests.length;
    assert.equal((await (await project()).json("import", "hf://acme/bert/config.json", "flaky")).published, true);
    assert.equal(hub.requests.slice(before).filter((q) => q.status === 503).length, 2);

    hub.unavailable(1);
    before = hub.requests.length;
    const r = await (await project({ ASSETKIT_RETRIES: "0" })).cli("import", "hf://acme/bert/config.json", "flaky");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: the Hub answered 503 Service Unavailable for revision main of acme\/bert\n/);
    assert.deepEqual(
      hub.requests.slice(before).map((q) => q.status),
      [503],
      "one request, not tried again",
    );
  });

  it("a gated repo: without a token exit 1 'needs HF_TOKEN'; with a token lacking access, exit 1 saying so; with access, imported", async () => {
    const anonymous = await (await project()).cli("import", "hf://acme/llama", "llama");
    assert.equal(anonymous.code, 1);
    assert.match(anonymous.stderr, /^error: acme\/llama needs HF_TOKEN: the Hub answered 401 \(a gated repo\)/);
    const denied = await (await project({ HF_TOKEN: "hf_other" })).cli("import", "hf://acme/llama", "llama");
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /HF_TOKEN has no access to the gated repo acme\/llama/);
    assert.doesNotMatch(denied.stderr, /hf_other/);
    assert.equal((await (await project({ HF_TOKEN: TOKEN })).json("import", "hf://acme/llama", "llama")).published, true);
  });

  it("a missing revision, a missing repo and a bad URI fail clearly", async () => {
    const p = await project();
    const rev = await p.cli("import", "hf://acme/bert@nope", "x");
    assert.equal(rev.code, 1);
    assert.match(rev.stderr, /^error: acme\/bert has no revision nope on the Hub\n$/);
    const repo = await p.cli("import", "hf://acme/missing", "x");
    assert.equal(repo.code, 1);
    assert.match(repo.stderr, /acme\/missing needs HF_TOKEN/);
    assert.equal((await p.cli("import", "hf://just-a-name", "x")).code, 2);
    const sub = await p.cli("import", "hf://acme/bert/no/such", "x");
    assert.equal(sub.code, 1);
    assert.match(sub.stderr, /has no no\/such/);
  });
});
