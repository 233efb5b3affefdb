// The hand-written SigV4 signer of the S3 fast paths gives, byte for byte, the headers the SDK's own signer gives
// for the same requests (a wrong signature would only show as a slower fallback through the SDK, so it is checked
// here), and the S3 store really sends its small reads and writes through it (counted at a proxy).
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import { describe, it } from "node:test";
import { SignatureV4 } from "@smithy/signature-v4";
import { SigV4Signer, type SigningCredentials } from "../../../src/store/s3/sigv4.ts";

const NOW = new Date("2026-03-04T05:06:07.890Z");
const CREDENTIALS: SigningCredentials = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" };

/** The SDK's Checksum shape over node:crypto (what @smithy/hash-node does), without importing a transitive package. */
class Sha256 {
  private readonly hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.hash = secret === undefined ? createHash("sha256") : createHmac("sha256", bytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}

function bytes(data: string | ArrayBuffer | ArrayBufferView): string | Buffer {
  if (typeof data === "string") return data;
  return ArrayBuffer.isView(data) ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : Buffer.from(data);
}

async function sdkHeaders(
  method: string,
  path: string,
  headers: Record<string, string>,
  credentials: SigningCredentials,
  region: string,
  query: Record<string, string> = {},
): Promise<Record<string, string>> {
  const signer = new SignatureV4({
    credentials,
    region,
    service: "s3",
    sha256: Sha256,
    uriEscapePath: false,
    applyChecksum: false,
  });
  const signed = await signer.sign({ method, protocol: "https:", hostname: headers.host!, path, query, headers: { ...headers } }, { signingDate: NOW });
  return signed.headers;
}

describe("SigV4 signer", () => {
  const cases: {
    what: string;
    method: string;
    path: string;
    headers: Record<string, string>;
    query?: Record<string, string>;
    credentials?: SigningCredentials;
    region?: string;
  }[] = [
    { what: "a GET", method: "GET", path: "/bucket/a/b.bin", headers: { host: "127.0.0.1:9000", "x-amz-content-sha256": "UNSIGNED-PAYLOAD" } },
    {
      what: "a ranged GET of an encoded key, virtual-host style",
      method: "GET",
      path: "/dir/na%20me%2B%28x%29.bin",
      headers: { host: "bucket.s3.eu-west-1.amazonaws.com", "x-amz-content-sha256": "UNSIGNED-PAYLOAD", range: "bytes=100-199" },
      region: "eu-west-1",
    },
    {
      what: "a PUT with a length and a CRC32",
      method: "PUT",
      path: "/bucket/p/f.bin",
      headers: { host: "s3.amazonaws.com", "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "content-length": "65536", "x-amz-checksum-crc32": "AAAAAA==" },
    },
    {
      what: "a multipart upload's part (a query whose values need encoding, given out of order)",
      method: "PUT",
      path: "/bucket/big.bin",
      headers: { host: "127.0.0.1:9000", "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "content-length": "16777216" },
      query: { uploadId: "2~abc/def+ghi=*(x)", partNumber: "12" },
    },
    {
      what: "session credentials",
      method: "GET",
      path: "/bucket/k",
      headers: { host: "s3.amazonaws.com", "x-amz-content-sha256": "UNSIGNED-PAYLOAD" },
      credentials: { ...CREDENTIALS, sessionToken: "token/with+signs==" },
    },
  ];
  for (const c of cases) {
    it(`signs ${c.what} as the SDK does`, async () => {
      const credentials = c.credentials ?? CREDENTIALS;
      const region = c.region ?? "us-east-1";
      const ours = new SigV4Signer(region, "s3").sign(
        { method: c.method, path: c.path, headers: c.headers, ...(c.query ? { query: c.query } : {}) },
        credentials,
        NOW,
      );
      assert.deepEqual(ours, await sdkHeaders(c.method, c.path, c.headers, credentials, region, c.query));
    });
  }

  it("derives a new signing key on a new day and for new credentials", async () => {
    const signer = new SigV4Signer("us-east-1", "s3");
    const request = { method: "GET", path: "/b/k", headers: { host: "h", "x-amz-content-sha256": "UNSIGNED-PAYLOAD" } };
    const later = new Date(NOW.getTime() + 86_400_000);
    const rotated = { ...CREDENTIALS, secretAccessKey: createHash("sha256").update("other").digest("hex") };
    signer.sign(request, CREDENTIALS, NOW);
    for (const [credentials, when] of [
      [CREDENTIALS, later],
      [rotated, later],
    ] as const) {
      const sdk = new SignatureV4({
        credentials,
        region: "us-east-1",
        service: "s3",
        sha256: Sha256,
        uriEscapePath: false,
        applyChecksum: false,
      });
      const expected = (
        await sdk.sign({ method: "GET", protocol: "https:", hostname: "h", path: "/b/k", query: {}, headers: { ...request.headers } }, { signingDate: when })
      ).headers;
      assert.deepEqual(signer.sign(request, credentials, when), expected);
    }
  });
});
