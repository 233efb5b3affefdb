// Fault-injection conformance: every backend of the matrix, reached through one fault proxy (test/helpers), meets
// refused connections, resets and stalls mid-body, an idle endpoint, 503 with Retry-After, 500s, bad credentials, a
// missing bucket and lost responses to conditional writes. Each case checks the outcome (success after retries, or
// the right error code), a bounded time to fail under the small budget below, no secret in the message, the cause
// or the stack, and no partial local file. The file store has no network: it runs the cases that apply to it.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, afterEach, beforeEach, describe, it } from "node:test";
import { AssetsDir } from "../../src/local/assets-dir.ts";
import { prepareInput } from "../../src/registry/manifest.ts";
import { Registry } from "../../src/registry/registry.ts";
import { parseSpec } from "../../src/registry/spec.ts";
import { StoreError, type Store } from "../../src/store/store.ts";
import { DEFAULT_TUNING, type Tuning } from "../../src/store/tuning.ts";
import { Transfers, transferSettings } from "../../src/transfer/engine.ts";
import { writeTree } from "../helpers/cli.ts";
import { FaultProxy, closedPort, type Fault } from "../helpers/fault-proxy.ts";
import type { FaultTarget } from "./factory.ts";
import { factories, skipReason } from "./stores.ts";
import { TEST_SETTINGS } from "../helpers/settings.ts";

/** Small budgets, so failing cases end quickly: 3 tries, 1 s of silence each. */
const BUDGET: Tuning = { ...DEFAULT_TUNING, concurrency: 4, partSize: 5 * 1024 * 1024, retries: 2, idleTimeoutMs: 1_000, timeoutMs: 30_000 };
/** Longest backoff of the budget (two pauses, each at most 1 s: Retry-After 1 s or 0.2 s × 2^n). */
const BACKOFF_MS = BUDGET.retries * 1_000;
/** The measured bound of a failing case: every try spends its idle timeout, plus backoff, plus a margin for a loaded CI machine. */
const FAIL_BOUND_MS = (BUDGET.retries + 1) * BUDGET.idleTimeoutMs + BACKOFF_MS + 6_000;

const worst = new Map<string, number>();

/** Runs a case that must fail, and checks it failed within FAIL_BOUND_MS, for good, without printing a secret. */
async function fails(
  backend: string,
  secrets: readonly string[],
  task: () => Promise<unknown>,
  code: StoreError["code"] | "any" = "unavailable",
  label = "the task",
): Promise<StoreError> {
  const started = Date.now();
  const err = await task().then(
    (got) => assert.fail(`expected ${label} to fail, got ${JSON.stringify(got)}`),
    (e: unknown) => e,
  );
  const elapsed = Date.now() - started;
  worst.set(backend, Math.max(worst.get(backend) ?? 0, elapsed));
  assert.ok(elapsed < FAIL_BOUND_MS, `took ${elapsed} ms, bound ${FAIL_BOUND_MS} ms`);
  assert.ok(err instanceof StoreError, String((err as Error)?.stack ?? err));
  if (code !== "any") assert.equal(err.code, code, err.message);
  assert.equal(err.temporary, false, "a failure leaving the layers is persistent");
  assert.ok(err.op !== undefined, "names its operation");
  assert.ok(err.message.startsWith(`${err.message.split(": cannot ")[0]}: cannot `), err.message);
  assertNoSecret(err, secrets);
  return err;
}

function assertNoSecret(err: StoreError, secrets: readonly string[]): void {
  const printed = [err.message, err.stack ?? "", String((err.cause as Error | undefined)?.stack ?? err.cause ?? ""), JSON.stringify(err.cause ?? null)].join(
    "\n",
  );
  for (const secret of secrets) {
    assert.ok(!printed.includes(secret) && !printed.includes(encodeURIComponent(secret)), `a secret is printed:\n${printed}`);
  }
}

function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** Requests for the data of version 1.0.0 (not its meta, not the index), whatever the backend's URL shape. */
function dataRequest(req: { method?: string; url?: string }): boolean {
  const url = decodeURIComponent(req.url ?? "");
  return req.method === "GET" && /\/1\.0\.0(?:[/?]|$)/.test(url) && !url.includes(".meta");
}

/** Publishes a one-file asset `m` through `seed`, and fetches it through `store` into a fresh assets dir. */
async function publishAndFetch(seed: Store, store: Store, data: Buffer): Promise<{ fetch: () => Promise<string>; assets: string }> {
  const input = path.join(await writeTree(await mkdtemp(path.join(tmpdir(), "assetkit-in-")), { "model.bin": data }), "model.bin");
  await new Registry(seed, { settings: TEST_SETTINGS, versioning: "semver" }).publish({
    name: "m",
    input: await prepareInput(input),
    createdBy: "test",
    source: {},
    metadata: {},
  });
  const assets = await mkdtemp(path.join(tmpdir(), "assetkit-assets-"));
  const fetch = async (): Promise<string> => {
    const reader = new Registry(store, { settings: TEST_SETTINGS, versioning: "semver" });
    const dir = new AssetsDir(assets, new Transfers(transferSettings(BUDGET)));
    const r = await reader.resolve(parseSpec("m:1.0.0"));
    return (await dir.materialise(r.name, r.version, r.meta, (rel, range) => reader.openFile(r.name, r.version, rel, range))).path;
  };
  return { fetch, assets };
}

/** Every file under `dir` (a failed fetch must leave none: no partial download, no temp file). */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

const S3_SLOW_DOWN = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';

for (const factory of factories) {
  const target: FaultTarget | undefined = factory.faults;
  const name = factory.name;

  describe(`fault conformance: ${name}`, { skip: skipReason(factory) }, () => {
    after(() => {
      console.log(`fault suite, ${name}: worst time to fail ${worst.get(name) ?? 0} ms (bound ${FAIL_BOUND_MS} ms)`);
    });

    if (!target) {
      // A store without a network: no refusals, resets or stalls; its failures are persistent at once.
      it("a failure is never retried: persistent at once, in context, within the bound", async () => {
        const { store } = await factory.create();
        await store.write("blocker", Buffer.from("a file where a folder is needed"));
        const err = await fails(name, [], () => store.write("blocker/inside", Buffer.from("x")), "failed");
        assert.equal(err.attempts, 1);
        assert.match(err.message, /: cannot write blocker\/inside: /);
      });

      it("a missing object is not-found on openRead and copy", async () => {
        const { store } = await factory.create();
        await fails(name, [], () => store.openRead("absent"), "not-found");
        await fails(name, [], () => store.copy("absent", "elsewhere"), "not-found");
      });

      it("a fetch whose data was altered fails and leaves no partial local file", async () => {
        const { store, seed } = await factory.create();
        const { fetch, assets } = await publishAndFetch(seed, store, randomBytes(64 * 1024));
        await seed.write("m/1.0.0", randomBytes(64 * 1024));
        await assert.rejects(fetch(), /integrity check failed/);
        assert.deepEqual(await filesUnder(assets), []);
      });
      return;
    }

    // A fresh proxy per case: no connection a case left stalled or half-closed meets the next one.
    let proxy: FaultProxy;
    beforeEach(async () => {
      proxy = await FaultProxy.start(target.upstream());
    });
    afterEach(async () => {
      await proxy.stop();
    });
    const inject = (fault: Fault, times?: number, when?: (req: { method?: string; url?: string }) => boolean) => {
      proxy.inject({ fault, ...(times !== undefined ? { times } : {}), ...(when ? { when } : {}) });
    };

    it("connection refused: every operation fails unavailable after its retries, within the bound", async () => {
      const { store, secrets } = await target.open(`http://127.0.0.1:${await closedPort()}`, BUDGET);
      const ops: [string, () => Promise<unknown>][] = [
        ["head", () => store.head("k")],
        ["read", () => store.read("k")],
        ["openRead", () => store.openRead("k")],
      ];
      if (store.listable)
        ops.push([
          "list",
          async () => {
            for await (const _ of store.list("")) void _;
          },
        ]);
      if (store.writable) ops.push(["write", () => store.write("k", Buffer.from("x"), { ifAbsent: true })]);
      for (const [op, task] of ops) {
        const err = await fails(name, secrets, task, "unavailable", op);
        assert.equal(err.attempts, BUDGET.retries + 1, `${op}: ${err.message}`);
        assert.match(err.message, /gave up after 3 tries/);
      }
    });

    it("503 with Retry-After, twice, then success: the pauses follow Retry-After", async () => {
      const { store, seed } = await target.open(proxy.url, BUDGET);
      await seed.write("k", Buffer.from("value"));
      inject({ kind: "status", status: 503, headers: { "retry-after": "1" }, body: S3_SLOW_DOWN }, 2);
      const started = Date.now();
      assert.equal((await store.read("k"))?.data.toString(), "value");
      assert.equal(proxy.faulted.length, 2);
      assert.ok(Date.now() - started >= 1_900, "two Retry-After: 1 pauses");
    });

    it("500s that persist: unavailable after retries + 1 tries, within the bound", async () => {
      const { store, seed, secrets } = await target.open(proxy.url, BUDGET);
      await seed.write("k", Buffer.from("value"));
      inject({ kind: "status", status: 500, body: "<Error><Code>InternalError</Code></Error>" });
      const err = await fails(name, secrets, () => store.head("k"));
      assert.equal(err.attempts, BUDGET.retries + 1);
      assert.equal(proxy.faulted.length, BUDGET.retries + 1, "no retry loop multiplies the tries");
    });

    for (const [fault, what] of [
      [{ kind: "reset" }, "a reset mid-body"],
      [{ kind: "stall-body" }, "a body stalled past the idle timeout"],
    ] as const) {
      it(`${what} is resumed by the transfer engine: the fetch succeeds`, async () => {
        const { store, seed } = await target.open(proxy.url, BUDGET);
        const data = randomBytes(256 * 1024);
        const { fetch } = await publishAndFetch(seed, store, data);
        inject(fault, 1, dataRequest);
        const file = await fetch();
        assert.equal(proxy.faulted.length, 1);
        assert.equal(sha256(await readFile(file)), sha256(data));
      });
    }

    it("an idle endpoint (accepts, never answers): fetch fails within (retries + 1) × idle timeout + backoff", async () => {
      const { store, seed, secrets } = await target.open(proxy.url, BUDGET);
      const { fetch, assets } = await publishAndFetch(seed, store, randomBytes(1024));
      inject({ kind: "stall" });
      const err = await fails(name, secrets, fetch);
      assert.match(err.message, /no answer for 1 s/);
      assert.equal(err.attempts, BUDGET.retries + 1);
      assert.deepEqual(await filesUnder(assets), []);
    });

    it("data that keeps stalling: the fetch fails within the bound and leaves no partial local file", async () => {
      const { store, seed, secrets } = await target.open(proxy.url, BUDGET);
      const { fetch, assets } = await publishAndFetch(seed, store, randomBytes(256 * 1024));
      inject({ kind: "stall-body" }, undefined, dataRequest);
      const err = await fails(name, secrets, fetch);
      assert.match(err.message, /no data for 1 s|no answer for 1 s/);
      assert.deepEqual(await filesUnder(assets), []);
    });

    it("bad credentials: auth at once (not retried), no secret in the message, cause or stack", async () => {
      const { store, secrets } = await target.open(proxy.url, BUDGET, { badCredentials: true });
      // Servers that check no credentials (fake-gcs-server, a static server) answer 401 through the proxy.
      if (name.startsWith("gcs") || name === "http") inject({ kind: "status", status: 401, body: '{"error":{"code":401,"message":"Invalid Credentials"}}' });
      const read = await fails(name, secrets, () => store.read("k"), "auth", "read");
      assert.equal(read.attempts, 1);
      await fails(name, secrets, () => store.head("k"), "auth", "head");
      if (store.listable)
        await fails(
          name,
          secrets,
          async () => {
            for await (const _ of store.list("")) void _;
          },
          "auth",
          "list",
        );
      if (store.writable) await fails(name, secrets, () => store.write("k", Buffer.from("x"), { ifAbsent: true }), "auth", "write");
    });

    it("a missing bucket is not-found on every operation", async (t) => {
      const probe = await target.open(proxy.url, BUDGET);
      if (!probe.store.writable) return t.skip("an HTTP store has no bucket");
      const { store, secrets } = await target.open(proxy.url, BUDGET, { bucket: `no-such-bucket-${process.pid}` });
      const ops: [string, () => Promise<unknown>][] = [
        ["head", () => store.head("k")],
        ["read", () => store.read("k")],
        ["openRead", () => store.openRead("k")],
        [
          "list",
          async () => {
            for await (const _ of store.list("")) void _;
          },
        ],
        ["write", () => store.write("k", Buffer.from("x"))],
        ["conditional write", () => store.write("k", Buffer.from("x"), { ifAbsent: true })],
        ["copy", () => store.copy("k", "k2")],
        ["delete", () => store.delete("k")],
      ];
      for (const [op, task] of ops) {
        const err = await fails(name, secrets, task, "any", op);
        assert.equal(err.code, "not-found", `${op}: ${err.message}`);
        assert.match(err.message, /no-such-bucket|does not exist/, op);
      }
    });

    it("a conditional write whose response is lost reports its own write; a real conflict is still refused", async (t) => {
      const { store, seed } = await target.open(proxy.url, BUDGET);
      if (!store.writable) return t.skip("a read-only store");
      const writes = (req: { method?: string }) => req.method === "PUT" || req.method === "POST";
      inject({ kind: "drop-response" }, 1, writes);
      assert.equal(await store.write("claim", Buffer.from("mine"), { ifAbsent: true }), true);
      assert.equal(proxy.faulted.length, 1, "the first answer was lost");
      assert.equal((await seed.read("claim"))?.data.toString(), "mine");
      assert.equal(await store.write("claim", Buffer.from("theirs"), { ifAbsent: true }), false, "a genuine conflict");

      const current = await seed.read("claim");
      inject({ kind: "drop-response" }, 1, writes);
      assert.equal(await store.write("claim", Buffer.from("swapped"), { ifMatch: current!.etag }), true, "compare-and-swap after a lost answer");
      assert.equal((await seed.read("claim"))?.data.toString(), "swapped");
      assert.equal(await store.write("claim", Buffer.from("stale"), { ifMatch: current!.etag }), false, "a stale etag is refused");

      // Our try never arrives, another writer's does meanwhile: that is a conflict, not our own write.
      inject({ kind: "drop-request", meanwhile: () => seed.write("second", Buffer.from("theirs")) }, 1, writes);
      assert.equal(await store.write("second", Buffer.from("mine"), { ifAbsent: true }), false);
      assert.equal((await seed.read("second"))?.data.toString(), "theirs");
    });
  });
}
