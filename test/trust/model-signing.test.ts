// Interoperability with the reference OMS tool, model_signing 1.1.1 (PyPI model-signing, key mode), both ways
// (docs/trust.md, G5): what assetkit signs for a published version verifies with `model_signing verify key` on the
// fetched files, and what `model_signing sign key` signs is accepted by assetkit's verifier under content binding.
// The versions are published (signed by `publish --sign-key`) and fetched with the shipped CLI on a folder store.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, describe, it } from "node:test";
import { assetDigest, parseMeta, prepareInput, type VersionMeta } from "../../src/registry/manifest.ts";
import { signingKeyFromPem, verifyingKeyFromPem } from "../../src/trust/keys.ts";
import { readSignature, signVersion, verifyKeySignature, type StatementExpectation } from "../../src/trust/oms.ts";
import { statementOf } from "../../src/trust/statement.ts";
import { runCli, scratch, writeTree } from "../helpers/cli.ts";

const MODEL_SIGNING = process.env.ASSETKIT_TEST_MODEL_SIGNING;
const TIMEOUT_MS = 120_000;

/** Why these tests cannot run here, or undefined; under the full test command a missing tool is an error. */
function skipReason(): string | undefined {
  let why: string | undefined;
  if (!MODEL_SIGNING) why = "ASSETKIT_TEST_MODEL_SIGNING not set (no model-signing virtualenv: run scripts/install-test-servers.sh)";
  else if (!existsSync(MODEL_SIGNING)) why = `model_signing ${MODEL_SIGNING} does not exist (run scripts/install-test-servers.sh)`;
  if (why && process.env.ASSETKIT_TEST_ALL_STORES === "1") throw new Error(`model_signing interop must run under the test command but: ${why}`);
  return why;
}

/** Runs model_signing; its exit code and output. */
function modelSigning(args: string[], cwd: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(MODEL_SIGNING!, args, { cwd, timeout: TIMEOUT_MS, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
      const code = !err ? 0 : typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : 1;
      resolve({ code, output: stdout + stderr });
    });
  });
}

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

/** A scratch folder with a key pair on `curve` in PEM files (generated now, never committed). */
async function setup(curve = "P-256") {
  const cwd = await scratch();
  dirs.push(cwd);
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: curve });
  const privatePem = privateKey.export({ type: "pkcs8", format: "pem" });
  const publicPem = publicKey.export({ type: "spki", format: "pem" });
  await writeFile(path.join(cwd, "signing.pem"), privatePem);
  await writeFile(path.join(cwd, "signing.pub"), publicPem);
  const store = path.join(cwd, "store");
  const cli = async (...args: string[]) => {
    const r = await runCli([...args, "--store", store, "--json"], { cwd });
    assert.equal(r.code, 0, `assetkit ${args.join(" ")}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  /** Publishes `input` as name:version (signed with `signing.pem` when `sign`) and fetches it; the stored meta and the fetched path. */
  const publishAndFetch = async (input: string, name: string, version: string, sign = false): Promise<{ meta: VersionMeta; fetched: string }> => {
    await cli("publish", input, name, "--version", version, ...(sign ? ["--sign-key", "signing.pem"] : []));
    const metaKey = path.join(store, ...name.split("/"), `${version}.meta`);
    const meta = parseMeta(await readFile(metaKey), metaKey);
    const fetched = (await cli("fetch", `${name}:${version}`)).resolved[0].path as string;
    return { meta, fetched };
  };
  return {
    cwd,
    store,
    key: signingKeyFromPem(privatePem, "signing.pem"),
    verifying: verifyingKeyFromPem(publicPem, "signing.pub"),
    publishAndFetch,
  };
}

/** Nested, non-ASCII and order-sensitive paths (model_signing sorts by segments: a/b < a-b < a.txt). */
const FOLDER = { "a/b": "nested", "a-b": "dash", "a.txt": "dot", "é/ü.bin": "accents", Z: "upper", "sub/deep/w.bin": Buffer.alloc(70_000, 7) };

describe("model_signing interop (key)", { skip: skipReason() }, () => {
  for (const [curve, kind] of [
    ["P-256", "folder"],
    ["P-384", "single file"],
    ["P-521", "folder"],
  ] as const) {
    it(`model_signing verify key accepts the .sig publish --sign-key wrote for a fetched ${kind} version (${curve}), and refuses a changed byte`, async () => {
      const t = await setup(curve);
      const input = kind === "folder" ? "in" : "weights.bin";
      await writeTree(path.join(t.cwd, kind === "folder" ? "in" : ""), kind === "folder" ? FOLDER : { "weights.bin": "the weights" });
      const { fetched } = await t.publishAndFetch(input, "models/m", "1.0.0", true);
      const signature = path.join(t.store, "models", "m", "1.0.0.sig");
      if (kind === "folder") assert.ok(existsSync(path.join(fetched, ".SUCCESS")), "a fetched folder holds .SUCCESS, which the statement must ignore");
      const verify = () => modelSigning(["verify", "key", fetched, "--signature", signature, "--public_key", "signing.pub"], t.cwd);
      const ok = await verify();
      assert.equal(ok.code, 0, ok.output);

      const changed = kind === "folder" ? path.join(fetched, "é", "ü.bin") : fetched;
      await writeFile(changed, "accentz");
      assert.equal((await verify()).code, 1);
    });
  }

  it("assetkit accepts a folder model_signing signed (content binding), and refuses a changed byte, a changed meta, a bundle of another version", async () => {
    const t = await setup();
    await writeTree(path.join(t.cwd, "in"), FOLDER);
    const signed = await modelSigning(["sign", "key", "in", "--private_key", "signing.pem", "--signature", "in.sig"], t.cwd);
    assert.equal(signed.code, 0, signed.output);
    const bundle = await readFile(path.join(t.cwd, "in.sig"));
    const binding = (digest: string) => ({ name: "models/m", version: "1.0.0", digest });

    // Against the files as hashed (what `publish --signature` will check), then the published meta.
    const hashed = await prepareInput(path.join(t.cwd, "in"));
    const againstFiles: StatementExpectation = { content: hashed, contentName: "the files", binding: binding(hashed.digest), rule: "content" };
    assert.equal(verifyKeySignature(bundle, [t.verifying], againstFiles).hint, t.verifying.hint);
    // assetkit lists the resources in model_signing's order, so both give the same subject digest for the same files.
    const theirs = readSignature(bundle, "in").payload.toString();
    const ours = statementOf(hashed, binding(hashed.digest));
    assert.deepEqual(JSON.parse(theirs).predicate.resources, ours.predicate.resources);
    assert.equal(JSON.parse(theirs).subject[0].digest.sha256, ours.subject[0].digest.sha256);
    const { meta } = await t.publishAndFetch("in", "models/m", "1.0.0");
    const againstMeta: StatementExpectation = { content: meta, contentName: "its meta", binding: binding(meta.digest!), rule: "content" };
    assert.equal(verifyKeySignature(bundle, [t.verifying], againstMeta).hint, t.verifying.hint);
    assert.throws(
      () => verifyKeySignature(bundle, [t.verifying], { ...againstMeta, rule: "version" }),
      /models\/m:1.0.0: its signature does not name a version/,
    );

    // A changed byte in the input.
    await writeFile(path.join(t.cwd, "in", "a-b"), "dasH");
    const changed = await prepareInput(path.join(t.cwd, "in"));
    assert.throws(
      () => verifyKeySignature(bundle, [t.verifying], { ...againstFiles, content: changed, binding: binding(changed.digest) }),
      /^AssetError: models\/m:1.0.0: its signature covers other files than the files \(a-b: sha256 [0-9a-f]{64}, signed [0-9a-f]{64}\)$/,
    );

    // A meta rewritten consistently (another sha256 and the digest to match): still valid as a meta, refused as signed.
    const doc = structuredClone(meta.document);
    const entry = doc.assetkit!.files.find((f) => f.path === "Z")!;
    entry.sha256 = "0".repeat(64);
    doc.assetkit!.digest = assetDigest(doc.assetkit!.files, doc.assetkit!.part_size);
    const rewritten = parseMeta(Buffer.from(JSON.stringify(doc)), "rewritten meta");
    assert.throws(
      () => verifyKeySignature(bundle, [t.verifying], { ...againstMeta, content: rewritten, binding: binding(rewritten.digest!) }),
      /its signature covers other files than its meta \(Z: sha256 0{64}, signed/,
    );

    // A bundle assetkit made for 1.0.0 (binding block) presented for 1.1.0 of the same content: refused under either rule.
    const own = signVersion(meta, binding(meta.digest!), t.key);
    const later = { ...againstMeta, binding: { ...binding(meta.digest!), version: "1.1.0" } };
    assert.throws(() => verifyKeySignature(own, [t.verifying], later), /^AssetError: models\/m:1.1.0: its signature is for models\/m:1.0.0$/);
    assert.throws(() => verifyKeySignature(own, [t.verifying], { ...later, rule: "content" }), /is for models\/m:1.0.0/);
  });

  it("assetkit accepts a single file model_signing signed with a P-521 key", async () => {
    const t = await setup("P-521");
    await writeTree(t.cwd, { "weights.bin": "the weights" });
    const signed = await modelSigning(["sign", "key", "weights.bin", "--private_key", "signing.pem", "--signature", "w.sig"], t.cwd);
    assert.equal(signed.code, 0, signed.output);
    const { meta } = await t.publishAndFetch("weights.bin", "models/w", "1.0.0");
    const expected: StatementExpectation = {
      content: meta,
      contentName: "its meta",
      binding: { name: "models/w", version: "1.0.0", digest: meta.digest! },
      rule: "content",
    };
    assert.equal(verifyKeySignature(await readFile(path.join(t.cwd, "w.sig")), [t.verifying], expected).hint, t.verifying.hint);
  });
});
