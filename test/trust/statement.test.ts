// The OMS statement built from a meta, the bundle around it, and the checks of each, without model_signing
// (test/trust/model-signing.test.ts runs the reference tool both ways).
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync } from "node:crypto";
import { describe, it } from "node:test";
import { AssetError, UsageError } from "../../src/base/errors.ts";
import { assetDigest, parseMeta } from "../../src/registry/manifest.ts";
import { preAuthEncoding } from "../../src/trust/dsse.ts";
import { signWithKey, signingKeyFromPem, verifyingKeyFromPem, type SigningKey } from "../../src/trust/keys.ts";
import { signVersion, verifyKeySignature, type StatementExpectation } from "../../src/trust/oms.ts";
import { compareResourceNames, parseStatement, statementOf, type SignedContent } from "../../src/trust/statement.ts";

const sha = (s: string) => createHash("sha256").update(s).digest("hex");
const binding = { name: "models/m", version: "1.0.0", digest: `sha256:${sha("digest")}` };

/** A validated meta whose files exist nowhere: building the statement must not read them. */
function meta(files: Record<string, string>, isDirectory = true) {
  const entries = Object.entries(files).map(([path, content]) => ({ path, size: content.length, sha256: sha(content) }));
  const doc = {
    push_date: "2026-12-06T00:00:00.000Z",
    is_directory: isDirectory,
    contents: isDirectory ? entries.map((e) => e.path) : [],
    assetkit: { schema: 2, digest: assetDigest(entries), size: 1, part_size: 16 << 20, files: entries, created_by: "test", source: {}, metadata: {} },
  };
  return parseMeta(Buffer.from(JSON.stringify(doc)), "test meta");
}

function pemKeys(curve: string): { key: SigningKey; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: curve });
  return {
    key: signingKeyFromPem(privateKey.export({ type: "pkcs8", format: "pem" }), "test key"),
    publicPem: publicKey.export({ type: "spki", format: "pem" }) as string,
  };
}

const bad = (why: string): never => {
  throw new AssetError(why);
};

interface EditableStatement {
  subject: { name: string; digest: { sha256: string } }[];
  predicateType: string;
  predicate: { serialization: Record<string, unknown>; resources: unknown[]; assetkit?: unknown };
}

/** A statement as JSON, changed by `edit`, re-encoded as a payload. */
function editedPayload(content: SignedContent, edit: (s: EditableStatement) => void): Buffer {
  const s = JSON.parse(JSON.stringify(statementOf(content, binding))) as EditableStatement;
  edit(s);
  return Buffer.from(JSON.stringify(s));
}

describe("OMS statement from a meta", () => {
  it("lists resources segment by segment, as model_signing sorts PurePosixPaths (a/b < a-b < a.txt < é)", () => {
    const s = statementOf(meta({ é: "1", "a.txt": "2", "a-b": "3", "a/b": "4", Z: "5" }), binding);
    assert.deepEqual(
      s.predicate.resources.map((r) => r.name),
      ["Z", "a/b", "a-b", "a.txt", "é"],
    );
    assert.ok(compareResourceNames("a/b/c", "a/bc") < 0 && compareResourceNames("a", "a/b") < 0);
  });

  it("has the subject digest over the raw resource digests in listed order, the version binding and .SUCCESS ignored", () => {
    const m = meta({ "x/w.bin": "weights", "c.json": "{}" });
    const s = statementOf(m, binding);
    const raw = Buffer.concat(s.predicate.resources.map((r) => Buffer.from(r.digest, "hex")));
    assert.deepEqual(s.subject, [{ name: "models/m:1.0.0", digest: { sha256: createHash("sha256").update(raw).digest("hex") } }]);
    assert.deepEqual(s.predicate.assetkit, binding);
    assert.deepEqual(s.predicate.serialization, { method: "files", hash_type: "sha256", allow_symlinks: false, ignore_paths: [".SUCCESS"] });
    assert.deepEqual(s.predicate.resources[0], { name: "c.json", algorithm: "sha256", digest: sha("{}") });
    assert.equal(s._type, "https://in-toto.io/Statement/v1");
    assert.equal(s.predicateType, "https://model_signing/signature/v1.0");
  });

  it('names a single-file asset "." and ignores nothing', () => {
    const s = statementOf(meta({ "": "the file" }, false), binding);
    assert.deepEqual(s.predicate.resources, [{ name: ".", algorithm: "sha256", digest: sha("the file") }]);
    assert.deepEqual(s.predicate.serialization.ignore_paths, []);
  });

  it("refuses a meta without sha256 (modelkit's)", () => {
    assert.throws(() => statementOf({ isDirectory: true, files: [{ path: "a" }] }, binding), /models\/m:1.0.0 cannot be signed: its meta has no sha256 for a/);
  });
});

describe("OMS statement parsing and checks", () => {
  const content = meta({ "a/b": "1", "a.txt": "2" });

  it("parses back what it builds", () => {
    const payload = Buffer.from(JSON.stringify(statementOf(content, binding)));
    assert.deepEqual(parseStatement(payload, bad), statementOf(content, binding));
  });

  it("refuses other serializations, an inconsistent subject digest, duplicates and other predicate types", () => {
    const cases: [(s: EditableStatement) => void, RegExp][] = [
      [
        (s) => (s.predicate.serialization = { method: "shards", hash_type: "sha256", shard_size: 1 << 30 }),
        /shards serialization.*re-sign with model_signing's default/,
      ],
      [(s) => (s.predicate.serialization.hash_type = "blake2"), /files serialization with blake2/],
      [(s) => (s.subject[0]!.digest.sha256 = sha("other")), /subject digest that does not match its resources/],
      [(s) => s.predicate.resources.push(s.predicate.resources[0]), /lists a\/b twice/],
      [(s) => (s.predicateType = "https://slsa.dev/provenance/v1"), /has predicate type "https:\/\/slsa.dev\/provenance\/v1"/],
      [(s) => s.subject.push(s.subject[0]!), /exactly one subject/],
      [(s) => (s.predicate.assetkit = { name: 1 }), /assetkit binding that is not/],
    ];
    for (const [edit, message] of cases) assert.throws(() => parseStatement(editedPayload(content, edit), bad), message);
  });
});

describe("key signatures (bundle v0.3, DSSE)", () => {
  const content = meta({ "a/b": "1", "a.txt": "2" });
  const expect = (over: Partial<StatementExpectation> = {}): StatementExpectation => ({ content, contentName: "its meta", binding, rule: "version", ...over });

  for (const curve of ["P-256", "P-384", "P-521"]) {
    it(`signs and verifies with ${curve}, in model_signing's bundle shape`, () => {
      const { key, publicPem } = pemKeys(curve);
      const data = signVersion(content, binding, key);
      const verifying = verifyingKeyFromPem(publicPem, "test public key");
      assert.equal(verifyKeySignature(data, [verifying], expect()).hint, key.hint);
      const bundle = JSON.parse(data.toString());
      assert.deepEqual(Object.keys(bundle), ["mediaType", "verificationMaterial", "dsseEnvelope"]);
      assert.equal(bundle.mediaType, "application/vnd.dev.sigstore.bundle.v0.3+json");
      assert.deepEqual(bundle.verificationMaterial, { publicKey: { hint: sha(publicPem) }, tlogEntries: [] });
      assert.equal(bundle.dsseEnvelope.payloadType, "application/vnd.in-toto+json");
      assert.equal(bundle.dsseEnvelope.signatures.length, 1);
      assert.equal(bundle.dsseEnvelope.signatures[0].keyid, "");
    });
  }

  it("uses the DSSE v1 pre-authentication encoding (lengths in bytes)", () => {
    assert.equal(preAuthEncoding("t/x", Buffer.from("é")).toString(), "DSSEv1 3 t/x 2 é");
  });

  it("refuses another key, a changed payload, another version, other files, and no binding unless the rule is content", () => {
    const { key } = pemKeys("P-256");
    const other = pemKeys("P-256");
    const data = signVersion(content, binding, key);
    const keys = [verifyingKeyFromPem(key.publicKey.export({ type: "spki", format: "pem" }), "k")];
    assert.throws(
      () => verifyKeySignature(data, [verifyingKeyFromPem(other.publicPem, "k2")], expect()),
      /^AssetError: models\/m:1.0.0: its signature is by a key that is not allowed/,
    );

    const bundle = JSON.parse(data.toString());
    const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, "base64").toString());
    statement.predicate.assetkit.version = "1.1.0";
    bundle.dsseEnvelope.payload = Buffer.from(JSON.stringify(statement)).toString("base64");
    assert.throws(() => verifyKeySignature(Buffer.from(JSON.stringify(bundle)), keys, expect()), /its signature does not verify with the key of hint/);

    const later = { ...binding, version: "1.1.0" };
    assert.throws(() => verifyKeySignature(data, keys, expect({ binding: later })), /^AssetError: models\/m:1.1.0: its signature is for models\/m:1.0.0$/);
    assert.throws(() => verifyKeySignature(data, keys, expect({ binding: later, rule: "content" })), /is for models\/m:1.0.0/);
    assert.throws(() => verifyKeySignature(data, keys, expect({ binding: { ...binding, digest: `sha256:${sha("x")}` } })), /is for asset digest/);

    const changed = meta({ "a/b": "1", "a.txt": "changed" });
    assert.throws(
      () => verifyKeySignature(data, keys, expect({ content: changed })),
      /covers other files than its meta \(a.txt: sha256 [0-9a-f]{64}, signed [0-9a-f]{64}\)/,
    );
    assert.throws(() => verifyKeySignature(data, keys, expect({ content: meta({ "a/b": "1" }) })), /\(a.txt is signed but not in the version\)/);
    assert.throws(() => verifyKeySignature(data, keys, expect({ content: meta({ "a/b": "1", "a.txt": "2", c: "3" }) })), /\(c is not signed\)/);

    const unbound = JSON.parse(data.toString());
    const s = JSON.parse(Buffer.from(unbound.dsseEnvelope.payload, "base64").toString());
    delete s.predicate.assetkit;
    const payload = Buffer.from(JSON.stringify(s));
    unbound.dsseEnvelope.payload = payload.toString("base64");
    unbound.dsseEnvelope.signatures[0].sig = signWithKey(key, preAuthEncoding("application/vnd.in-toto+json", payload)).toString("base64");
    const unboundData = Buffer.from(JSON.stringify(unbound));
    assert.throws(() => verifyKeySignature(unboundData, keys, expect()), /does not name a version .*version-binding: content/);
    assert.equal(verifyKeySignature(unboundData, keys, expect({ rule: "content" })).hint, key.hint);
  });

  it("refuses what is not a key bundle of an in-toto statement", () => {
    const { key } = pemKeys("P-256");
    const keys = [verifyingKeyFromPem(key.publicKey.export({ type: "spki", format: "pem" }), "k")];
    const data = JSON.parse(signVersion(content, binding, key).toString());
    const cases: [unknown, RegExp][] = [
      ["not json", /its signature is not JSON/],
      [{ ...data, mediaType: "application/vnd.dev.sigstore.bundle+json;version=0.1" }, /has media type/],
      [{ ...data, dsseEnvelope: undefined }, /holds no DSSE envelope/],
      [{ ...data, dsseEnvelope: { ...data.dsseEnvelope, payloadType: "text/plain" } }, /has payload type "text\/plain"/],
      [{ ...data, dsseEnvelope: { ...data.dsseEnvelope, signatures: [] } }, /has no signature/],
      [{ ...data, verificationMaterial: { certificate: { rawBytes: "" } } }, /is not signed with a key/],
    ];
    for (const [bundle, message] of cases) {
      const bytes = Buffer.from(typeof bundle === "string" ? bundle : JSON.stringify(bundle));
      assert.throws(() => verifyKeySignature(bytes, keys, expect()), message);
    }
  });
});

describe("signing keys", () => {
  it("refuses ed25519, RSA and other curves, naming the key", () => {
    const ed = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" });
    assert.throws(
      () => signingKeyFromPem(ed, "keys/ed.pem"),
      (err: Error) => {
        assert.ok(err instanceof UsageError);
        assert.equal(err.message, "keys/ed.pem: ed25519 keys are not supported (model_signing signs only with EC keys on P-256, P-384 or P-521)");
        return true;
      },
    );
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ type: "spki", format: "pem" });
    assert.throws(() => verifyingKeyFromPem(rsa, "keys/rsa.pub"), /keys\/rsa.pub: rsa keys are not supported/);
    const k1 = generateKeyPairSync("ec", { namedCurve: "secp256k1" }).privateKey.export({ type: "pkcs8", format: "pem" });
    assert.throws(() => signingKeyFromPem(k1, "k1.pem"), /k1.pem: EC keys on secp256k1 are not supported/);
    assert.throws(() => verifyingKeyFromPem("not a key", "x.pub"), /^UsageError: x.pub is not a PEM public key/);
  });

  it("hints a key by the sha256 of its SubjectPublicKeyInfo PEM, from the private or the public key alike", () => {
    const { key, publicPem } = pemKeys("P-384");
    assert.equal(key.hint, sha(publicPem));
    assert.equal(verifyingKeyFromPem(publicPem, "p").hint, key.hint);
  });
});
