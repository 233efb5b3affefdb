// Fault-injection conformance: every layout of the matrix (layouts.ts: each Store under the key-value layout, and
// OCI registries), reached through one fault proxy (test/helpers), meets refused connections, resets and stalls
// mid-body, an idle endpoint, 503 with Retry-After, 500s, bad credentials, a missing bucket and lost responses to
// writes. A key-value entry is tested by its Store's operations, an OCI entry by its registry's (FaultSubject). Each
// case checks the outcome (success after retries, or the right error code), a bounded time to fail under the small
// budget below, no secret in the message, the cause or the stack, and no partial local file. The file store has no
// network: it runs the cases that apply to it.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, afterEach, beforeEach, describe, it } from "node:test";
import { AssetsDir } from "../../src/local/assets-dir.ts";
import type { AssetRegistry, PublishRequest } from "../../src/registry/asset-registry.ts";
import { prepareInput } from "../../src/registry/manifest.ts";
import { parseSpec } from "../../src/registry/spec.ts";
import { StoreError, type Store } from "../../src/store/store.ts";
import { DEFAULT_TUNING, type Tuning } from "../../src/store/tuning.ts";
import { Transfers, transferSettings } from "../../src/transfer/engine.ts";
import { writeTree } from "../helpers/cli.ts";
import { FaultProxy, closedPort, type Fault } from "../helpers/fault-proxy.ts";
import { skipReason, uniquePrefix } from "./factory.ts";
import { keyValueRegistry, layouts, type LayoutFaultTarget } from "./layouts.ts";

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

type Request = { method?: string; url?: string };

/**
 * What a case acts on, in its layout's terms: a key-value entry's Store operations (its store through the proxy,
 * its seed direct), or an OCI entry's registry operations (a namespace through the proxy, a writer direct).
 */
interface FaultSubject {
  secrets: readonly string[];
  /** Every kind of request the entry makes, one operation each: all fail alike when the server is out of reach. */
  operations: [string, () => Promise<unknown>][];
  /** An operation of exactly one request (when it succeeds). */
  probe(): Promise<unknown>;
  /** Stores something directly; returns a read of it through the proxy, and what that read must give. */
  stored(): Promise<{ read: () => Promise<unknown>; expected: unknown }>;
  /** A writer reaching the server directly, and fresh readers through the proxy. */
  writer: AssetRegistry;
  reader(): AssetRegistry;
  /** Whether a request reads the one file of m:1.0.0, whose sha256 is `sha256`. */
  isFileRead(req: Request, sha256: string): boolean;
  /** The stores of a key-value entry, for the cases about Store operations themselves. */
  keyValue?: { store: Store; seed: Store };
}

const listAll = async (store: Store) => {
  for await (const _ of store.list("")) void _;
};

async function subjectOf(faults: LayoutFaultTarget, endpoint: string, how: { bucket?: string; badCredentials?: boolean } = {}): Promise<FaultSubject> {
  if (faults.layout === "key-value") {
    const { store, seed, secrets } = await faults.target.open(endpoint, BUDGET, how);
    const operations: [string, () => Promise<unknown>][] = [
      ["head", () => store.head("k")],
      ["read", () => store.read("k")],
      ["openRead", () => store.openRead("k")],
    ];
    if (store.listable) operations.push(["list", () => listAll(store)]);
    if (store.writable) operations.push(["write", () => store.write("k", Buffer.from("x"), { ifAbsent: true })]);
    return {
      secrets,
      operations,
      probe: () => store.head("k"),
      async stored() {
        await seed.write("k", Buffer.from("value"));
        return { read: async () => (await store.read("k"))?.data.toString(), expected: "value" };
      },
      writer: keyValueRegistry(seed),
      reader: () => keyValueRegistry(store),
      isFileRead: dataRequest,
      keyValue: { store, seed },
    };
  }
  const { reader, writer, secrets } = faults.open(endpoint, BUDGET, how);
  const registry = reader();
  return {
    secrets,
    // A missing asset or version is no failure of a registry read: each of these sends its request first.
    operations: [
      ["versions (tag list)", () => registry.versions("k")],
      ["assets (catalog)", () => registry.assets()],
      ["meta (manifest)", () => registry.meta("k", "1.0.0")],
      ["openFile (manifest, blob)", () => registry.openFile("k", "1.0.0", "")],
      ["publish", async () => registry.publish(await oneFileRequest("k", Buffer.from("x")))],
    ],
    probe: () => registry.versions("k"),
    async stored() {
      await writer.publish(await oneFileRequest("k", Buffer.from("value")));
      return { read: async () => (await reader().resolve(parseSpec("k"))).version, expected: "1.0.0" };
    },
    writer,
    reader,
    isFileRead: (req, sha256) => req.method === "GET" && (req.url ?? "").includes(`/blobs/sha256:${sha256}`),
  };
}

/** A publish request of a one-file asset `name` holding `data`. */
async function oneFileRequest(name: string, data: Buffer): Promise<PublishRequest> {
  const input = path.join(await writeTree(await mkdtemp(path.join(tmpdir(), "assetkit-in-")), { "model.bin": data }), "model.bin");
  return { name, input: await prepareInput(input), createdBy: "test", source: {}, metadata: {} };
}

/** Publishes a one-file asset `m` through the writer, and fetches it through a fresh reader into a fresh assets dir. */
async function publishAndFetch(subject: Pick<FaultSubject, "writer" | "reader">, data: Buffer): Promise<{ fetch: () => Promise<string>; assets: string }> {
  await subject.writer.publish(await oneFileRequest("m", data));
  const assets = await mkdtemp(path.join(tmpdir(), "assetkit-assets-"));
  const fetch = async (): Promise<string> => {
    const reader = subject.reader();
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

for (const factory of layouts) {
  const faults = factory.faults;
  const name = factory.name;

  describe(`fault conformance: ${name}`, { skip: skipReason(factory) }, () => {
    after(() => {
      console.log(`fault suite, ${name}: worst time to fail ${worst.get(name) ?? 0} ms (bound ${FAIL_BOUND_MS} ms)`);
    });

    if (!faults) {
      // A store without a network: no refusals, resets or stalls; its failures are persistent at once.
      it("a failure is never retried: persistent at once, in context, within the bound", async () => {
        const { store } = (await factory.create()).keyValue!;
        await store.write("blocker", Buffer.from("a file where a folder is needed"));
        const err = await fails(name, [], () => store.write("blocker/inside", Buffer.from("x")), "failed");
        assert.equal(err.attempts, 1);
        assert.match(err.message, /: cannot write blocker\/inside: /);
      });

      it("a missing object is not-found on openRead and copy", async () => {
        const { store } = (await factory.create()).keyValue!;
        await fails(name, [], () => store.openRead("absent"), "not-found");
        await fails(name, [], () => store.copy("absent", "elsewhere"), "not-found");
      });

      it("a fetch whose data was altered fails and leaves no partial local file", async () => {
        const { store, seed } = (await factory.create()).keyValue!;
        const { fetch, assets } = await publishAndFetch({ writer: keyValueRegistry(seed), reader: () => keyValueRegistry(store) }, randomBytes(64 * 1024));
        await seed.write("m/1.0.0", randomBytes(64 * 1024));
        await assert.rejects(fetch(), /integrity check failed/);
        assert.deepEqual(await filesUnder(assets), []);
      });
      return;
    }

    // A fresh proxy per case: no connection a case left stalled or half-closed meets the next one.
    let proxy: FaultProxy;
    beforeEach(async () => {
      proxy = await FaultProxy.start(faults.layout === "oci" ? faults.upstream() : faults.target.upstream());
    });
    afterEach(async () => {
      await proxy.stop();
    });
    const inject = (fault: Fault, times?: number, when?: (req: Request) => boolean) => {
      proxy.inject({ fault, ...(times !== undefined ? { times } : {}), ...(when ? { when } : {}) });
    };

    it("connection refused: every operation fails unavailable after its retries, within the bound", async () => {
      const { operations, secrets } = await subjectOf(faults, `http://127.0.0.1:${await closedPort()}`);
      for (const [op, task] of operations) {
        const err = await fails(name, secrets, task, "unavailable", op);
        assert.equal(err.attempts, BUDGET.retries + 1, `${op}: ${err.message}`);
        assert.match(err.message, /gave up after 3 tries/);
      }
    });

    it("503 with Retry-After, twice, then success: the pauses follow Retry-After", async () => {
      const { read, expected } = await (await subjectOf(faults, proxy.url)).stored();
      inject({ kind: "status", status: 503, headers: { "retry-after": "1" }, body: S3_SLOW_DOWN }, 2);
      const started = Date.now();
      assert.equal(await read(), expected);
      assert.equal(proxy.faulted.length, 2);
      assert.ok(Date.now() - started >= 1_900, "two Retry-After: 1 pauses");
    });

    it("500s that persist: unavailable after retries + 1 tries, within the bound", async () => {
      const { probe, secrets } = await subjectOf(faults, proxy.url);
      inject({ kind: "status", status: 500, body: "<Error><Code>InternalError</Code></Error>" });
      const err = await fails(name, secrets, probe);
      assert.equal(err.attempts, BUDGET.retries + 1);
      assert.equal(proxy.faulted.length, BUDGET.retries + 1, "no retry loop multiplies the tries");
    });

    for (const [fault, what] of [
      [{ kind: "reset" }, "a reset mid-body"],
      [{ kind: "stall-body" }, "a body stalled past the idle timeout"],
    ] as const) {
      it(`${what} is resumed by the transfer engine: the fetch succeeds`, async () => {
        const subject = await subjectOf(faults, proxy.url);
        const data = randomBytes(256 * 1024);
        const { fetch } = await publishAndFetch(subject, data);
        inject(fault, 1, (req) => subject.isFileRead(req, sha256(data)));
        const file = await fetch();
        assert.equal(proxy.faulted.length, 1);
        assert.equal(sha256(await readFile(file)), sha256(data));
      });
    }

    it("an idle endpoint (accepts, never answers): fetch fails within (retries + 1) × idle timeout + backoff", async () => {
      const subject = await subjectOf(faults, proxy.url);
      const { fetch, assets } = await publishAndFetch(subject, randomBytes(1024));
      inject({ kind: "stall" });
      const err = await fails(name, subject.secrets, fetch);
      assert.match(err.message, /no answer for 1 s/);
      assert.equal(err.attempts, BUDGET.retries + 1);
      assert.deepEqual(await filesUnder(assets), []);
    });

    it("data that keeps stalling: the fetch fails within the bound and leaves no partial local file", async () => {
      const subject = await subjectOf(faults, proxy.url);
      const data = randomBytes(256 * 1024);
      const { fetch, assets } = await publishAndFetch(subject, data);
      inject({ kind: "stall-body" }, undefined, (req) => subject.isFileRead(req, sha256(data)));
      const err = await fails(name, subject.secrets, fetch);
      assert.match(err.message, /no data for 1 s|no answer for 1 s/);
      assert.deepEqual(await filesUnder(assets), []);
    });

    const noCredentials =
      faults.layout === "oci" && !faults.checksCredentials ? "this registry checks no credentials: the case runs on the one with token auth" : undefined;
    it("bad credentials: auth at once (not retried), no secret in the message, cause or stack", { skip: noCredentials }, async () => {
      const { operations, secrets } = await subjectOf(faults, proxy.url, { badCredentials: true });
      // Servers that check no credentials (fake-gcs-server, a static server) answer 401 through the proxy.
      if (name.startsWith("gcs") || name === "http") inject({ kind: "status", status: 401, body: '{"error":{"code":401,"message":"Invalid Credentials"}}' });
      for (const [op, task] of operations) {
        const err = await fails(name, secrets, task, "auth", op);
        assert.equal(err.attempts, 1, `${op}: ${err.message}`);
      }
    });

    it(
      "a missing bucket is not-found on every operation",
      { skip: faults.layout === "oci" ? "a registry has no bucket: a repository not there is an asset without versions" : undefined },
      async (t) => {
        const probe = await subjectOf(faults, proxy.url);
        if (!probe.keyValue!.store.writable) return t.skip("an HTTP store has no bucket");
        const { keyValue, secrets } = await subjectOf(faults, proxy.url, { bucket: `no-such-bucket-${process.pid}` });
        const { store } = keyValue!;
        const ops: [string, () => Promise<unknown>][] = [
          ["head", () => store.head("k")],
          ["read", () => store.read("k")],
          ["openRead", () => store.openRead("k")],
          ["list", () => listAll(store)],
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
      },
    );

    const writes = (req: Request) => req.method === "PUT" || req.method === "POST";

    it(
      "a conditional write whose response is lost reports its own write; a real conflict is still refused",
      { skip: faults.layout === "oci" ? "a registry has no conditional write: see the OCI case below" : undefined },
      async (t) => {
        const { store, seed } = (await subjectOf(faults, proxy.url)).keyValue!;
        if (!store.writable) return t.skip("a read-only store");
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
      },
    );

    it(
      "a write whose response is lost (blob, claim tag, version tag) is retried: each publish commits one whole version; a rival meanwhile is refused",
      { skip: faults.layout === "key-value" ? "a key-value store's writes: the conditional-write case above" : undefined },
      async () => {
        const subject = await subjectOf(faults, proxy.url);
        const lost: [string, (req: Request) => boolean][] = [
          ["blob upload", (req) => req.method === "PUT" && (req.url ?? "").includes("/blobs/uploads/")],
          ["claim tag", (req) => req.method === "PUT" && (req.url ?? "").includes("/manifests/_c.")],
          ["version tag", (req) => req.method === "PUT" && /\/manifests\/[0-9]/.test(req.url ?? "")],
        ];
        const published: string[] = [];
        for (const [i, [what, when]] of lost.entries()) {
          inject({ kind: "drop-response" }, 1, when);
          const r = await subject.reader().publish(await oneFileRequest("m", Buffer.from(`lost ${what} ${uniquePrefix()}`)));
          assert.equal(proxy.faulted.length, i + 1, `${what}: its first answer was lost`);
          published.push(r.version);
        }
        assert.deepEqual(published, ["1.0.0", "1.1.0", "1.2.0"], "no false conflict, no claim left live");
        // Our version tag's try never arrives; meanwhile another publisher wants that very version: our claim holds it off.
        let rival: unknown;
        inject(
          {
            kind: "drop-request",
            meanwhile: async () =>
              subject.writer.publish({ ...(await oneFileRequest("m", Buffer.from("theirs"))), version: "2.0.0" }).catch((err: unknown) => (rival = err)),
          },
          1,
          (req) => req.method === "PUT" && (req.url ?? "").includes("/manifests/2.0.0"),
        );
        const ours = await subject.reader().publish({ ...(await oneFileRequest("m", Buffer.from("ours"))), version: "2.0.0" });
        assert.match(String(rival), /m:2\.0\.0 is being published to .* by another run; nothing was changed/);
        assert.equal((await subject.writer.resolveDigest(parseSpec("m:2.0.0"))).digest, ours.digest);
        const reader = subject.reader();
        for (const version of [...published, "2.0.0"]) assert.equal((await reader.resolve(parseSpec(`m:${version}`))).version, version, "each version whole");
      },
    );
  });
}
