// promote (channels by compare-and-swap of <name>.aliases) on every store of the matrix (read-only ones promote through their writable seed), and the
// promote/verify CLI as a user runs it on a local store.
import assert from "node:assert/strict";
import { appendFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { prepareInput } from "../../src/registry/manifest.ts";
import { Registry } from "../../src/registry/registry.ts";
import { parseSpec } from "../../src/registry/spec.ts";
import { factories, skipReason } from "../conformance/stores.ts";
import { runAction } from "../helpers/action.ts";
import { runCli, scratch, writeTree } from "../helpers/cli.ts";
import { TEST_SETTINGS } from "../helpers/settings.ts";

const promotion = { promoted_at: "2026-11-22T00:00:00.000Z", promoted_by: "test", source: {} };

for (const factory of factories) {
  describe(`promote: ${factory.name}`, { skip: skipReason(factory) }, () => {
    it("moves channels by compare-and-swap: 8 concurrent promotions of 8 channels all land", async () => {
      const { store, seed } = await factory.create();
      const reg = new Registry(seed, { settings: TEST_SETTINGS, versioning: "semver" });
      const input = await prepareInput(await writeTree(await mkdtemp(path.join(tmpdir(), "assetkit-in-")), { "w.bin": "w" }));
      for (let i = 0; i < 3; i++) await reg.publish({ name: "m", input, createdBy: "test", source: {}, metadata: {} });

      assert.deepEqual(await reg.promote("m", "production", "1.0.0", promotion), { previous: undefined, changed: true });
      assert.deepEqual(await reg.promote("m", "production", "1.2.0", promotion), { previous: "1.0.0", changed: true });
      assert.deepEqual(await reg.promote("m", "production", "1.2.0", promotion), { previous: "1.2.0", changed: false });
      assert.equal((await new Registry(store, { settings: TEST_SETTINGS, versioning: "semver" }).resolve(parseSpec("m:production"))).version, "1.2.0");

      const channels = Array.from({ length: 8 }, (_, i) => `canary-${i}`);
      // Separate registries: no shared in-process state, as separate CI jobs would be.
      await Promise.all(
        channels.map((c, i) => new Registry(seed, { settings: TEST_SETTINGS, versioning: "semver" }).promote("m", c, `1.${i % 3}.0`, promotion)),
      );
      const { table } = await reg.aliases("m");
      for (const [i, c] of channels.entries()) assert.equal(table[c]?.version, `1.${i % 3}.0`, c);
      assert.equal(table.production?.version, "1.2.0");
      assert.equal(table.production?.previous, "1.0.0");

      await assert.rejects(reg.promote("m", "production", "9.9.9", promotion), /9\.9\.9 is not a committed version/);
    });
  });
}

describe("promote and verify CLI (local store)", () => {
  it("promote resolves the spec, reports the previous version, and refuses a bad channel or version", async () => {
    const cwd = await writeTree(await scratch(), { "m.bin": "one" });
    assert.equal((await runCli(["publish", "m.bin", "m"], { cwd })).code, 0);
    assert.equal((await runCli(["publish", "m.bin", "m"], { cwd })).code, 0);
    const first = await runCli(["promote", "m:1.0.0", "production", "--json"], { cwd });
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(JSON.parse(first.stdout), {
      name: "m",
      alias: "production",
      spec: "m:production",
      version: "1.0.0",
      digest: JSON.parse(first.stdout).digest,
      previous: null,
      changed: true,
      store: ".assetkit/store",
    });
    const second = JSON.parse((await runCli(["promote", "m:1", "production", "--json"], { cwd, env: { GITHUB_ACTOR: "octocat" } })).stdout);
    assert.equal(second.version, "1.1.0");
    assert.equal(second.previous, "1.0.0");
    const aliases = JSON.parse(await readFile(path.join(cwd, ".assetkit/store/m.aliases"), "utf8"));
    assert.equal(aliases.aliases.production.source.actor, "octocat");
    assert.equal(JSON.parse((await runCli(["resolve", "m:production", "--json"], { cwd })).stdout).resolved[0].version, "1.1.0");

    const bad = await runCli(["promote", "m:1", "Prod"], { cwd });
    assert.equal(bad.code, 2);
    const missing = await runCli(["promote", "m:7.0.0", "production"], { cwd });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error: .*7\.0\.0/m);
  });

  it("verify reports every spec (not locked, altered local copy, newer version) and exits 1; 0 when all hold", async () => {
    const cwd = await writeTree(await scratch(), { "m.bin": "one", "d/a.txt": "a", "d/b.txt": "b" });
    await runCli(["publish", "m.bin", "m"], { cwd });
    await runCli(["publish", "d", "d"], { cwd });
    assert.equal((await runCli(["lock", "m:1", "d:1"], { cwd })).code, 0);
    assert.equal((await runCli(["fetch"], { cwd })).code, 0);

    const clean = await runCli(["verify", "--json"], { cwd });
    assert.equal(clean.code, 0, clean.stderr);
    assert.deepEqual(
      JSON.parse(clean.stdout).verified.map((v: { status: string; local: string }) => [v.status, v.local]),
      [
        ["ok", "verified"],
        ["ok", "verified"],
      ],
    );

    await runCli(["publish", "m.bin", "m"], { cwd }); // 1.1.0: the lock still says 1.0.0
    await appendFile(path.join(cwd, ".assetkit/assets/d/1.0.0/b.txt"), "tampered");
    const dirty = await runCli(["verify", "m:1", "d:1", "x:1", "--json"], { cwd });
    assert.equal(dirty.code, 1);
    const rows = JSON.parse(dirty.stdout).verified as { spec: string; status: string; local: string; newer: string | null; detail: string | null }[];
    assert.deepEqual(
      rows.map((r) => [r.spec, r.status, r.local, r.newer]),
      [
        ["m:1", "ok", "verified", "1.1.0"],
        ["d:1", "local-altered", "altered", null],
        ["x:1", "not-locked", "unchecked", null],
      ],
    );
    assert.match(rows[1]!.detail!, /b\.txt/);
    assert.match(dirty.stderr, /2 of 3 spec\(s\) failed verification/);

    // The store's content no longer matching the lock (a rewritten store) is a failure too.
    await rm(path.join(cwd, ".assetkit/store/m/1.0.0.meta"));
    const gone = JSON.parse((await runCli(["verify", "m:1", "--json"], { cwd })).stdout).verified[0];
    assert.equal(gone.status, "missing");
  });
});

describe("promote and verify in the Action (local store)", () => {
  it("promote moves the channel to the locked version and outputs it; verify fails the step with the table in the summary", async () => {
    const cwd = await writeTree(await scratch(), { "m.bin": "one" });
    await runCli(["publish", "m.bin", "m"], { cwd });
    await runCli(["lock", "m:1"], { cwd });
    await runCli(["publish", "m.bin", "m"], { cwd }); // 1.1.0 exists, the lock keeps 1.0.0

    const promoted = await runAction(cwd, { command: "promote", specs: "m:1", channel: "production" }, { GITHUB_ACTOR: "releaser" });
    assert.equal(promoted.code, 0, promoted.stdout);
    assert.deepEqual([promoted.outputs.version, promoted.outputs.spec], ["1.0.0", "m:production"]);
    assert.match(promoted.summary, /promoted &#40;new channel&#41;/);
    const noChannel = await runAction(cwd, { command: "promote", specs: "m:1" });
    assert.equal(noChannel.code, 1);
    assert.match(noChannel.stdout, /::error::command promote needs the input channel/);

    const ok = await runAction(cwd, { command: "verify", specs: "m:1" });
    assert.equal(ok.code, 0, ok.stdout);
    assert.match(ok.summary, /ok; local absent; newer: 1\.1\.0/);
    const bad = await runAction(cwd, { command: "verify", specs: "m:1\nm:2" });
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /::error::1 of 2 spec\(s\) failed verification: m:2 \(not-locked\)/);
    assert.match(bad.summary, /not-locked/);
  });
});
