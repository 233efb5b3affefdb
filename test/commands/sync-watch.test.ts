// sync --watch against MinIO, through the shipped CLI: requests counted at a proxy, a MinIO of the test's own
// stopped for 10 s and started again, a corrupted version, --on-change and --signal-pid, SIGTERM. Also two syncs
// sharing one dir, and SIGTERM in the middle of a (throttled) download.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFile, readdir, readlink } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, it } from "node:test";
import { startRequestCounter } from "../../scripts/request-counter.ts";
import { prepareInput } from "../../src/registry/manifest.ts";
import { Registry } from "../../src/registry/registry.ts";
import { openS3Store } from "../../src/store/s3/s3.ts";
import { TEMP_MARK } from "../../src/base/temp-path.ts";
import { s3Factory, s3TestEnv } from "../conformance/factories/s3.ts";
import { uniquePrefix } from "../conformance/factory.ts";
import { skipReason } from "../conformance/stores.ts";
import { CLI, cleanEnv, scratch, startCli, writeTree } from "../helpers/cli.ts";
import { ownMinio } from "../helpers/own-minio.ts";
import { FaultProxy } from "../helpers/fault-proxy.ts";
import { TEST_SETTINGS, TEST_TUNING } from "../helpers/settings.ts";
import { waitFor } from "../helpers/wait-for.ts";

const promotion = { promoted_at: "2026-11-30T00:00:00.000Z", promoted_by: "test", source: {} };

interface Status {
  ok: boolean;
  assets: { version: string | null; ok: boolean; lastError: { message: string } | null; lastSuccess: string | null }[];
}

async function readStatus(file: string): Promise<Status | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as Status;
  } catch {
    return undefined;
  }
}

/** Every entry under `dir`, relative, at any depth. */
async function tree(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true }).catch(() => [] as string[])).map(String);
}

async function publishVersions(registry: Registry, count: number, files: (version: string) => Record<string, string | Buffer>): Promise<void> {
  for (let i = 0; i < count; i++) {
    const input = await prepareInput(await writeTree(await scratch(), files(`1.${i}.0`)));
    await registry.publish({ name: "m", input, createdBy: "test", source: {}, metadata: {} });
  }
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once("exit", (code) => resolve(code))));
}

describe("sync --watch (MinIO)", { skip: skipReason(s3Factory) }, () => {
  it("swaps on promote, polls with HEADs only, rides out a 10 s outage, refuses a corrupted version, exits on SIGTERM", async (t) => {
    const minio = await ownMinio();
    const counter = await startRequestCounter(minio.endpoint);
    const cwd = await scratch();
    const children: ChildProcess[] = [];
    try {
      const prefix = uniquePrefix();
      const seed = openS3Store(new URL(`s3://${minio.bucket}/${prefix}?endpoint=${minio.endpoint}`), { tuning: TEST_TUNING, env: minio.env });
      const registry = new Registry(seed, { settings: TEST_SETTINGS, versioning: "semver" });
      await publishVersions(registry, 4, (v) => ({ a: v, b: v }));
      await registry.promote("m", "production", "1.0.0", promotion);

      // A process that counts the SIGHUPs it gets (a server reloading on --signal-pid).
      const hups = path.join(cwd, "hups");
      const server = spawn(process.execPath, [
        "-e",
        `let n = 0; process.on("SIGHUP", () => require("fs").writeFileSync(${JSON.stringify(hups)}, String(++n))); setInterval(() => {}, 1000);`,
      ]);
      children.push(server);
      await sleep(200);

      const dir = path.join(cwd, "serve");
      const statusFile = path.join(cwd, "status.json");
      const hook = `echo "$ASSETKIT_NAME $ASSETKIT_VERSION $ASSETKIT_PATH" >> hooks.log`;
      const sync = spawn(
        process.execPath,
        [
          CLI,
          "sync",
          "m:production",
          "--dir",
          dir,
          "--watch",
          "1s",
          "--status-file",
          statusFile,
          "--on-change",
          hook,
          "--signal-pid",
          `${server.pid}:HUP`,
          "--store",
          `s3://${minio.bucket}/${prefix}?endpoint=${counter.url}`,
        ],
        { cwd, env: { ...cleanEnv(), ...minio.env } },
      );
      children.push(sync);
      let stderr = "";
      sync.stderr.on("data", (d) => (stderr += d));
      const version = async () => (await readStatus(statusFile))?.assets[0]?.version;
      const link = path.join(dir, "m", "current");

      await waitFor("the first swap", 30_000, async () => (await version()) === "1.0.0");

      // Unchanged polls: HEADs of the alias table, no object body.
      counter.reset();
      await sleep(3_500);
      const idle = counter.requests();
      assert.ok(idle.length >= 2, `polls in 3.5 s: ${idle.length}`);
      assert.deepEqual([...new Set(idle.map((r) => `${r.method} ${r.url.split("?")[0]}`))], [`HEAD /${minio.bucket}/${prefix}/m.aliases`]);

      // Promote: the swap comes within two polls of the alias table.
      counter.reset();
      await registry.promote("m", "production", "1.1.0", promotion);
      await waitFor("the swap to 1.1.0", 30_000, async () => (await version()) === "1.1.0");
      const afterPromote = counter.requests();
      const firstRead = afterPromote.findIndex((r) => r.method !== "HEAD");
      assert.ok(firstRead >= 1 && firstRead <= 2, `HEADs before the change was read: ${firstRead}`);
      assert.equal(await readlink(link), "1.1.0");

      // MinIO stopped for 10 s: the served version stays, the error is logged and recorded, then it catches up.
      await minio.stop();
      const stoppedAt = Date.now();
      const down = await waitFor("an error in the status file", 30_000, async () => {
        const s = await readStatus(statusFile);
        return s?.assets[0]?.lastError && !s.ok ? s : undefined;
      });
      assert.equal(down.assets[0]!.version, "1.1.0");
      assert.equal(await readlink(link), "1.1.0");
      assert.equal(await readFile(path.join(link, "a"), "utf8"), "1.1.0");
      await sleep(Math.max(0, 10_000 - (Date.now() - stoppedAt)));
      assert.equal(await readlink(link), "1.1.0");
      assert.match(stderr, /the store could not be checked \(\d+ time\(s\) in a row\): still serving what was there; next try in/);
      await minio.start();
      const back = await waitFor("a good check after the restart", 120_000, async () => {
        const s = await readStatus(statusFile);
        return s?.ok ? s : undefined;
      });
      assert.equal(back.assets[0]!.lastError, null);
      assert.equal(back.assets[0]!.version, "1.1.0");
      t.diagnostic(`a good check ${((Date.now() - stoppedAt) / 1000).toFixed(1)} s after MinIO was stopped`);
      await registry.promote("m", "production", "1.2.0", promotion);
      const recovered = await waitFor("the swap to 1.2.0 after the restart", 30_000, async () => {
        const s = await readStatus(statusFile);
        return s?.assets[0]?.version === "1.2.0" ? s : undefined;
      });
      assert.equal(recovered.ok, true);
      assert.equal(recovered.assets[0]!.lastError, null);

      // A corrupted version (same size, other bytes): no swap, the error in the status file, the old version served.
      assert.equal(await seed.write("m/1.3.0/a", Buffer.from("9.9.9")), true);
      await registry.promote("m", "production", "1.3.0", promotion);
      const refused = await waitFor("the integrity error", 30_000, async () => {
        const s = await readStatus(statusFile);
        return s?.assets[0]?.lastError?.message.includes("integrity") ? s : undefined;
      });
      assert.equal(refused.ok, false);
      assert.equal(refused.assets[0]!.version, "1.2.0");
      assert.equal(await readlink(link), "1.2.0");
      assert.equal(await readFile(path.join(link, "b"), "utf8"), "1.2.0");
      assert.deepEqual(
        (await tree(dir)).filter((e) => e.includes(TEMP_MARK)),
        [],
      );

      // Once per swap: --on-change with the right environment, and the signal.
      const hooks = (await readFile(path.join(cwd, "hooks.log"), "utf8")).trim().split("\n");
      assert.deepEqual(
        hooks,
        ["1.0.0", "1.1.0", "1.2.0"].map((v) => `m ${v} ${path.join(dir, "m", v)}`),
      );
      assert.equal(await readFile(hups, "utf8"), "3");
      assert.equal((stderr.match(/^swapped m: /gm) ?? []).length, 3);

      sync.kill("SIGTERM");
      assert.equal(await Promise.race([exitOf(sync), sleep(15_000, "hung")]), 0);
      assert.deepEqual(
        (await tree(dir)).filter((e) => e.includes(TEMP_MARK)),
        [],
      );
    } finally {
      for (const child of children) child.kill("SIGKILL");
      await counter.stop();
      await minio.dispose();
    }
  });
});

describe("sync on a shared dir (MinIO)", { skip: skipReason(s3Factory) }, () => {
  it("two syncs of one dir: one downloads (each object read once), both serve the version", async () => {
    const { store, uri } = await s3Factory.create();
    const counter = await startRequestCounter(process.env.ASSETKIT_TEST_S3_ENDPOINT!);
    try {
      await publishVersions(new Registry(store, { settings: TEST_SETTINGS, versioning: "semver" }), 1, () => ({
        a: randomBytes(200_000),
        b: randomBytes(200_000),
      }));
      const cwd = await scratch();
      const proxied = uri.replace(/endpoint=[^&]*/, `endpoint=${counter.url}`);
      const env = s3TestEnv();
      const runs = await Promise.all([0, 1].map(() => startCli(["sync", "m:1", "--dir", "serve", "--store", proxied, "--json"], { cwd, env })));
      for (const r of runs) {
        assert.equal(r.code, 0, r.stderr);
        assert.equal(JSON.parse(r.stdout).synced[0].version, "1.0.0");
      }
      assert.equal(await readlink(path.join(cwd, "serve/m/current")), "1.0.0");
      const dataReads = counter.requests().filter((r) => r.method === "GET" && /\/m\/1\.0\.0\/[ab](\?|$)/.test(r.url));
      assert.equal(dataReads.length, 2, dataReads.map((r) => r.url).join("\n"));
    } finally {
      await counter.stop();
    }
  });

  it("the first sync of 10 assets brings in 4 versions at a time, as a pass without --watch does (bounded memory)", async () => {
    const { store, uri } = await s3Factory.create();
    const proxy = await FaultProxy.start(process.env.ASSETKIT_TEST_S3_ENDPOINT!);
    // Data objects trickle in, so downloads overlap: the documents (versions, metas) pass at full speed.
    proxy.inject({ fault: { kind: "throttle", bytesPerSecond: 64 * 1024 }, when: (req) => /\/data\.bin(\?|$)/.test(req.url ?? "") });
    try {
      const registry = new Registry(store, { settings: TEST_SETTINGS, versioning: "semver" });
      const names = Array.from({ length: 10 }, (_, i) => `w${i}`);
      for (const name of names) {
        const input = await prepareInput(await writeTree(await scratch(), { "data.bin": randomBytes(48 * 1024) }));
        await registry.publish({ name, input, createdBy: "test", source: {}, metadata: {} });
      }
      const cwd = await scratch();
      const proxied = uri.replace(/endpoint=[^&]*/, `endpoint=${proxy.url}`);
      const sync = spawn(process.execPath, [CLI, "sync", ...names, "--dir", "serve", "--watch", "5s", "--store", proxied], {
        cwd,
        env: { ...cleanEnv(), ...s3TestEnv() },
      });
      try {
        // Versions being brought in: each downloads into a temporary dir beside its asset's versions.
        let most = 0;
        await waitFor("every asset served", 60_000, async () => {
          const entries = await tree(path.join(cwd, "serve"));
          const bringing = new Set(entries.filter((e) => e.includes(TEMP_MARK) && !e.startsWith(".assetkit")).map((e) => e.split(path.sep)[0]));
          most = Math.max(most, bringing.size);
          return names.every((n) => entries.includes(path.join(n, "current")));
        });
        assert.ok(most >= 2, `downloads overlapped (${most} at most)`);
        assert.ok(most <= 4, `${most} versions were brought in at once`);
      } finally {
        sync.kill("SIGKILL");
      }
    } finally {
      await proxy.stop();
    }
  });

  it("SIGTERM in the middle of a download leaves no temporary dir and no link", async () => {
    const { store, uri } = await s3Factory.create();
    const proxy = await FaultProxy.start(process.env.ASSETKIT_TEST_S3_ENDPOINT!);
    proxy.inject({ fault: { kind: "throttle", bytesPerSecond: 128 * 1024 } });
    try {
      await publishVersions(new Registry(store, { settings: TEST_SETTINGS, versioning: "semver" }), 1, () => ({ big: randomBytes(2 * 1024 * 1024) }));
      const cwd = await scratch();
      const sync = spawn(
        process.execPath,
        [CLI, "sync", "m:1", "--dir", "serve", "--watch", "5s", "--store", uri.replace(/endpoint=[^&]*/, `endpoint=${proxy.url}`)],
        {
          cwd,
          env: { ...cleanEnv(), ...s3TestEnv() },
        },
      );
      try {
        await waitFor("a download in progress", 30_000, async () => (await tree(path.join(cwd, "serve/m"))).some((e) => e.includes(TEMP_MARK)));
        sync.kill("SIGTERM");
        assert.equal(await Promise.race([exitOf(sync), sleep(15_000, "hung")]), 0);
        const left = await tree(path.join(cwd, "serve"));
        assert.deepEqual(
          left.filter((e) => e.includes(TEMP_MARK) || e.endsWith("current")),
          [],
          left.join("\n"),
        );
      } finally {
        sync.kill("SIGKILL");
      }
    } finally {
      await proxy.stop();
    }
  });
});
