// Signing a version with a key and verifying a signature, in model_signing's OMS format (docs/trust.md, section 3):
// a Sigstore bundle holding a DSSE envelope of the in-toto statement that lists the version's files with their sha256.
// A signature is checked in three steps, each usable alone: its bundle's shape, its cryptographic signature (a key
// here; a certificate later), then its statement against a meta or hashed files and the version it must name.
import { AssetError } from "../base/errors.ts";
import { bundleBytes, keyBundle, parseBundle, type ParsedBundle } from "./bundle.ts";
import { IN_TOTO_PAYLOAD_TYPE, preAuthEncoding, signEnvelope } from "./dsse.ts";
import { signWithKey, verifiesWithKey, type SigningKey, type VerifyingKey } from "./keys.ts";
import { signKeylessly, type KeylessSigning } from "./keyless.ts";
import { bindingDifference, contentDifference, parseStatement, statementOf, type OmsStatement, type SignedContent, type VersionBinding } from "./statement.ts";

/** `version`: the statement must name the version (assetkit's binding block); `content`: a statement without one binds files only. */
export type VersionBindingRule = "version" | "content";

/** The bundle bytes (the `.sig` object) signing `content` as `binding` with `key`. Reads no file: the meta's sha256 are used. */
export function signVersion(content: SignedContent, binding: VersionBinding, key: SigningKey): Buffer {
  const statement = Buffer.from(JSON.stringify(statementOf(content, binding)));
  return bundleBytes(
    keyBundle(
      signEnvelope(IN_TOTO_PAYLOAD_TYPE, statement, (pae) => signWithKey(key, pae)),
      key.hint,
    ),
  );
}

/** The bundle bytes signing `content` as `binding` keylessly: a Sigstore certificate for the signer's OIDC identity. */
export async function signVersionKeyless(content: SignedContent, binding: VersionBinding, signing: KeylessSigning): Promise<Buffer> {
  const statement = Buffer.from(JSON.stringify(statementOf(content, binding)));
  return signKeylessly(statement, signing, `${binding.name}:${binding.version}`);
}

/** The thrower of one-line errors about the signature of `label` (`name:version`). */
function failure(label: string): (why: string) => never {
  return (why) => {
    throw new AssetError(`${label}: its signature ${why}`);
  };
}

/** A signature file's bundle, checked for shape only. */
export function readSignature(data: Buffer, label: string): ParsedBundle {
  return parseBundle(data, failure(label));
}

/** The key of `keys` that made the bundle's signature (found by its hint, as model_signing does); throws if none. */
export function keyThatSigned<Key extends VerifyingKey>(bundle: ParsedBundle, keys: readonly Key[], label: string): Key {
  const bad = failure(label);
  if (bundle.keyHint === undefined) return bad("is not signed with a key (no public key hint)");
  const key = keys.find((k) => k.hint === bundle.keyHint);
  if (!key) return bad(`is by a key that is not allowed (public key hint ${bundle.keyHint})`);
  if (!verifiesWithKey(key, preAuthEncoding(bundle.payloadType, bundle.payload), bundle.signature))
    return bad(`does not verify with the key of hint ${key.hint}`);
  return key;
}

export interface StatementExpectation {
  /** The files it must list exactly: a meta's, or a local input's as hashed. */
  content: SignedContent;
  /** What `content` is, for the error: "its meta", "the files". */
  contentName: string;
  binding: VersionBinding;
  rule: VersionBindingRule;
}

/**
 * The bundle's statement, checked against the expected files and version. A binding block, when present, must
 * name this version under either rule: `content` only accepts statements without one (model_signing's own).
 */
export function checkedStatement(bundle: ParsedBundle, expected: StatementExpectation, label: string): OmsStatement {
  const bad = failure(label);
  const statement = parseStatement(bundle.payload, bad);
  // The version first: a signature copied from another version is best named as such, not by its files.
  const version = bindingDifference(statement, expected.binding, expected.rule === "version");
  if (version) bad(version);
  const files = contentDifference(statement, expected.content);
  if (files) bad(`covers other files than ${expected.contentName} (${files})`);
  return statement;
}

/** The three checks of a key signature: shape, signature by one of `keys`, statement. Returns the signing key. */
export function verifyKeySignature<Key extends VerifyingKey>(data: Buffer, keys: readonly Key[], expected: StatementExpectation): Key {
  const label = `${expected.binding.name}:${expected.binding.version}`;
  const bundle = readSignature(data, label);
  const key = keyThatSigned(bundle, keys, label);
  checkedStatement(bundle, expected, label);
  return key;
}
