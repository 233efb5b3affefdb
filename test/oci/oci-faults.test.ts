// Faults of OCI registries' own (docs/oci.md §10), through the shipped CLI; the fault conformance suite's cases run
// on registries A and C in test/conformance/faults.test.ts. Here: publish and fetch against registry B (no tag
// deletion) behind the fault proxy (throttling on uploads and manifest reads, 500s on uploads and on the commit, the
// config read, slow bodies), and registry C's token server failing on demand. Each either succeeds after retries or
// fails in one line; nothing is half-published (every version tag names a manifest whose blobs all exist) and
// nothing is half-installed.
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { afterEach, beforeEach, describe, it } from "node:test";
import { uniquePrefix } from "../conformance/factory.ts";
import { runCli, scratch, writeTree } from "../helpers/cli.ts";
import { FaultProxy, type Fault } from "../helpers/fault-proxy.ts";

const REGISTRY_B = process.env.ASSETKIT_TEST_OCI_B;
const REGISTRY_C = process.env.ASSETKIT_TEST_OCI_C;
const TOKEN_SERVER = process.env.ASSETKIT_TEST_OCI_C_TOKEN_SERVER;
const unavailable = !REGISTRY_B ? "no OCI registry B (ASSETKIT_TEST_OCI_B): run under node scripts/test.ts" : undefined;
if (unavailable && process.env.ASSETKIT_TEST_ALL_STORES === "1") throw new Error(unavailable);

const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** The fault suite's budget: 2 retries, 1 s idle timeout. */
const BUDGET = { ASSETKIT_RETRIES: "2", ASSETKIT_IDLE_TIMEOUT: "1", ASSETKIT_CONCURRENCY: "4", ASSETKIT_PART_SIZE: "5MiB" };
/** Every try spends its idle timeout, plus backoff, plus a margin for a loaded machine (as in the fault suite). */
const FAIL_BOUND_MS = 3 * 1_000 + 2 * 1_000 + 6_000;

const blobUpload = (req: { method?: string; url?: string }) => req.method === "PUT" && (req.url ?? "").includes("/blobs/uploads/");
const blobRead = (req: { method?: string; url?: string }) => req.method === "GET" && /\/blobs\/sha256:/.test(req.url ?? "");
const manifestRead = (req: { method?: string; url?: string }) => req.method === "GET" && (req.url ?? "").includes("/manifests/");
const versionCommit = (req: { method?: string; url?: string }) => req.method === "PUT" && /\/manifests\/[0-9]/.test(req.url ?? "");

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

/** Checks, on the registry itself, that every version tag of `repo` names a manifest whose blobs all exist. */
async function versionsAreWhole(registry: string, repo: string): Promise<string[]> {
  const url = (p: string) => new URL(`/v2/${repo}/${p}`, registry);
  const listed = await fetch(url("tags/list"));
  const tags = listed.status === 404 ? [] : ((await listed.json()) as { tags: string[] }).tags;
  const versions = tags.filter((t) => /^[0-9]/.test(t));
  for (const version of versions) {
    const manifest = (await (await fetch(url(`manifests/${version}`), { headers: { accept: MANIFEST } })).json()) as {
      config: { digest: string };
      layers: { digest: string }[];
    };
    for (const { digest } of [manifest.config, ...manifest.layers]) {
      assert.equal((await fetch(url(`blobs/${digest}`), { method: "HEAD" })).status, 200, `${repo}:${version} blob ${digest}`);
    }
  }
  return versions.sort();
}

describe("faults on oci:// (registry B behind the fault proxy)", { skip: unavailable }, () => {
  let proxy: FaultProxy;
  let cwd: string;
  let namespace: string;
  let cli: (...args: string[]) => ReturnType<typeof runCli>;
  /** The weights file's blob: what the transfer engine reads (the config, a small blob, is read whole first). */
  let weightsBlob: string;
  beforeEach(async () => {
    proxy = await FaultProxy.start(REGISTRY_B!);
    cwd = await scratch();
    namespace = uniquePrefix();
    const store = `oci://${new URL(proxy.url).host}/${namespace}?settle=0`;
    cli = (...args) => runCli(args, { cwd, env: { ASSETKIT_STORE: store, ...BUDGET } });
    const weights = randomBytes(256 * 1024);
    weightsBlob = `sha256:${createHash("sha256").update(weights).digest("hex")}`;
    await writeTree(cwd, { "model/weights.bin": weights, "model/config.json": '{"a":1}' });
  });
  afterEach(async () => {
    await proxy.stop();
  });
  const inject = (fault: Fault, times: number | undefined, when: (req: { method?: string; url?: string }) => boolean) =>
    proxy.inject({ fault, ...(times !== undefined ? { times } : {}), when });
  const publish = async () => {
    const r = await cli("publish", "model", "m", "--json");
    assert.equal(r.code, 0, r.stderr);
  };
  const assets = () => path.join(cwd, "assets");
  const fetchModel = () => cli("fetch", "m:1", "--assets-dir", assets());

  for (const [status, what] of [
    [503, "503 with Retry-After"],
    [429, "429 with Retry-After"],
  ] as const) {
    it(`${what}, twice on a blob upload and twice on a manifest read: publish and fetch succeed, pausing as told`, async () => {
      inject(
        { kind: "status", status, headers: { "retry-after": "1", "content-type": "application/json" }, body: '{"errors":[{"code":"TOOMANYREQUESTS"}]}' },
        2,
        blobUpload,
      );
      const started = Date.now();
      await publish();
      assert.equal(proxy.faulted.length, 2);
      // The two faulted uploads may run side by side (two files, concurrency 4): at least one whole pause.
      assert.ok(Date.now() - started >= 950, "Retry-After: 1 waited for");
      inject({ kind: "status", status, headers: { "retry-after": "1" } }, 2, manifestRead);
      const fetched = await fetchModel();
      assert.equal(fetched.code, 0, fetched.stderr);
      assert.equal(proxy.faulted.length, 4);
      assert.deepEqual(await versionsAreWhole(REGISTRY_B!, `${namespace}/m`), ["1.0.0"]);
    });
  }

  it("500s that persist on blob uploads: publish fails in one line within the bound; no version, nothing to fetch", async () => {
    inject({ kind: "status", status: 500, body: '{"errors":[{"code":"UNKNOWN"}]}' }, undefined, blobUpload);
    const started = Date.now();
    const r = await cli("publish", "model", "m");
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr.trim(), /^error: [^\n]*gave up after 3 tries[^\n]*$/);
    assert.ok(Date.now() - started < FAIL_BOUND_MS, `${Date.now() - started} ms`);
    assert.deepEqual(await versionsAreWhole(REGISTRY_B!, `${namespace}/m`), []);
  });

  it("500s that persist on the commit (the version tag PUT): one line, no version tag, and its claim withdrawn so the next publish takes 1.0.0 at once", async () => {
    let failing = true;
    inject({ kind: "status", status: 500, body: '{"errors":[{"code":"UNKNOWN"}]}' }, undefined, (req) => failing && versionCommit(req));
    const r = await cli("publish", "model", "m");
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr.trim(), /^error: [^\n]*1\.0\.0[^\n]*$/);
    assert.deepEqual(await versionsAreWhole(REGISTRY_B!, `${namespace}/m`), []);
    failing = false;
    // A live claim would hold the next publisher off until it is abandoned (minutes); a withdrawn one does not.
    const started = Date.now();
    const next = await cli("publish", "model", "m", "--json");
    assert.equal(next.code, 0, next.stderr);
    assert.equal((JSON.parse(next.stdout) as { version: string }).version, "1.0.0");
    assert.ok(Date.now() - started < 30_000, `${Date.now() - started} ms`);
  });

  it("a reset mid-upload is retried: the publish succeeds and its version is whole", async () => {
    inject({ kind: "reset" }, 1, blobUpload);
    await publish();
    assert.equal(proxy.faulted.length, 1);
    assert.deepEqual(await versionsAreWhole(REGISTRY_B!, `${namespace}/m`), ["1.0.0"]);
  });

  // A reset or a stall on a file's blob, bodies that keep stalling, refusals, idle endpoints, lost write answers and
  // bad credentials run on registries A and C in the fault conformance suite (test/conformance/faults.test.ts); here,
  // the config blob a fetch reads whole first, and slow bodies.
  const configRead = ["the version's config", blobRead] as const;
  const fileRead = ["a file's blob", (req: { method?: string; url?: string }) => blobRead(req) && (req.url ?? "").includes(weightsBlob)] as const;
  for (const [fault, what, targets] of [
    [{ kind: "reset" }, "a reset mid-body", [configRead]],
    [{ kind: "stall-body" }, "a body stalled past the idle timeout", [configRead]],
    [{ kind: "throttle", bytesPerSecond: 64 * 1024 }, "a slow body", [configRead, fileRead]],
  ] as const) {
    for (const [target, when] of targets) {
      it(`${what} on fetch, reading ${target}, is retried or resumed: the fetch succeeds`, async () => {
        await publish();
        inject(fault, 1, when);
        const fetched = await fetchModel();
        assert.equal(fetched.code, 0, fetched.stderr);
        assert.equal(proxy.faulted.length, 1);
        const files = (await filesUnder(assets())).map((f) => path.basename(f));
        assert.ok(files.includes("weights.bin") && files.includes("config.json"), files.join(", "));
      });
    }
  }
});

describe("faults on oci:// with token auth (registry C's token server)", { skip: REGISTRY_C && TOKEN_SERVER ? undefined : "no registry C" }, () => {
  const credentials = () => ({
    ASSETKIT_OCI_USERNAME: process.env.ASSETKIT_TEST_OCI_C_USER!,
    ASSETKIT_OCI_PASSWORD: process.env.ASSETKIT_TEST_OCI_C_PASSWORD!,
  });
  const failTokens = async (n: number, status: number) =>
    assert.equal((await fetch(`${TOKEN_SERVER}/fail?n=${n}&status=${status}`, { method: "POST" })).status, 200);

  it("a token server answering 503 once: retried, the publish succeeds; refusing (401) every time: one line, no secret, no version", async () => {
    const namespace = uniquePrefix();
    const store = `oci://${new URL(REGISTRY_C!).host}/${namespace}?settle=0`;
    const cwd = await scratch();
    await writeTree(cwd, { "model/weights.bin": randomBytes(64 * 1024) });
    const run = (...args: string[]) => runCli(args, { cwd, env: { ASSETKIT_STORE: store, ...BUDGET, ...credentials() } });
    await failTokens(1, 503);
    const ok = await run("publish", "model", "m", "--json");
    assert.equal(ok.code, 0, ok.stderr);
    await failTokens(1000, 401);
    try {
      const refused = await run("publish", "model", "m2");
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr.trim(), /^error: [^\n]+$/);
      assert.ok(!refused.stderr.includes(process.env.ASSETKIT_TEST_OCI_C_PASSWORD!), "no secret printed");
    } finally {
      await failTokens(0, 401);
    }
    const fetched = await run("fetch", "m:1", "--assets-dir", path.join(cwd, "assets"));
    assert.equal(fetched.code, 0, fetched.stderr);
  });
});
