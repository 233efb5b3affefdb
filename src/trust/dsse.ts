// DSSE (Dead Simple Signing Envelope, secure-systems-lab/dsse v1): what is signed is the pre-authentication
// encoding of the payload type and the payload, never the payload alone, so a signature cannot be replayed
// under another type.

export const IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json";

export interface DsseEnvelope {
  /** base64 */
  payload: string;
  payloadType: string;
  /** model_signing verifies only the first. `sig`: base64. */
  signatures: { sig: string; keyid?: string }[];
}

/** PAE: "DSSEv1" SP len(type) SP type SP len(payload) SP payload, lengths in bytes, in decimal. */
export function preAuthEncoding(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, "utf8");
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

/** An envelope of `payload` with one signature made by `sign` over the PAE (keyid empty, as model_signing writes it). */
export function signEnvelope(payloadType: string, payload: Buffer, sign: (pae: Buffer) => Buffer): DsseEnvelope {
  const sig = sign(preAuthEncoding(payloadType, payload));
  return { payload: payload.toString("base64"), payloadType, signatures: [{ sig: sig.toString("base64"), keyid: "" }] };
}
