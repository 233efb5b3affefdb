// The trust policy pinned into assets.lock (docs/trust.md, section 7), through the shipped CLI on a folder store:
// `lock` checks every version it locks and writes lockfile version 2 (the policy's pin, each version's signer);
// `fetch --frozen` and `verify` refuse a lockfile whose pin is not the policy in force, and a version whose signer is
// not the pinned one; a channel move checks the version first; `sync` checks a served version once under a new policy.
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { copyFile, readFile, readdir, realpath, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";
import { parseLockfile } from "../../src/project/lockfile.ts";
import { runCli, scratch, writeTree } from "../helpers/cli.ts";

const ASSET = "models/m";

async function project() {
  const cwd = await scratch();
  for (const name of ["release", "other"]) {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    await writeFile(path.join(cwd, `${name}.pem`), privateKey.export({ type: "pkcs8", format: "pem" }));
    await writeFile(path.join(cwd, `${name}.pub`), publicKey.export({ type: "spki", format: "pem" }));
  }
  await writeTree(cwd, { "in/weights.bin": Buffer.alloc(10_000, 3), "in/config.json": '{"a":1}' });
  const cli = (...args: string[]) => runCli([...args, "--store", "store"], { cwd });
  const ok = async (...args: string[]) => {
    const r = await cli(...args);
    assert.equal(r.code, 0, `assetkit ${args.join(" ")}: ${r.stderr}`);
    return r;
  };
  /** Exit 1 with exactly one error line matching `line`. */
  const fails = async (line: RegExp, ...args: string[]) => {
    const r = await cli(...args);
    assert.equal(r.code, 1, `assetkit ${args.join(" ")}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr.trim(), line);
    return r;
  };
  /** assetkit.yml requiring one of `keys` for models/**; datasets/** may be unsigned. */
  const policy = (...keys: string[]) =>
    writeFile(
      path.join(cwd, "assetkit.yml"),
      `trust:\n  rules:\n    - match: "models/**"\n      signers:\n${keys.map((k) => `        - key: ${k}.pub\n`).join("")}    - match: "datasets/**"\n      unsigned: allow\n`,
    );
  const lockfile = async () =>
    JSON.parse(await readFile(path.join(cwd, "assets.lock"), "utf8")) as Record<string, unknown> & { assets: Record<string, Record<string, string>> };
  return { cwd, cli, ok, fails, policy, lockfile };
}

describe("the trust policy pinned in assets.lock", () => {
  it("lock checks what it locks and writes version 2 with the policy's pin and each signer; nothing is written when a version fails", async () => {
    const t = await project();
    await t.ok("publish", "in", ASSET, "--version", "1.0.0", "--sign-key", "release.pem");
    await t.ok("publish", "in", ASSET, "--version", "1.1.0");
    await t.ok("publish", "in", "datasets/d", "--version", "1.0.0");
    await t.policy("release");
    await t.fails(
      /^error: models\/m:1\.1\.0: not signed \(.*\), and trust rule "models\/\*\*" requires a signature; nothing written to assets\.lock$/,
      "lock",
      `${ASSET}:1.1.0`,
    );
    await assert.rejects(readFile(path.join(t.cwd, "assets.lock")), "no lockfile written");

    await t.ok("lock", `${ASSET}:1.0.0`, "datasets/d:1");
    const lock = await t.lockfile();
    assert.deepEqual(Object.keys(lock), ["lockfileVersion", "store", "trust", "assets"]);
    assert.equal(lock.lockfileVersion, 2);
    assert.match(lock.trust as string, /^sha256:[0-9a-f]{64}$/);
    assert.match(lock.assets[`${ASSET}:1.0.0`]!.signer!, /^key:[0-9a-f]{64}$/);
    assert.equal(lock.assets["datasets/d:1"]!.signer, undefined, "an asset its rule allows unsigned pins no signer");
    const fetched = JSON.parse((await t.ok("fetch", "--frozen", `${ASSET}:1.0.0`, "datasets/d:1", "--json")).stdout) as {
      resolved: { signer: string | null }[];
    };
    assert.deepEqual(
      fetched.resolved.map((r) => r.signer),
      [lock.assets[`${ASSET}:1.0.0`]!.signer, null],
    );

    // Adding a spec re-checks the kept ones under the policy in force: a policy that no longer accepts them writes nothing.
    await t.policy("other");
    await t.fails(/^error: models\/m:1\.0\.0: its signature is by a key that is not allowed .*; nothing written to assets\.lock$/, "lock", "datasets/d:1.0.0");
    assert.equal((await t.lockfile()).trust, lock.trust);
  });

  it("a changed policy or key: fetch --frozen and verify exit 1 until lock; without --frozen fetch warns and checks under the policy in force", async () => {
    const t = await project();
    await t.ok("publish", "in", ASSET, "--version", "1.0.0", "--sign-key", "release.pem");
    await t.ok("lock", `${ASSET}:1.0.0`); // no policy yet: version 1
    assert.equal((await t.lockfile()).lockfileVersion, 1);
    await t.policy("release");
    await t.fails(
      /^error: the trust policy changed since .*assets\.lock was written \(it pins no policy, the policy in force is sha256:[0-9a-f]{64}\): run assetkit lock \(--frozen\)$/,
      "fetch",
      "--frozen",
    );
    await t.ok("lock", `${ASSET}:1.0.0`);
    assert.equal((await t.lockfile()).lockfileVersion, 2);
    await t.ok("fetch", "--frozen");

    // The key file replaced (same path): another pin.
    await copyFile(path.join(t.cwd, "other.pub"), path.join(t.cwd, "release.pub"));
    await t.fails(
      /^error: the trust policy changed since .*assets\.lock was written \(it pins sha256:.*, the policy in force is sha256:.*\): run assetkit lock \(--frozen\)$/,
      "fetch",
      "--frozen",
    );
    const verified = await t.cli("verify", "--json");
    assert.equal(verified.code, 1);
    assert.deepEqual(
      (JSON.parse(verified.stdout) as { verified: { status: string }[] }).verified.map((v) => v.status),
      ["policy-changed"],
    );
    const loose = await t.cli("fetch", "--assets-dir", "fresh");
    assert.equal(loose.code, 1, "the policy in force refuses the version");
    assert.match(loose.stderr, /warning: the trust policy changed since .*; checking signatures under the policy in force/);
    assert.match(loose.stderr, /error: models\/m:1\.0\.0: its signature is by a key that is not allowed/);
  });

  it("a .sig replaced by one of another allowed key: a cold fetch and verify refuse it as not the pinned signer", async () => {
    const t = await project();
    await t.ok("publish", "in", ASSET, "--version", "1.0.0", "--sign-key", "release.pem");
    // The same version (same files, same digest) signed with the other key in another store: its .sig is a valid one.
    const elsewhere = await runCli(["publish", "in", ASSET, "--version", "1.0.0", "--sign-key", "other.pem", "--store", "store2"], { cwd: t.cwd });
    assert.equal(elsewhere.code, 0, elsewhere.stderr);
    await t.policy("release", "other");
    await t.ok("lock", `${ASSET}:1.0.0`);
    await copyFile(path.join(t.cwd, "store2", ASSET, "1.0.0.sig"), path.join(t.cwd, "store", ASSET, "1.0.0.sig"));
    await t.fails(
      /^error: models\/m:1\.0\.0: signed by key:[0-9a-f]{64} \(other\.pub\), but .*assets\.lock pins key:[0-9a-f]{64}: its signature was replaced after it was locked .*; nothing installed$/,
      "fetch",
      "--frozen",
    );
    const verified = await t.cli("verify", "--json");
    assert.deepEqual(
      (JSON.parse(verified.stdout) as { verified: { status: string }[] }).verified.map((v) => v.status),
      ["signer-changed"],
    );
  });

  it("a channel move without --to, and a rollback, check the version under the policy first", async () => {
    const t = await project();
    await t.ok("publish", "in", ASSET, "--version", "1.0.0", "--sign-key", "release.pem");
    await t.ok("publish", "in", ASSET, "--version", "1.1.0");
    // Before the policy: staging goes 1.1.0 (unsigned) → 1.0.0.
    await t.ok("promote", `${ASSET}:1.1.0`, "staging");
    await t.ok("promote", `${ASSET}:1.0.0`, "staging");
    await t.policy("release");
    await t.fails(
      /^error: models\/m:1\.1\.0: not signed \(.*\), and trust rule "models\/\*\*" requires a signature; models\/m:staging not rolled back$/,
      "promote",
      `${ASSET}:staging`,
      "--rollback",
    );
    assert.equal(JSON.parse((await t.ok("resolve", `${ASSET}:staging`, "--json")).stdout).resolved[0].version, "1.0.0");
    await t.fails(
      /^error: models\/m:1\.1\.0: not signed \(.*\), and trust rule "models\/\*\*" requires a signature; models\/m:production not moved$/,
      "promote",
      `${ASSET}:1.1.0`,
      "production",
    );
    assert.equal((await t.cli("resolve", `${ASSET}:production`)).code, 1, "no channel production written");
    await t.ok("promote", `${ASSET}:1.0.0`, "production");
  });

  it("sync checks a version it served before the policy once: failing, it keeps serving it but fails; passing, later syncs read no .sig", async () => {
    const t = await project();
    const statusFile = path.join(t.cwd, "status.json");
    const sync = () => t.cli("sync", `${ASSET}:production`, "--dir", "serve", "--status-file", statusFile);
    const served = async () => path.basename(await realpath(path.join(t.cwd, "serve", ASSET, "current")));
    await t.ok("publish", "in", ASSET, "--version", "1.0.0");
    await t.ok("promote", `${ASSET}:1.0.0`, "production");
    assert.equal((await sync()).code, 0);
    await t.policy("release");
    for (let pass = 0; pass < 2; pass++) {
      const r = await sync();
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr.trim(),
        /^error: models\/m:1\.0\.0: not signed .*; served before this trust policy required it: still serving it until a version that passes is served$/,
      );
      assert.equal(await served(), "1.0.0");
      assert.equal((JSON.parse(await readFile(statusFile, "utf8")) as { ok: boolean }).ok, false);
    }

    await t.ok("publish", "in", ASSET, "--version", "1.1.0", "--sign-key", "release.pem");
    await rm(path.join(t.cwd, "assetkit.yml"));
    await t.ok("promote", `${ASSET}:1.1.0`, "production");
    assert.equal((await sync()).code, 0, "brought in without a policy");
    await t.policy("release");
    assert.equal((await sync()).code, 0);
    const marker = JSON.parse(await readFile(path.join(t.cwd, "serve", ASSET, "1.1.0", ".SUCCESS"), "utf8")) as { trust?: string; signer?: string };
    assert.match(marker.trust ?? "", /^sha256:/, "the check is recorded");
    assert.match(marker.signer ?? "", /^key:/);
    // A .sig that no longer verifies is not read again: the served copy passed under this policy.
    await writeFile(path.join(t.cwd, "store", ASSET, "1.1.0.sig"), "not a bundle");
    assert.equal((await sync()).code, 0);
    assert.deepEqual((await readdir(path.join(t.cwd, "serve", ASSET))).filter((v) => !v.startsWith(".")).sort(), ["1.0.0", "1.1.0", "current"]);
  });
});

describe("who signed a version", () => {
  it("publish --json says whether it signed; show names the signer and what the policy says of it", async () => {
    const t = await project();
    const signed = JSON.parse((await t.ok("publish", "in", ASSET, "--version", "1.0.0", "--sign-key", "release.pem", "--json")).stdout) as {
      signed: boolean;
      signer: string;
    };
    assert.equal(signed.signed, true);
    assert.match(signed.signer, /^key:[0-9a-f]{64}$/);
    const unsigned = JSON.parse((await t.ok("publish", "in", ASSET, "--version", "1.1.0", "--json")).stdout) as { signed: boolean; signer: null };
    assert.deepEqual([unsigned.signed, unsigned.signer], [false, null]);
    const show = async (version: string) =>
      JSON.parse((await t.ok("show", `${ASSET}:${version}`, "--json")).stdout) as { files?: unknown; signature: Record<string, unknown> };

    assert.deepEqual((await show("1.0.0")).signature, { kind: "key", signer: signed.signer, name: null, verified: false, allowed: null, detail: null });
    await t.policy("release");
    assert.deepEqual((await show("1.0.0")).signature, { kind: "key", signer: signed.signer, name: "release.pub", verified: true, allowed: true, detail: null });
    const refused = (await show("1.1.0")).signature;
    assert.deepEqual({ ...refused, detail: null }, { kind: "unsigned", signer: null, name: null, verified: false, allowed: false, detail: null });
    assert.match(refused.detail as string, /^models\/m:1\.1\.0: not signed/);
    await t.policy("other");
    assert.deepEqual(
      { ...(await show("1.0.0")).signature, detail: null },
      { kind: "key", signer: signed.signer, name: null, verified: false, allowed: false, detail: null },
    );
    const text = (await t.ok("show", `${ASSET}:1.0.0`)).stdout.split("\n")[1];
    assert.match(text!, /^signature: signed by key:[0-9a-f]{64} \(refused: models\/m:1\.0\.0: its signature is by a key that is not allowed/);
  });
});

describe("lockfile versions", () => {
  const v1 = { lockfileVersion: 1, store: "s3://b/p", assets: { "m:1": { name: "m", version: "1.0.0", digest: null } } };
  it("reads version 1 and version 2, and refuses a version 2 without its pin, a pin in version 1, and later versions", () => {
    assert.deepEqual(parseLockfile(JSON.stringify(v1), "a.lock"), { store: "s3://b/p", assets: v1.assets });
    const v2 = { ...v1, lockfileVersion: 2, trust: `sha256:${"a".repeat(64)}`, assets: { "m:1": { ...v1.assets["m:1"], signer: `key:${"b".repeat(64)}` } } };
    assert.equal(parseLockfile(JSON.stringify(v2), "a.lock").assets["m:1"]!.signer, `key:${"b".repeat(64)}`);
    assert.throws(() => parseLockfile(JSON.stringify({ ...v2, trust: undefined }), "a.lock"), /a version 2 lockfile needs trust/);
    assert.throws(() => parseLockfile(JSON.stringify({ ...v1, trust: v2.trust }), "a.lock"), /trust is pinned only in a version 2 lockfile/);
    assert.throws(
      () => parseLockfile(JSON.stringify({ ...v1, lockfileVersion: 3 }), "a.lock"),
      /unsupported lockfileVersion 3 \(this assetkit reads 1 and 2: upgrade it\)/,
    );
  });
});
