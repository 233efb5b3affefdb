// Signing keys as model_signing's key mode takes them: EC on P-256, P-384 or P-521, ECDSA (DER) with the hash
// that goes with the curve. Its verifier finds the key by a hint: the hex sha256 of the public key's PEM text.
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { UsageError } from "../base/errors.ts";

/** Node's name of each curve model_signing signs with, and the hash it uses with it. */
const HASH_OF_CURVE: Record<string, string> = { prime256v1: "sha256", secp384r1: "sha384", secp521r1: "sha512" };

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The hash ECDSA signs with, fixed by the curve. */
  hash: string;
  /** model_signing's public key hint: hex sha256 of the SubjectPublicKeyInfo PEM text. */
  hint: string;
}

export interface VerifyingKey {
  publicKey: KeyObject;
  hash: string;
  hint: string;
}

/** The hash of an EC key on a supported curve; any other key is refused, naming what it is (`where`: the key's origin). */
function hashOf(key: KeyObject, where: string): string {
  const curve = key.asymmetricKeyType === "ec" ? key.asymmetricKeyDetails?.namedCurve : undefined;
  const hash = curve ? HASH_OF_CURVE[curve] : undefined;
  if (!hash) {
    const what = key.asymmetricKeyType === "ec" ? `EC keys on ${curve ?? "an unnamed curve"}` : `${key.asymmetricKeyType} keys`;
    throw new UsageError(`${where}: ${what} are not supported (model_signing signs only with EC keys on P-256, P-384 or P-521)`);
  }
  return hash;
}

export function publicKeyHint(publicKey: KeyObject): string {
  return createHash("sha256")
    .update(publicKey.export({ type: "spki", format: "pem" }))
    .digest("hex");
}

/** How assets.lock and the JSON outputs name a key signer: `key:` and its hint. */
export function keySignerId(hint: string): string {
  return `key:${hint}`;
}

/** A private key from PEM (PKCS #8 or SEC 1), as `model_signing sign key --private_key` reads it. */
export function signingKeyFromPem(pem: string | Buffer, where: string): SigningKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (err) {
    throw new UsageError(`${where} is not a PEM private key: ${(err as Error).message}`);
  }
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, hash: hashOf(privateKey, where), hint: publicKeyHint(publicKey) };
}

/** A public key from PEM (SubjectPublicKeyInfo), as `model_signing verify key --public_key` reads it. */
export function verifyingKeyFromPem(pem: string | Buffer, where: string): VerifyingKey {
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey(pem);
  } catch (err) {
    throw new UsageError(`${where} is not a PEM public key: ${(err as Error).message}`);
  }
  return { publicKey, hash: hashOf(publicKey, where), hint: publicKeyHint(publicKey) };
}

/** DER-encoded ECDSA signature of `data`. */
export function signWithKey(key: SigningKey, data: Buffer): Buffer {
  return sign(key.hash, data, key.privateKey);
}

export function verifiesWithKey(key: VerifyingKey, data: Buffer, signature: Buffer): boolean {
  try {
    return verify(key.hash, data, key.publicKey, signature);
  } catch {
    return false; // not a DER signature at all
  }
}
