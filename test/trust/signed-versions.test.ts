// Signed versions through the shipped CLI on real stores (folder, MinIO): `publish --sign-key` writes `<version>.sig`
// before the meta; `fetch` under a `trust:` policy checks it before any byte is used and installs nothing when a
// check fails (unsigned, another key, a tampered meta, the signature of another version); gc, prune and
// promote --to handle the `.sig` with its version; `sync` brings in (and `promote --to` copies) only versions whose
// signature passes; a warm locked fetch of a copy verified under the same policy asks the store nothing, a cold one
// one request more than without a policy. docs/trust.md, steps 2 and 3 (key signers).
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { readdir, readFile, realpath, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";
import { startRequestCounter } from "../../scripts/request-counter.ts";
import { assetDigest, type AssetMetaDocument } from "../../src/registry/manifest.ts";
import type { Store } from "../../src/store/store.ts";
import { s3TestEnv } from "../conformance/factories/s3.ts";
import { factories, skipReason } from "../conformance/stores.ts";
import { runCli, scratch, writeTree } from "../helpers/cli.ts";

const ASSET = "models/m";
const INITIALIZER = path.resolve("dist/storage-initializer.js");

/** A scratch project on a fresh store of `factory`, with two key pairs (`release`, `other`) in PEM files. */
async function project(factoryName: string, endpoint?: (uri: string) => string) {
  const factory = factories.find((f) => f.name.startsWith(factoryName))!;
  const { seed, uri } = await factory.create();
  const store = endpoint ? endpoint(uri) : uri;
  const cwd = await scratch();
  for (const name of ["release", "other"]) {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    await writeFile(path.join(cwd, `${name}.pem`), privateKey.export({ type: "pkcs8", format: "pem" }));
    await writeFile(path.join(cwd, `${name}.pub`), publicKey.export({ type: "spki", format: "pem" }));
  }
  await writeTree(cwd, { "in/weights.bin": Buffer.alloc(100_000, 3), "in/config.json": '{"a":1}' });
  const cli = async (...args: string[]) => runCli([...args, "--store", store], { cwd, env: s3TestEnv() });
  const ok = async (...args: string[]) => {
    const r = await cli(...args);
    assert.equal(r.code, 0, `assetkit ${args.join(" ")}: ${r.stderr}`);
    return r;
  };
  /** Writes assetkit.yml with a trust rule for models/** naming these public keys. */
  const policy = (...keys: string[]) =>
    writeFile(
      path.join(cwd, "assetkit.yml"),
      `trust:\n  rules:\n    - match: "models/**"\n      signers:\n${keys.map((k) => `        - key: ${k}.pub\n`).join("")}    - match: "**"\n      unsigned: allow\n`,
    );
  const installed = async () => (await readdir(path.join(cwd, ".assetkit", "assets", ...ASSET.split("/"))).catch(() => [])).filter((f) => !f.startsWith("."));
  return { cwd, seed, store, cli, ok, policy, installed };
}

/** Every key of a store, read through the seed store (not the code under test). */
async function keys(seed: Store): Promise<string[]> {
  const out: string[] = [];
  for await (const o of seed.list("")) out.push(o.key);
  return out.sort();
}

/** Asserts a fetch exit 1 with one error line matching `line`, and none of the specs' versions installed. */
async function refused(t: Awaited<ReturnType<typeof project>>, specs: string[], line: RegExp) {
  const r = await t.cli("fetch", ...specs);
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, line);
  const versions = specs.map((s) => s.slice(s.lastIndexOf(":") + 1));
  assert.deepEqual(
    (await t.installed()).filter((v) => versions.includes(v)),
    [],
    "nothing installed",
  );
}

for (const storeName of ["file", "s3"]) {
  const skip = skipReason(factories.find((f) => f.name.startsWith(storeName))!);
  describe(`signed versions on ${storeName}`, { skip }, () => {
    it("publish --sign-key writes the .sig; fetch verifies it under a policy naming the key, and refuses another key, an unsigned version, a tampered meta, the .sig of another version", async () => {
      const t = await project(storeName);
      await t.ok("publish", "in", ASSET, "--version", "1.0.0", "--sign-key", "release.pem");
      await t.ok("publish", "in", ASSET, "--version", "1.1.0");
      assert.ok((await keys(t.seed)).includes(`${ASSET}/1.0.0.sig`));
      assert.ok(!(await keys(t.seed)).includes(`${ASSET}/1.1.0.sig`));

      await t.policy("other");
      await refused(
        t,
        [`${ASSET}:1.0.0`],
        /^error: models\/m:1\.0\.0: its signature is by a key that is not allowed \(public key hint [0-9a-f]{64}\); nothing installed$/,
      );
      await refused(
        t,
        [`${ASSET}:1.1.0`],
        /^error: models\/m:1\.1\.0: not signed \(no models\/m\/1\.1\.0\.sig in .*\), and trust rule "models\/\*\*" requires a signature; nothing installed$/,
      );
      await t.policy("other", "release");
      // Two specs, one unsigned: the signed one is not installed either.
      await refused(t, [`${ASSET}:1.0.0`, `${ASSET}:1.1.0`], /models\/m:1\.1\.0: not signed/);
      const fetched = JSON.parse((await t.ok("fetch", `${ASSET}:1.0.0`, "--json")).stdout).resolved[0];
      assert.equal(fetched.version, "1.0.0");
      assert.deepEqual(await t.installed(), ["1.0.0"]);

      // The signature of 1.0.0 copied over 1.1.0 (same files): refused by its version binding.
      await t.seed.write(`${ASSET}/1.1.0.sig`, (await t.seed.read(`${ASSET}/1.0.0.sig`))!.data);
      await refused(t, [`${ASSET}:1.1.0`], /^error: models\/m:1\.1\.0: its signature is for models\/m:1\.0\.0; nothing installed$/);

      // A meta rewritten consistently (another sha256, the digest to match, listed in .versions): still a valid meta, refused as signed.
      await t.ok("publish", "in", ASSET, "--version", "1.2.0", "--sign-key", "release.pem");
      const metaKey = `${ASSET}/1.2.0.meta`;
      const doc = JSON.parse((await t.seed.read(metaKey))!.data.toString()) as AssetMetaDocument;
      doc.assetkit!.files.find((f) => f.path === "config.json")!.sha256 = "0".repeat(64);
      doc.assetkit!.digest = assetDigest(doc.assetkit!.files, doc.assetkit!.part_size);
      await t.seed.write(metaKey, Buffer.from(JSON.stringify(doc)));
      const index = JSON.parse((await t.seed.read(`${ASSET}.versions`))!.data.toString());
      index.digests["1.2.0"] = doc.assetkit!.digest;
      await t.seed.write(`${ASSET}.versions`, Buffer.from(JSON.stringify(index)));
      await refused(
        t,
        [`${ASSET}:1.2.0`],
        /^error: models\/m:1\.2\.0: its signature is for asset digest sha256:[0-9a-f]{64}, not sha256:[0-9a-f]{64}; nothing installed$/,
      );
    });

    it("verify reports each locked version's signature: ok, unsigned, bad-signature, no-trust-rule", async () => {
      const t = await project(storeName);
      await t.ok("publish", "in", ASSET, "--version", "1.0.0", "--sign-key", "release.pem");
      await t.ok("publish", "in", ASSET, "--version", "1.1.0");
      await t.ok("publish", "in", ASSET, "--version", "1.2.0", "--sign-key", "other.pem");
      await t.ok("publish", "in", "datasets/d", "--version", "1.0.0");
      await writeFile(path.join(t.cwd, "assetkit.yml"), 'trust:\n  rules:\n    - match: "models/**"\n      signers:\n        - key: release.pub\n');
      // `lock` refuses what fails: the lockfile is written as if the store changed after locking (the pin is the policy's).
      await t.ok("lock", `${ASSET}:1.0.0`, "--lockfile", "pin.lock");
      const pinned = JSON.parse(await readFile(path.join(t.cwd, "pin.lock"), "utf8")) as { trust: string };
      const entries = Object.fromEntries(
        ["datasets/d:1.0.0", `${ASSET}:1.0.0`, `${ASSET}:1.1.0`, `${ASSET}:1.2.0`].map((spec) => {
          const [name, version] = spec.split(":");
          return [spec, { name, version, digest: null }];
        }),
      );
      await writeFile(path.join(t.cwd, "assets.lock"), JSON.stringify({ lockfileVersion: 2, store: t.store, trust: pinned.trust, assets: entries }));
      const r = await t.cli("verify", "--json");
      assert.equal(r.code, 1, r.stderr);
      const statuses = (JSON.parse(r.stdout) as { verified: { spec: string; status: string; detail: string | null }[] }).verified.map((v) => [
        v.spec,
        v.status,
      ]);
      assert.deepEqual(statuses, [
        ["datasets/d:1.0.0", "no-trust-rule"],
        [`${ASSET}:1.0.0`, "ok"],
        [`${ASSET}:1.1.0`, "unsigned"],
        [`${ASSET}:1.2.0`, "bad-signature"],
      ]);
    });

    it("the storage initializer under ASSETKIT_TRUST_POLICY writes a signed version's files, and nothing of an unsigned one", async () => {
      const t = await project(storeName);
      await t.ok("publish", "in", ASSET, "--version", "1.0.0", "--sign-key", "release.pem");
      await t.ok("publish", "in", ASSET, "--version", "1.1.0");
      await t.policy("release");
      const policyFile = path.join(t.cwd, "assetkit.yml"); // only a trust: block, as a ConfigMap would hold
      const source = (version: string) => `assetkit://${t.store.replace("://", "/")}#${ASSET}:${version}`;
      const initialize = (version: string, dest: string) =>
        runCli([source(version), dest], { cwd: path.dirname(t.cwd), cli: INITIALIZER, env: { ...s3TestEnv(), ASSETKIT_TRUST_POLICY: policyFile } });

      const unsigned = path.join(t.cwd, "model-unsigned");
      const refusedRun = await initialize("1.1.0", unsigned);
      assert.equal(refusedRun.code, 1, refusedRun.stderr);
      assert.match(
        refusedRun.stderr,
        /^error: models\/m:1\.1\.0: not signed \(no models\/m\/1\.1\.0\.sig in .*\), and trust rule "models\/\*\*" requires a signature; nothing installed$/m,
      );
      assert.deepEqual(await readdir(unsigned).catch(() => []), []);

      const signed = path.join(t.cwd, "model-signed");
      const ran = await initialize("1.0.0", signed);
      assert.equal(ran.code, 0, ran.stderr);
      assert.deepEqual((await readdir(signed)).sort(), ["config.json", "weights.bin"]);
    });

    it("a tampered data object of a signed version is refused, nothing installed", async () => {
      const t = await project(storeName);
      await t.ok("publish", "in", ASSET, "--version", "1.0.0", "--sign-key", "release.pem");
      await t.policy("release");
      await t.seed.write(`${ASSET}/1.0.0/config.json`, Buffer.from('{"a":2}'));
      const r = await t.cli("fetch", `${ASSET}:1.0.0`);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /config\.json/);
      assert.deepEqual(await t.installed(), []);
    });

    it("gc removes the .sig of a version without a meta; prune deletes it with its version; promote --to copies it", async () => {
      const t = await project(storeName);
      await t.ok("publish", "in", ASSET, "--version", "1.0.0", "--sign-key", "release.pem");
      await t.ok("publish", "in", ASSET, "--version", "1.1.0", "--sign-key", "release.pem");
      // A publisher killed between its .sig and its meta: data and signature of 2.0.0, no meta.
      await t.seed.write(`${ASSET}/2.0.0/weights.bin`, Buffer.from("partial"));
      await t.seed.write(`${ASSET}/2.0.0.sig`, (await t.seed.read(`${ASSET}/1.1.0.sig`))!.data);
      await t.ok("gc", "--older-than", "0s");
      assert.ok(!(await keys(t.seed)).some((k) => k.startsWith(`${ASSET}/2.0.0`)), "gc left 2.0.0's data or .sig");

      const destination = path.join(t.cwd, "production");
      await t.ok("promote", `${ASSET}:1.1.0`, "--to", destination);
      await t.policy("release");
      const promoted = await runCli(["fetch", `${ASSET}:1.1.0`, "--store", destination], { cwd: t.cwd });
      assert.equal(promoted.code, 0, promoted.stderr);

      await t.ok("prune", "--keep-last", "1", "--keep-history", "0", "--yes");
      const left = await keys(t.seed);
      assert.ok(!left.some((k) => k.startsWith(`${ASSET}/1.0.0`)), `prune left ${left.join(", ")}`);
      assert.ok(left.includes(`${ASSET}/1.1.0.sig`));
    });

    for (const inPlace of storeName === "file" ? [false, true] : [false]) {
      it(`sync${inPlace ? " --in-place" : ""} under a policy does not bring in an unsigned or wrongly signed version: current keeps serving the previous one`, async () => {
        const t = await project(storeName);
        await t.policy("release");
        const statusFile = path.join(t.cwd, "status.json");
        const sync = () => t.cli("sync", `${ASSET}:production`, "--dir", "serve", "--status-file", statusFile, ...(inPlace ? ["--in-place"] : []));
        const served = async () => path.basename(await realpath(path.join(t.cwd, "serve", ASSET, "current")));
        // The channel is moved by a project without the policy (a channel move checks the version under its own).
        await writeFile(path.join(t.cwd, "plain.yml"), "versioning: semver\n");
        const release = async (version: string, ...sign: string[]) => {
          await t.ok("publish", "in", ASSET, "--version", version, ...sign);
          await t.ok("promote", `${ASSET}:${version}`, "production", "--config", "plain.yml");
        };
        await release("1.0.0", "--sign-key", "release.pem");
        assert.equal((await sync()).code, 0);
        assert.equal(await served(), "1.0.0");

        for (const [version, sign, check] of [
          ["1.1.0", [], /not signed \(no models\/m\/1\.1\.0\.sig in .*\), and trust rule "models\/\*\*" requires a signature/],
          ["1.2.0", ["--sign-key", "other.pem"], /its signature is by a key that is not allowed \(public key hint [0-9a-f]{64}\)/],
        ] as const) {
          await release(version, ...sign);
          const r = await sync();
          assert.equal(r.code, 1, r.stderr);
          const lines = r.stderr.trim().split("\n");
          assert.equal(lines.length, 1, r.stderr);
          assert.match(lines[0]!, new RegExp(`^error: models/m:${version.replaceAll(".", "\\.")}: ${check.source}; not brought in, still serving 1\\.0\\.0$`));
          assert.equal(await served(), "1.0.0");
          const status = JSON.parse(await readFile(statusFile, "utf8")) as {
            ok: boolean;
            assets: { version: string; ok: boolean; lastError: { message: string } | null }[];
          };
          assert.equal(status.ok, false);
          assert.equal(status.assets[0]!.version, "1.0.0");
          assert.match(status.assets[0]!.lastError?.message ?? "", check);
        }
        assert.deepEqual(
          (await readdir(path.join(t.cwd, "serve", ASSET))).filter((v) => !v.startsWith(".")),
          inPlace ? ["current"] : ["1.0.0", "current"], // in place, current links into the store's own folder
          "nothing of the refused versions brought in",
        );

        await release("1.3.0", "--sign-key", "release.pem");
        assert.equal((await sync()).code, 0);
        assert.equal(await served(), "1.3.0");
      });
    }

    it("promote --to under a policy copies a signed version, and refuses an unsigned one before writing anything at the destination", async () => {
      const t = await project(storeName);
      await t.ok("publish", "in", ASSET, "--version", "1.0.0");
      await t.ok("publish", "in", ASSET, "--version", "1.1.0", "--sign-key", "release.pem");
      await t.policy("release");
      const destination = path.join(t.cwd, "production");
      const r = await t.cli("promote", `${ASSET}:1.0.0`, "--to", destination);
      assert.equal(r.code, 1, r.stderr);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0]!, /^error: models\/m:1\.0\.0: not signed \(no models\/m\/1\.0\.0\.sig in .*\), .*; nothing copied to .*production$/);
      assert.deepEqual(await readdir(destination).catch(() => []), [], "nothing written at the destination");

      await t.ok("promote", `${ASSET}:1.1.0`, "--to", destination);
      const promoted = await runCli(["fetch", `${ASSET}:1.1.0`, "--store", destination], { cwd: t.cwd });
      assert.equal(promoted.code, 0, promoted.stderr);
    });
  });
}

describe("a warm locked fetch under a trust policy", { skip: skipReason(factories.find((f) => f.name.startsWith("s3"))!) }, () => {
  it("signing costs one request; a warm fetch asks MinIO nothing for a copy verified under the same policy, verifies again (without downloading) once the policy changes, then asks nothing", async () => {
    const counter = await startRequestCounter(process.env.ASSETKIT_TEST_S3_ENDPOINT!);
    try {
      const t = await project("s3", (uri) => uri.replace(/endpoint=[^&]+/, `endpoint=${encodeURIComponent(counter.url)}`));
      // Signing costs one request: the .sig PUT (two first publishes of the same files, one unsigned, one signed).
      counter.reset();
      await t.ok("publish", "in", "models/unsigned", "--version", "1.0.0");
      const unsignedRequests = counter.requests().length;
      counter.reset();
      await t.ok("publish", "in", ASSET, "--version", "1.0.0", "--sign-key", "release.pem");
      assert.equal(counter.requests().length, unsignedRequests + 1);
      assert.equal(counter.requests().filter((r) => r.url.includes(".sig")).length, 1);
      await t.policy("release");
      counter.reset();
      await t.ok("lock", `${ASSET}:1`);
      const lockReads = counter.requests().map((r) => r.url);
      assert.equal(lockReads.filter((u) => u.includes(".sig")).length, 1, "lock under a policy reads the version's .sig once");
      // A cold locked fetch costs exactly one request more under the policy than without one: the GET of the .sig.
      const cold = async (assetsDir: string, ...config: string[]) => {
        counter.reset();
        await t.ok("fetch", "--assets-dir", assetsDir, ...config);
        return counter.requests();
      };
      await writeFile(path.join(t.cwd, "plain.yml"), "versioning: semver\n");
      const unverified = await cold("cold-plain", "--config", "plain.yml", "--lockfile", "assets.lock");
      const verified = await cold("cold-signed");
      assert.equal(verified.length, unverified.length + 1, `${verified.map((r) => r.url).join("\n")}\n---\n${unverified.map((r) => r.url).join("\n")}`);
      assert.equal(verified.filter((r) => r.url.includes(".sig")).length, 1);
      await t.ok("fetch");
      counter.reset();
      await t.ok("fetch");
      assert.deepEqual(counter.requests(), [], "a warm verified fetch makes no store request");

      await t.policy("release", "other");
      await t.ok("fetch");
      const reads = counter.requests().filter((r) => r.method === "GET" && !r.range);
      assert.ok(reads.length > 0, "a changed policy verifies the copy's version again");
      assert.ok(!counter.requests().some((r) => r.url.includes("weights.bin")), "no data is downloaded again");
      counter.reset();
      await t.ok("fetch");
      assert.deepEqual(counter.requests(), [], "the copy now records the new policy");
    } finally {
      await counter.stop();
    }
  });
});
