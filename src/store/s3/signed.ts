// Object reads, small writes and multipart uploads' parts for the S3 store as plain HTTP/1.1 GETs and PUTs
// (../http1-client.ts) signed by sigv4.ts, instead of GetObjectCommand, PutObjectCommand and UploadPartCommand.
// Why: the SDK's middleware stack costs CPU per request, and on 2 cores the download shares the CPU with hashing and
// the server. Measured against local MinIO (5-8 interleaved runs each): fetching 2,000 × 64 KiB files took 1.0-1.4 s
// of user CPU instead of 1.5-2.4 s. Any response checksum check the SDK makes on AWS is skipped too: the transfer engine verifies every byte anyway. Only
// the common answer is handled here: 200 (206 for a range) hands back the body; a throttling or failing answer (429,
// 5xx but 501) rejects as the SDK's error would, for the retry layer (one request per try, Retry-After kept); any
// other answer returns undefined and the caller repeats the request through the SDK, which keeps its region
// redirects and error parsing, so failures read as before; network failures reject. What signing needs (the
// bucket's URL, region, credentials) comes from the store's own settings when they are complete, so that a fetch
// need not load the SDK at all (staticSigningSetup), else from the SDK's configuration (sdkSigningSetup).
import type { Readable } from "node:stream";
import type { S3Client } from "@aws-sdk/client-s3";
import { pumpChunks } from "../chunk-body.ts";
import { Http1Client, type FileRange, type Http1ClientOptions, type Http1Response } from "../http1-client.ts";
import { canonicalQuery, encodeRfc3986, SigV4Signer, type SigningCredentials } from "./sigv4.ts";
import type { ByteRange, Condition } from "../store.ts";

/** What signing a request needs. */
export interface SigningSetup {
  /** The bucket's URL (virtual-host or path-style, as the SDK resolves it), without a trailing "/". */
  base: URL;
  signer: SigV4Signer;
  credentials(): Promise<SigningCredentials>;
  /** PUT bodies carry the CRC32 the SDK would send (its default checksums, on AWS). */
  crc32: boolean;
}

export class SignedRequests {
  private readonly setup: () => Promise<SigningSetup>;
  private readonly http: Http1Client;
  private target: Promise<SigningSetup> | undefined;

  constructor(setup: () => Promise<SigningSetup>, options: Http1ClientOptions) {
    this.setup = setup;
    this.http = new Http1Client(options);
  }

  /**
   * The object's (or range's) bytes, or undefined when the read should be repeated through the SDK (an answer other
   * than 200/206, which the SDK parses into its error). A network failure rejects: asking again is the retry
   * layer's call, not a hidden second try.
   */
  async open(fullKey: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable | undefined> {
    return (await this.get(fullKey, range, signal))?.body;
  }

  /**
   * A whole object's bytes and ETag, or undefined when the read should be repeated through the SDK (as `open`):
   * the registry's documents (`.versions`, metas), so that a fetch sends no request through the SDK at all, whose
   * first request alone costs ~30 ms of start-up (its HTTP stack, middleware and endpoint rules).
   */
  async read(fullKey: string, signal?: AbortSignal): Promise<{ body: Readable; length: number; etag: string } | undefined> {
    const response = await this.get(fullKey, undefined, signal);
    if (response?.etag !== undefined) return { body: response.body, length: response.length!, etag: response.etag };
    response?.body.destroy();
    return undefined;
  }

  /**
   * An object's size and ETag from a hand-signed HEAD: null on 404 (a missing key, or a missing bucket: a HEAD's
   * answer has no body to tell them apart), undefined when it should be asked again through the SDK (as `open`).
   * What a watcher polls (`sync --watch`) and the publish protocol checks: through the SDK each cost ~3 ms of CPU.
   */
  async head(fullKey: string, signal?: AbortSignal): Promise<{ size: number; etag: string } | null | undefined> {
    const response = await this.headRequest(fullKey, signal);
    if (response?.status === 200 && response.etag !== undefined) return { size: response.length ?? 0, etag: response.etag };
    return response?.status === 404 ? null : undefined;
  }

  /** Whether the bucket exists (HEAD on the bucket: 404 false, 200 or 403 true), undefined to ask through the SDK. */
  async bucketExists(signal?: AbortSignal): Promise<boolean | undefined> {
    const response = await this.headRequest(undefined, signal);
    if (response?.status === 404) return false;
    return response?.status === 200 || response?.status === 403 ? true : undefined;
  }

  /** A HEAD of the object (or of the bucket, without a key); undefined when it cannot be signed this way. */
  private async headRequest(fullKey: string | undefined, signal: AbortSignal | undefined): Promise<Http1Response | undefined> {
    const signed = await this.sign("HEAD", fullKey, {});
    if (!signed) return undefined;
    const response = await this.http.request("HEAD", signed.origin, signed.path, signed.headers, signal ? { signal } : {});
    response.body?.destroy();
    throwIfBusy(response);
    return response;
  }

  /** A GET's answer when it is the expected one (200, or 206 for a range) with a body; see `open` for the others. */
  private async get(fullKey: string, range: ByteRange | undefined, signal: AbortSignal | undefined): Promise<(Http1Response & { body: Readable }) | undefined> {
    const signed = await this.sign("GET", fullKey, range ? { range: `bytes=${range.start}-${range.end}` } : {});
    if (!signed) return undefined;
    const response = await this.http.request("GET", signed.origin, signed.path, signed.headers, signal ? { signal } : {});
    const { body } = response;
    if (response.status === (range ? 206 : 200) && body) return { ...response, body };
    body?.destroy();
    throwIfBusy(response);
    return undefined;
  }

  /**
   * Writes a small object in one PUT of bytes in memory, with the condition's If-None-Match or If-Match; false
   * when it should be repeated through the SDK (any answer but 200: a refused condition too, which the SDK's try
   * tells from a failure). With the SDK's default checksums (AWS), the body carries the CRC32 the SDK would send.
   * Measured against local MinIO: 2,000 × 64 KiB files published with less than half the client CPU of PutObject;
   * 20,000 × 4 KiB content-addressed blobs (If-None-Match: *), 5.6 s of CPU instead of 33 s through PutObject.
   */
  async put(fullKey: string, body: Buffer, signal?: AbortSignal, condition?: Condition): Promise<boolean> {
    const headers: Record<string, string> = { "content-length": String(body.length) };
    if (condition) {
      if ("ifAbsent" in condition) headers["if-none-match"] = "*";
      else headers["if-match"] = condition.ifMatch;
    }
    if ((await this.ready())?.crc32) {
      const crc = Buffer.alloc(4);
      // zlib is loaded here, not at every start-up (~4 ms of CPU): only a PUT to a store that wants checksums uses it.
      crc.writeUInt32BE(process.getBuiltinModule("node:zlib").crc32(body));
      headers["x-amz-checksum-crc32"] = crc.toString("base64");
    }
    const signed = await this.sign("PUT", fullKey, headers);
    if (!signed) return false;
    const response = await this.http.request("PUT", signed.origin, signed.path, signed.headers, { body, ...(signal ? { signal } : {}) });
    // S3 answers a PUT with an empty body; an error's document is read by the SDK on its own try.
    if (response.body) await pumpChunks(response.body, () => undefined);
    if (response.status !== 200) throwIfBusy(response);
    return response.status === 200;
  }

  /**
   * Uploads one part of a multipart upload from a range of a local file, in one hand-signed PUT whose body the
   * HTTP/1.1 client reads into a few reused buffers: its ETag, or undefined when the part should be sent through the
   * SDK (a store that wants checksums: the part's CRC32 would need a second read; any answer but 200). Through the SDK
   * each part was a file stream of new 64 KiB Buffers: publishing 2 GiB spent ~1 s of its ~6 s of CPU collecting them.
   */
  async uploadPart(fullKey: string, uploadId: string, partNumber: number, body: FileRange, signal?: AbortSignal): Promise<string | undefined> {
    if ((await this.ready())?.crc32 !== false) return undefined;
    const length = String(body.end - body.start + 1);
    const signed = await this.sign("PUT", fullKey, { "content-length": length }, { partNumber: String(partNumber), uploadId });
    if (!signed) return undefined;
    const response = await this.http.request("PUT", signed.origin, signed.path, signed.headers, { body, ...(signal ? { signal } : {}) });
    if (response.body) await pumpChunks(response.body, () => undefined);
    if (response.status !== 200) throwIfBusy(response);
    return response.status === 200 ? response.etag : undefined;
  }

  /**
   * The request's origin, path and signed headers (of the bucket without a key), or undefined when there is no endpoint or no credentials this way
   * (the SDK finds and names the problem). The path is built as a string: a URL object per request cost ~6 µs.
   */
  private async sign(
    method: "GET" | "PUT" | "HEAD",
    fullKey: string | undefined,
    extra: Record<string, string>,
    query?: Record<string, string>,
  ): Promise<{ origin: URL; path: string; headers: Record<string, string> } | undefined> {
    try {
      const setup = await this.ready();
      if (!setup) return undefined;
      const { base } = setup;
      // The bucket itself: its path-style path, or "/" on a virtual host (as the SDK's HeadBucket addresses it).
      const path = fullKey === undefined ? base.pathname || "/" : `${base.pathname}/${encodeKey(fullKey)}`;
      const headers: Record<string, string> = { host: base.host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", ...extra };
      const signed = setup.signer.sign({ method, path, headers, ...(query ? { query } : {}) }, await setup.credentials());
      return { origin: base, path: query ? `${path}?${canonicalQuery(query)}` : path, headers: signed };
    } catch {
      return undefined;
    }
  }

  /** The signing setup, or undefined when it cannot be had this way (the SDK then finds and names the problem). */
  private ready(): Promise<SigningSetup | undefined> {
    return (this.target ??= this.setup()).catch(() => undefined);
  }
}

/** Signing from the store's own settings: a custom endpoint, path-style as the SDK addresses it, and given credentials. */
export function staticSigningSetup(endpoint: string, bucket: string, region: string, credentials: SigningCredentials): SigningSetup {
  const base = new URL(endpoint);
  base.pathname = `${base.pathname.replace(/\/+$/, "")}/${encodeKey(bucket)}`;
  base.search = "";
  return { base, signer: new SigV4Signer(region, "s3"), credentials: async () => credentials, crc32: false };
}

/** Signing as the SDK's client is configured: its region, endpoint rules and credential chain. */
export async function sdkSigningSetup(client: S3Client, bucket: string, endpoint: string | undefined): Promise<SigningSetup> {
  const config = client.config;
  const region = await config.region();
  const resolved = config.endpointProvider({
    Bucket: bucket,
    Region: region,
    UseFIPS: await config.useFipsEndpoint(),
    UseDualStack: await config.useDualstackEndpoint(),
    ForcePathStyle: config.forcePathStyle,
    Accelerate: config.useAccelerateEndpoint,
    ...(endpoint ? { Endpoint: endpoint } : {}),
  });
  const scheme = (resolved.properties?.authSchemes as { name?: string; signingRegion?: string }[] | undefined)?.[0];
  if (scheme?.name !== "sigv4") throw new Error(`unsupported auth scheme ${scheme?.name ?? "(none)"}`);
  const base = new URL(resolved.url.href);
  base.pathname = base.pathname.replace(/\/+$/, "");
  return {
    base,
    signer: new SigV4Signer(scheme.signingRegion ?? region, "s3"),
    credentials: () => config.credentials(),
    crc32: (await config.requestChecksumCalculation()) === "WHEN_SUPPORTED",
  };
}

/**
 * A throttling or failing answer as the SDK's error for it (its HTTP status and headers, as S3Store.classify reads
 * them): the retry layer waits (Retry-After) and tries again, where asking the SDK at once would double the requests
 * to a server that is asking for fewer.
 */
function throwIfBusy(response: Http1Response): void {
  const { status } = response;
  if (status !== 429 && !(status >= 500 && status !== 501)) return;
  throw Object.assign(new Error(`HTTP ${status}`), {
    name: String(status),
    $metadata: { httpStatusCode: status },
    $response: { headers: response.retryAfter !== undefined ? { "retry-after": response.retryAfter } : {} },
  });
}

/** A key as a URL path: each segment percent-encoded per RFC 3986 (as the SDK does), "/" kept. */
function encodeKey(key: string): string {
  return key.split("/").map(encodeRfc3986).join("/");
}
