// gc after publishers killed at spread points (SIGKILL: no cleanup runs), on the file store and on MinIO, through
// the shipped CLI; and after one killed exactly between its meta and its .versions write (held by a proxy).
// ASSETKIT_GC_TRIALS sets the kills per store (the full run: 20); the suite runs fewer.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { watch } from "node:fs";
import { randomBytes } from "node:crypto";
import { mkdir, readdir, utimes, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";
import { ListMultipartUploadsCommand, S3Client } from "@aws-sdk/client-s3";
import type { Store } from "../../src/store/store.ts";
import { s3Factory, s3TestEnv } from "../conformance/factories/s3.ts";
import { factories, skipReason } from "../conformance/stores.ts";
import { CLI, cleanEnv, runCli, scratch, writeTree } from "../helpers/cli.ts";
import { runAction } from "../helpers/action.ts";
import { FaultProxy } from "../helpers/fault-proxy.ts";

const TRIALS = Number(process.env.ASSETKIT_GC_TRIALS ?? 5);
const MiB = 1024 * 1024;
const ASSET = "models/killed";

/** Every key of the store, read through the seed store (not through the code under test). */
async function keys(store: Store): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list("")) out.push(o.key);
  return out.sort();
}

/** The versions of ASSET that have data, a meta or a claim, from its keys alone. */
function versionsIn(all: string[]): Map<string, { meta: boolean; claim: boolean; data: number }> {
  const out = new Map<string, { meta: boolean; claim: boolean; data: number }>();
  for (const key of all) {
    if (!key.startsWith(`${ASSET}/`)) continue;
    const rest = key.slice(ASSET.length + 1);
    const segment = rest.split("/")[0]!;
    const version = segment.replace(/\.(meta|claim)$/, "");
    const entry = out.get(version) ?? { meta: false, claim: false, data: 0 };
    if (!rest.includes("/") && segment.endsWith(".meta")) entry.meta = true;
    else if (!rest.includes("/") && segment.endsWith(".claim")) entry.claim = true;
    else entry.data++;
    out.set(version, entry);
  }
  return out;
}

/** Incomplete multipart uploads under the S3 store's prefix, asked of MinIO directly. */
async function incompleteUploads(uri: string): Promise<string[]> {
  const url = new URL(uri);
  const env = s3TestEnv();
  const client = new S3Client({
    endpoint: url.searchParams.get("endpoint")!,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
  });
  const prefix = url.pathname.slice(1);
  const page = await client.send(new ListMultipartUploadsCommand({ Bucket: url.hostname }));
  client.destroy();
  return (page.Uploads ?? []).map((u) => u.Key ?? "").filter((k) => k.startsWith(`${prefix}/`));
}

/**
 * Starts `assetkit publish`; once its claim appears (it starts writing), waits `killAfterMs` and SIGKILLs it if it
 * still runs. Returns how long it wrote (claim to exit) and whether it was killed. On a local store the claim is
 * seen through a file system event (a local publish writes too fast for polling); on S3 by polling the listing.
 */
async function publishKilledWhileWriting(
  cwd: string,
  env: NodeJS.ProcessEnv,
  seed: Store,
  root: string | undefined,
  killAfterMs: number,
): Promise<{ killed: boolean; writeMs: number }> {
  // A claim left by an earlier killed trial does not count: this publisher's own claim does.
  const before = new Set((await keys(seed)).filter((k) => k.endsWith(".claim")));
  const abort = new AbortController();
  let seen!: () => void;
  const claimSeen = new Promise<void>((resolve) => (seen = resolve));
  if (root) {
    // Claims are created in the asset's own folder: one watch there (made beforehand if need be) sees them.
    const folder = path.join(root, ...ASSET.split("/"));
    await mkdir(folder, { recursive: true });
    const watcher = watch(folder, { signal: abort.signal });
    watcher.on("change", (_event, file) => {
      if (String(file).endsWith(".claim") && !before.has(`${ASSET}/${String(file)}`)) seen();
    });
    watcher.on("error", () => undefined);
  }
  const child = spawn(process.execPath, [CLI, "publish", "input", ASSET], { cwd, env: { ...cleanEnv(), ...env }, stdio: "ignore" });
  const exited = new Promise<boolean>((resolve) => child.on("exit", (_code, signal) => resolve(signal === "SIGKILL")));
  let running = true;
  void exited.then(() => (running = false));
  if (!root) {
    void (async () => {
      while (running) {
        if ((await keys(seed)).some((k) => k.endsWith(".claim") && !before.has(k))) return seen();
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
  }
  await Promise.race([claimSeen, exited]);
  const writing = Date.now();
  const timer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
  const killed = await exited;
  clearTimeout(timer);
  abort.abort();
  return { killed, writeMs: Date.now() - writing };
}

const underTest = [factories.find((f) => f.name === "file")!, s3Factory];

describe("gc after killed publishes", () => {
  for (const factory of underTest) {
    const skip = skipReason(factory);
    it(
      `${factory.name}: after ${TRIALS} SIGKILLs of publish at spread points, gc --older-than 0s leaves no claim, no data without a meta, no incomplete upload, keeps every version with a meta; every listed version fetches and verifies`,
      { skip },
      async (t) => {
        const { uri, seed } = await factory.create();
        const cwd = await scratch();
        // One large file (a multipart upload on S3: 4 parts of 5 MiB) and small ones, enough that writing them
        // takes a while on a local disk too.
        const small = factory === s3Factory ? 40 : 400;
        await writeTree(cwd, {
          "input/weights.bin": randomBytes(20 * MiB),
          ...Object.fromEntries(Array.from({ length: small }, (_, i) => [`input/part${i}.json`, `{"i":${i}}`])),
        });
        const env = { ASSETKIT_STORE: uri, ASSETKIT_PART_SIZE: "5MiB", ASSETKIT_CONCURRENCY: "2", ...(factory === s3Factory ? s3TestEnv() : {}) };
        const cli = (...args: string[]) => runCli(args, { cwd, env });

        // A whole publish first: how long its writing (claim to exit) takes.
        const root = factory === s3Factory ? undefined : new URL(uri).pathname;
        const { writeMs } = await publishKilledWhileWriting(cwd, env, seed, root, 600_000);

        let killed = 0;
        for (let trial = 0; trial < TRIALS; trial++) {
          // New bytes each time: an unchanged file would be copied inside the store, not uploaded.
          await writeFile(path.join(cwd, "input/weights.bin"), randomBytes(20 * MiB));
          // Spread over its writing, up to just past its end.
          if ((await publishKilledWhileWriting(cwd, env, seed, root, ((trial + 0.5) / TRIALS) * writeMs * 1.2)).killed) killed++;
        }
        assert.ok(killed > 0, "at least one publish was killed mid-way");
        const withMeta = (all: string[]) =>
          [...versionsIn(all)]
            .filter(([, v]) => v.meta)
            .map(([version]) => version)
            .sort();
        const completeBefore = withMeta(await keys(seed));

        const gc = await cli("gc", "--older-than", "0s", "--json");
        assert.equal(gc.code, 0, gc.stderr);
        const { removed, unlisted } = JSON.parse(gc.stdout);
        t.diagnostic(
          `${killed}/${TRIALS} publishes killed mid-way; gc removed ${removed.versions} unfinished version(s), ${removed.claims} claim(s), ${removed.uploads} incomplete upload(s); kept ${unlisted.length} unlisted version(s)`,
        );

        const after = await keys(seed);
        assert.deepEqual(
          after.filter((k) => k.endsWith(".claim")),
          [],
          "no claim left",
        );
        for (const [version, v] of versionsIn(after)) assert.ok(v.meta || v.data === 0, `${ASSET}:${version} has data without a meta`);
        if (factory === s3Factory) assert.deepEqual(await incompleteUploads(uri), [], "no incomplete multipart upload left");
        else {
          const files = (await readdir(new URL(uri).pathname, { recursive: true })) as string[];
          assert.deepEqual(
            files.filter((f) => f.includes(".assetkit-tmp-")),
            [],
            "no temporary file of a killed write left",
          );
        }

        const listed = JSON.parse((await cli("list", ASSET, "--json")).stdout).assets[0].versions as string[];
        assert.ok(listed.length >= 1);
        for (const version of listed) {
          const fetched = await runCli(["fetch", `${ASSET}:${version}`, "--assets-dir", path.join(cwd, `assets-${version}`)], { cwd, env });
          assert.equal(fetched.code, 0, `${ASSET}:${version}: ${fetched.stderr}`);
        }
        // gc removed no version that had a meta: each is listed, or reported as unlisted and kept.
        assert.deepEqual(withMeta(after), completeBefore, "every version with a meta is still there");
        assert.deepEqual(
          completeBefore,
          [...listed, ...(unlisted as string[]).map((spec) => spec.slice(ASSET.length + 1))].sort(),
          "listed or reported unlisted",
        );
      },
    );

    it(`${factory.name}: a publish running during gc --older-than 1h completes untouched`, { skip }, async () => {
      const { uri, seed } = await factory.create();
      const cwd = await scratch();
      // Many small files written one at a time: long enough a publish to run gc in the middle of it.
      await writeTree(cwd, {
        "input/weights.bin": randomBytes(12 * MiB),
        ...Object.fromEntries(Array.from({ length: factory === s3Factory ? 150 : 1500 }, (_, i) => [`input/f/${i}.json`, `{"i":${i}}`])),
      });
      const env = { ASSETKIT_STORE: uri, ASSETKIT_PART_SIZE: "5MiB", ASSETKIT_CONCURRENCY: "1", ...(factory === s3Factory ? s3TestEnv() : {}) };
      const publishing = runCli(["publish", "input", ASSET, "--json"], { cwd, env });
      // gc starts once the publisher holds its claim.
      let claimed = false;
      for (const until = Date.now() + 60_000; !claimed && Date.now() < until; await new Promise((r) => setTimeout(r, 10))) {
        claimed = (await keys(seed)).some((k) => k.endsWith(".claim"));
      }
      assert.ok(claimed, "the publisher took its claim");
      const gc = await runCli(["gc", "--older-than", "1h", "--json"], { cwd, env });
      assert.equal(gc.code, 0, gc.stderr);
      const published = await publishing;
      assert.equal(published.code, 0, published.stderr);
      const version = JSON.parse(published.stdout).version as string;
      const fetched = await runCli(["fetch", `${ASSET}:${version}`], { cwd, env });
      assert.equal(fetched.code, 0, fetched.stderr);
      const report = JSON.parse(gc.stdout);
      assert.deepEqual(report.recent, [`${ASSET}:${version}`], "gc saw the publish running, and left it");
      assert.equal(report.removed.versions, 0);
    });
  }

  it(
    "s3 (MinIO): a publisher SIGKILLed between its meta and its .versions write leaves a complete version that gc keeps and reports; --remove-unlisted removes it",
    { skip: skipReason(s3Factory) },
    async () => {
      const { uri, seed } = await s3Factory.create();
      const proxy = await FaultProxy.start(process.env.ASSETKIT_TEST_S3_ENDPOINT!);
      try {
        const cwd = await scratch();
        await writeTree(cwd, { "input/weights.bin": randomBytes(12 * MiB), "input/config.json": "{}" });
        const env = { ...s3TestEnv(), ASSETKIT_PART_SIZE: "5MiB" };
        const cli = (...args: string[]) => runCli([...args, "--store", uri], { cwd, env });
        assert.equal((await cli("publish", "input", ASSET)).code, 0);
        await writeFile(path.join(cwd, "input/weights.bin"), randomBytes(12 * MiB));

        // The second publisher's .versions write never reaches MinIO: it is killed while that request hangs.
        const index = `/${ASSET}.versions`;
        proxy.inject({ fault: { kind: "stall" }, when: (req) => req.method === "PUT" && decodeURIComponent(req.url!.split("?")[0]!).endsWith(index) });
        const through = uri.replace(/endpoint=[^&]+/, `endpoint=${proxy.url}`);
        const child = spawn(process.execPath, [CLI, "publish", "input", ASSET, "--store", through], { cwd, env: { ...cleanEnv(), ...env }, stdio: "ignore" });
        const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
        for (const until = Date.now() + 60_000; proxy.faulted.length === 0 && Date.now() < until;) await new Promise((r) => setTimeout(r, 10));
        assert.equal(proxy.faulted.length, 1, "the publisher reached its .versions write");
        child.kill("SIGKILL");
        assert.equal(await exited, "SIGKILL");
        const left = await keys(seed);
        assert.ok(
          [`${ASSET}/1.1.0.meta`, `${ASSET}/1.1.0.claim`, `${ASSET}/1.1.0/weights.bin`].every((k) => left.includes(k)),
          left.join(" "),
        );

        const plan = await cli("gc", "--older-than", "0s", "--dry-run");
        assert.match(
          plan.stdout,
          /^plan: remove the stale claim of models\/killed:1\.1\.0 \(the version is complete but not listed in \.versions: it is kept\)$/m,
        );
        assert.match(
          plan.stdout,
          /^note: models\/killed:1\.1\.0 has a meta but is not listed in its \.versions: left in place \(--remove-unlisted removes it\)$/m,
        );
        const gc = await cli("gc", "--older-than", "0s", "--json");
        assert.equal(gc.code, 0, gc.stderr);
        const report = JSON.parse(gc.stdout);
        assert.deepEqual(report.unlisted, [`${ASSET}:1.1.0`]);
        assert.deepEqual([report.removed.versions, report.removed.claims, report.removed.objects], [0, 1, 0]);
        assert.deepEqual(
          await keys(seed),
          left.filter((k) => k !== `${ASSET}/1.1.0.claim`),
          "only the stale claim went",
        );

        const removing = await cli("gc", "--older-than", "0s", "--remove-unlisted", "--dry-run");
        assert.match(
          removing.stdout,
          /^plan: remove models\/killed:1\.1\.0 \(--remove-unlisted\): complete but not listed in \.versions; its meta, 2 data object\(s\), \d+ bytes$/m,
        );
        const removed = await cli("gc", "--older-than", "0s", "--remove-unlisted", "--json");
        assert.equal(removed.code, 0, removed.stderr);
        assert.deepEqual([JSON.parse(removed.stdout).removed.versions, JSON.parse(removed.stdout).unlisted], [1, []]);
        assert.deepEqual(
          (await keys(seed)).filter((k) => k.includes("1.1.0")),
          [],
        );
        assert.equal((await cli("fetch", `${ASSET}:1.0.0`)).code, 0);
      } finally {
        await proxy.stop();
      }
    },
  );

  it("file: gc removes an old stale claim (also beside an unlisted version) and claimless data; keeps a recent one and every unlisted version unless --remove-unlisted; --dry-run deletes nothing", async () => {
    const cwd = await scratch();
    const store = path.join(cwd, "store");
    await writeTree(cwd, { "input/a.txt": "a" });
    const cli = (...args: string[]) => runCli([...args, "--store", store], { cwd });
    assert.equal((await cli("publish", "input", "m")).code, 0);
    await writeTree(store, {
      "m/1.1.0.claim": '{"token":"x"}',
      "m/1.1.0/a.txt": "partial",
      "m/1.2.0/a.txt": "claimless leftover",
      "m/1.3.0.claim": '{"token":"recent"}',
      // Killed between its meta and .versions: complete, so kept and reported; its stale claim goes.
      "m/1.4.0.claim": '{"token":"y"}',
      "m/1.4.0.meta": "{}",
      "m/1.4.0/a.txt": "complete",
      // A meta .versions does not list, without a claim (modelkit stopped between its last two steps?): kept too.
      "m/1.5.0.meta": "{}",
      "m/1.5.0/a.txt": "modelkit?",
    });
    const old = new Date(Date.now() - 48 * 3600_000);
    for (const rel of ["m/1.1.0.claim", "m/1.1.0/a.txt", "m/1.2.0/a.txt", "m/1.4.0.claim", "m/1.4.0.meta", "m/1.4.0/a.txt", "m/1.5.0.meta", "m/1.5.0/a.txt"]) {
      await utimes(path.join(store, rel), old, old);
    }

    const dry = await cli("gc", "--dry-run", "--json");
    assert.equal(dry.code, 0, dry.stderr);
    const plan = JSON.parse(dry.stdout);
    assert.deepEqual(plan.removed, { claims: 2, versions: 2, objects: 2, bytes: 7 + 18, uploads: 0, uploadBytes: 0, blobs: 0, blobBytes: 0 });
    assert.deepEqual(plan.recent, ["m:1.3.0"]);
    assert.deepEqual(plan.unlisted, ["m:1.4.0", "m:1.5.0"]);
    assert.equal((await cli("gc", "--dry-run")).stdout.match(/^plan: /gm)?.length, 3);
    const storeKeys = async () => {
      const { FsStore } = await import("../../src/store/fs.ts");
      return keys(new FsStore(store));
    };
    assert.ok((await storeKeys()).includes("m/1.2.0/a.txt"), "the dry run deleted nothing");

    const real = await cli("gc", "--json");
    assert.equal(real.code, 0, real.stderr);
    const unlisted = ["m/1.4.0.meta", "m/1.4.0/a.txt", "m/1.5.0.meta", "m/1.5.0/a.txt"];
    assert.deepEqual(await storeKeys(), ["m.versions", "m/1.0.0.meta", "m/1.0.0/a.txt", "m/1.3.0.claim", ...unlisted]);
    assert.equal((await cli("fetch", "m:1.0.0")).code, 0);

    const removing = JSON.parse((await cli("gc", "--remove-unlisted", "--dry-run", "--json")).stdout);
    assert.deepEqual(removing.removed, { claims: 0, versions: 2, objects: 2, bytes: 8 + 9, uploads: 0, uploadBytes: 0, blobs: 0, blobBytes: 0 });
    assert.deepEqual(removing.unlisted, []);
    assert.equal((await cli("gc", "--remove-unlisted")).code, 0);
    assert.deepEqual(await storeKeys(), ["m.versions", "m/1.0.0.meta", "m/1.0.0/a.txt", "m/1.3.0.claim"]);
    assert.equal((await cli("gc", "--older-than", "soon")).code, 2);
  });

  it("file, in the Action: gc reports an unlisted version in the summary and keeps it; remove-unlisted: true removes it", async () => {
    const cwd = await scratch();
    const store = path.join(cwd, "store");
    await writeTree(cwd, { "input/a.txt": "a" });
    assert.equal((await runCli(["publish", "input", "m", "--store", store], { cwd })).code, 0);
    await writeTree(store, { "m/1.1.0.meta": "{}", "m/1.1.0/a.txt": "complete" });
    const kept = await runAction(cwd, { command: "gc", store, "older-than": "0s" });
    assert.equal(kept.code, 0, kept.stdout);
    assert.match(kept.summary, /note: m:1\.1\.0 has a meta but is not listed in its \.versions: left in place/);
    assert.equal(JSON.parse(kept.outputs.removed!).versions, 0);
    const removed = await runAction(cwd, { command: "gc", store, "older-than": "0s", "remove-unlisted": "true" });
    assert.equal(removed.code, 0, removed.stdout);
    assert.match(removed.summary, /remove m:1\.1\.0 &#40;--remove-unlisted&#41;|remove m:1\.1\.0 \(--remove-unlisted\)/);
    assert.equal(JSON.parse(removed.outputs.removed!).versions, 1);
    assert.deepEqual((await readdir(path.join(store, "m"))).sort(), ["1.0.0", "1.0.0.meta"]);
  });
});
