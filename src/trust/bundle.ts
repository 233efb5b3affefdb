// The Sigstore bundle (v0.3 JSON) that holds a DSSE envelope, as model_signing writes and reads it. Key mode:
// `verificationMaterial.publicKey.hint` names the key, no certificate, no transparency-log entry, no timestamp.
import { IN_TOTO_PAYLOAD_TYPE, type DsseEnvelope } from "./dsse.ts";
import { isObject } from "./json.ts";

export const BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json";

export interface KeyBundle {
  mediaType: typeof BUNDLE_MEDIA_TYPE;
  verificationMaterial: { publicKey: { hint: string }; tlogEntries: [] };
  dsseEnvelope: DsseEnvelope;
}

/** What a parsed bundle says: its envelope's payload and first signature, and how the signer is named. */
export interface ParsedBundle {
  payload: Buffer;
  payloadType: string;
  signature: Buffer;
  /** Key mode: the public key hint. Undefined for a certificate bundle (keyless). */
  keyHint?: string;
  /** The whole bundle, for the Sigstore verifier of a certificate bundle. */
  json: Record<string, unknown>;
}

export function keyBundle(envelope: DsseEnvelope, hint: string): KeyBundle {
  return { mediaType: BUNDLE_MEDIA_TYPE, verificationMaterial: { publicKey: { hint }, tlogEntries: [] }, dsseEnvelope: envelope };
}

export function bundleBytes(bundle: KeyBundle): Buffer {
  return Buffer.from(JSON.stringify(bundle));
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** A bundle file's envelope, checked for shape (v0.3, in-toto DSSE, a base64 signature); `bad(why)` throws the caller's error. */
export function parseBundle(data: Buffer, bad: (why: string) => never): ParsedBundle {
  let json: unknown;
  try {
    json = JSON.parse(data.toString("utf8"));
  } catch {
    return bad("is not JSON");
  }
  if (!isObject(json)) return bad("is not a JSON object");
  const b = json;
  if (b.mediaType !== BUNDLE_MEDIA_TYPE) bad(`has media type ${JSON.stringify(b.mediaType)}, not ${BUNDLE_MEDIA_TYPE}`);
  const envelope = b.dsseEnvelope as Partial<DsseEnvelope> | undefined;
  if (typeof envelope !== "object" || envelope === null) return bad("holds no DSSE envelope");
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) bad(`has payload type ${JSON.stringify(envelope.payloadType)}, not ${IN_TOTO_PAYLOAD_TYPE}`);
  const sig = Array.isArray(envelope.signatures) ? envelope.signatures[0]?.sig : undefined;
  if (typeof envelope.payload !== "string" || !BASE64.test(envelope.payload)) bad("has a payload that is not base64");
  if (typeof sig !== "string" || sig === "" || !BASE64.test(sig)) return bad("has no signature in its envelope");
  const material = b.verificationMaterial as { publicKey?: { hint?: unknown } } | undefined;
  const hint = material?.publicKey?.hint;
  return {
    payload: Buffer.from(envelope.payload as string, "base64"),
    payloadType: envelope.payloadType as string,
    signature: Buffer.from(sig, "base64"),
    ...(typeof hint === "string" ? { keyHint: hint } : {}),
    json: b,
  };
}
