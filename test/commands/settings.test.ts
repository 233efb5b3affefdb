// The environment's settings reach every path that talks to a store, not only the context's own store: sync,
// the storage initializer, import from a bucket prefix and promote --to (streamed), run as a user runs them against
// MinIO behind the counting proxy. With ASSETKIT_CONCURRENCY=1 the proxy never sees two requests at once; with
// ASSETKIT_RETRIES=0 a 503 it answers in the server's place is not tried again. And the one grammar the settings
// and the flags are read by.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { startRequestCounter, type RequestCounter, type RequestRecord } from "../../scripts/request-counter.ts";
import { openS3Store } from "../../src/store/s3/s3.ts";
import { tuningFromEnv } from "../../src/store/tuning.ts";
import { parseSize, parseWholeNumber } from "../../src/base/units.ts";
import { inLayers, skipReason, uniquePrefix } from "../conformance/factory.ts";
import { s3Factory, s3TestEnv } from "../conformance/factories/s3.ts";
import { runCli, scratch, writeTree, type RunResult } from "../helpers/cli.ts";
import { TEST_TUNING } from "../helpers/settings.ts";

const INITIALIZER = path.resolve("dist/storage-initializer.js");
const MiB = 1024 * 1024;
/** Three small files and one of several parts (3 of the default 16 MiB): transfers that could run many requests at once. */
const MODEL = {
  "weights.bin": Buffer.alloc(33 * MiB + 3, 7),
  "config.json": '{"layers":2}',
  "tokenizer/vocab.txt": "a\nb\n",
  "tokenizer/merges.txt": "a b\n",
};
const ONE_AT_A_TIME = { ASSETKIT_CONCURRENCY: "1", ASSETKIT_PART_SIZE: "5MiB" };
const NO_RETRIES = { ASSETKIT_RETRIES: "0" };

describe("the settings apply on every path", { skip: skipReason(s3Factory) }, () => {
  let counter: RequestCounter;
  const bucket = () => process.env.ASSETKIT_TEST_S3_BUCKET!;
  /** A fresh store prefix on MinIO, reached through the counter. */
  const proxied = (prefix = uniquePrefix()) => `s3://${bucket()}/${prefix}?endpoint=${counter.url}`;

  before(async () => {
    counter = await startRequestCounter(process.env.ASSETKIT_TEST_S3_ENDPOINT!);
  });
  after(() => counter.stop());

  async function cli(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<RunResult> {
    return runCli(args, { cwd: cwd ?? (await scratch()), env: { ...s3TestEnv(), ...env } });
  }

  /** A store holding m:1.0.0 (MODEL), published through the counter with the default settings. */
  async function publishedStore(): Promise<string> {
    const store = proxied();
    const cwd = await scratch();
    await writeTree(cwd, Object.fromEntries(Object.entries(MODEL).map(([p, data]) => [`model/${p}`, data])));
    const r = await cli(["publish", "model", "m", "--version", "1.0.0", "--store", store], {}, cwd);
    assert.equal(r.code, 0, r.stderr);
    return store;
  }

  /** Runs a path with one request at a time: it succeeds, and the proxy never saw two requests at once. */
  async function oneAtATime(run: (env: NodeJS.ProcessEnv) => Promise<RunResult>): Promise<void> {
    counter.reset();
    const r = await run(ONE_AT_A_TIME);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(counter.requests().length > 4, "the path made requests through the proxy");
    assert.equal(counter.maxInFlight(), 1, `requests in flight at once with ASSETKIT_CONCURRENCY=1`);
  }

  /** Runs a path whose first request that `match` accepts is answered 503: it fails, and that request was made once. */
  async function notRetried(match: (r: RequestRecord) => boolean, run: (env: NodeJS.ProcessEnv) => Promise<RunResult>): Promise<void> {
    counter.reset();
    counter.failNext(1, match);
    const r = await run(NO_RETRIES);
    const failed = counter.requests().find((q) => q.failed);
    assert.ok(failed, "the proxy answered a 503");
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /503|unavailable|SlowDown/i);
    const again = counter.requests().filter((q) => q.method === failed.method && q.url === failed.url && q.range === failed.range);
    assert.equal(again.length, 1, `${failed.method} ${failed.url} was tried again with ASSETKIT_RETRIES=0`);
  }

  const dataGet = (r: RequestRecord) => r.method === "GET" && r.url.includes("weights.bin");

  it("sync", async () => {
    const store = await publishedStore();
    const sync = async (env: NodeJS.ProcessEnv) => cli(["sync", "m:1.0.0", "--dir", path.join(await scratch(), "served"), "--store", store], env);
    await oneAtATime(sync);
    await notRetried(dataGet, sync);
  });

  it("the storage initializer", async () => {
    const store = await publishedStore();
    const source = `assetkit://${store.replace("://", "/")}#m:1.0.0`;
    const initialize = async (env: NodeJS.ProcessEnv) =>
      runCli([source, path.join(await scratch(), "mnt/models")], { cwd: await scratch(), env: { ...s3TestEnv(), ...env }, cli: INITIALIZER });
    await oneAtATime(initialize);
    await notRetried(dataGet, initialize);
  });

  it("import from a bucket prefix", async () => {
    const prefix = uniquePrefix();
    const seed = inLayers(
      openS3Store(new URL(`s3://${bucket()}/${prefix}?endpoint=${process.env.ASSETKIT_TEST_S3_ENDPOINT}`), { tuning: TEST_TUNING, env: s3TestEnv() }),
    );
    for (const [key, data] of Object.entries(MODEL)) await seed.write(key, Buffer.from(data));
    const source = `s3://${bucket()}/${prefix}/?endpoint=${counter.url}`;
    const importer = (env: NodeJS.ProcessEnv) => cli(["import", source, "m", "--store", proxied()], env);
    await oneAtATime(importer);
    // The source's listing: the first request the import makes of the source store.
    await notRetried((r) => r.method === "GET" && r.url.includes("list-type"), importer);
  });

  it("promote --to (streamed from a local store)", async () => {
    const cwd = await scratch();
    await writeTree(cwd, Object.fromEntries(Object.entries(MODEL).map(([p, data]) => [`model/${p}`, data])));
    const local = path.join(cwd, "local-store");
    assert.equal((await cli(["publish", "model", "m", "--version", "1.0.0", "--store", local], {}, cwd)).code, 0);
    const promote = (env: NodeJS.ProcessEnv) => cli(["promote", "m:1.0.0", "production", "--store", local, "--to", proxied()], env, cwd);
    await oneAtATime(promote);
    // A part of the streamed upload (the store retries its parts itself, by the settings' budget).
    await notRetried((r) => r.method === "PUT" && r.url.includes("weights.bin") && r.url.includes("partNumber="), promote);
  });
});

describe("one grammar for sizes and whole numbers, in flags and in the environment", () => {
  it("sizes: KB/MB/GB are powers of 1000, KiB/MiB/GiB and K/M/G of 1024; ASSETKIT_PART_SIZE keeps reading MB as MiB", () => {
    assert.equal(parseSize("500MB", "--max-size"), 500_000_000);
    assert.equal(parseSize("64M", "--max-size"), 64 * MiB);
    assert.equal(parseSize("1.5KiB", "--max-size"), 1536);
    assert.throws(() => parseSize("20 parsecs", "--max-size"), /^UsageError: bad --max-size "20 parsecs": write a size like/);
    for (const [text, bytes] of [
      ["16MB", 16 * MiB],
      ["5mb", 5 * MiB],
      ["64M", 64 * MiB],
      ["8MiB", 8 * MiB],
      ["8388608", 8 * MiB],
    ] as const) {
      assert.equal(tuningFromEnv({ ASSETKIT_PART_SIZE: text }).partSize, bytes, text);
    }
    assert.throws(() => tuningFromEnv({ ASSETKIT_PART_SIZE: "4MiB" }), /^UsageError: bad ASSETKIT_PART_SIZE "4MiB": write a size from 5MiB to 5GiB/);
  });

  it("whole numbers and durations: the same parser for flags and variables, each bounded and named in its error", () => {
    assert.equal(tuningFromEnv({ ASSETKIT_CONCURRENCY: "1", ASSETKIT_RETRIES: "0" }).retries, 0);
    assert.throws(() => tuningFromEnv({ ASSETKIT_CONCURRENCY: "2.5" }), /^UsageError: bad ASSETKIT_CONCURRENCY "2.5": write a whole number from 1 to 1024$/);
    assert.throws(() => tuningFromEnv({ ASSETKIT_RETRIES: "21" }), /^UsageError: bad ASSETKIT_RETRIES "21": write a whole number from 0 to 20$/);
    assert.throws(() => parseWholeNumber("-1", "--keep-last", 1), /^UsageError: bad --keep-last "-1": write a whole number of at least 1$/);
    assert.equal(tuningFromEnv({ ASSETKIT_IDLE_TIMEOUT: "2.5" }).idleTimeoutMs, 2500);
    assert.equal(tuningFromEnv({ ASSETKIT_TIMEOUT: "5m" }).timeoutMs, 300_000);
    assert.throws(() => tuningFromEnv({ ASSETKIT_IDLE_TIMEOUT: "2h" }), /^UsageError: bad ASSETKIT_IDLE_TIMEOUT "2h": at most 3600 seconds$/);
  });
});
