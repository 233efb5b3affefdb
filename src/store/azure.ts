// The Azure Blob store: `az://container/prefix` (account and credentials from the environment, `?endpoint=` for
// emulators) or `https://<account>.blob.core.windows.net/container/prefix`. Block blobs; conditional writes with
// If-None-Match: * (create-only, answered 409 BlobAlreadyExists) and If-Match: <etag> (compare-and-swap, 412).
// Retries and timeouts belong to the store layers (the SDK pipeline's own retries are off: maxTries 1).
import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import {
  AnonymousCredential,
  BlobServiceClient,
  StorageSharedKeyCredential,
  newPipeline,
  type BlockBlobClient,
  type ContainerClient,
  type StoragePipelineOptions,
} from "@azure/storage-blob";
import type { TokenCredential } from "@azure/identity";
import { UsageError } from "../base/errors.ts";
import { abortOption } from "./layers/timeout.ts";
import type { Tuning } from "./tuning.ts";
import {
  StoreError,
  notFound,
  readDocumentBody,
  type Backend,
  type Body,
  type ByteRange,
  type Condition,
  type SourceExpectation,
  type Store,
  type StoredObject,
  type WriteAttempt,
} from "./store.ts";
import { parseEndpoint, parseLocation } from "./location.ts";

export interface AzureStoreOptions {
  /** Block uploads: blocks of ASSETKIT_PART_SIZE, ASSETKIT_CONCURRENCY of one file in flight; the idle timeout. */
  tuning: Tuning;
  /** Blobs per list page (the service caps it at 5,000); tests shrink it to exercise paging. */
  pageSize?: number;
  /** Files larger than this are uploaded in blocks (staged in parallel, committed under the condition); tests shrink it. */
  singleShotMax?: number;
  /** Environment to read credentials from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** The service's limit for one block (ASSETKIT_PART_SIZE may be larger). */
const MAX_BLOCK_BYTES = 4000 * 1024 * 1024;
/** A streamed body's blocks are buffered in memory (blockSize each): at most this many of them in flight. */
const STREAM_BLOCKS_IN_FLIGHT = 4;

interface Settings {
  pageSize: number;
  singleShotMax: number;
  blockSize: number;
  blockConcurrency: number;
}

/** The well-known key of the storage emulator's account devstoreaccount1 (public, documented by Microsoft). */
const DEV_ACCOUNT = "devstoreaccount1";
const DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/** Metadata set on conditional writes (the write's id): a retry whose first response was lost finds its own write. */
const WRITE_TOKEN = "assetkitwrite";

/** Status polls of a server-side copy still pending (rare within one account). */
const COPY_POLL_MS = 500;

const AZURE_HOST =
  /^([a-z0-9]{3,24})\.(?:privatelink\.)?blob\.core\.(?:windows\.net|chinacloudapi\.cn|usgovcloudapi\.net)$|^([a-z0-9]{3,24})\.z\d+\.blob\.storage\.azure\.net$/i;

/** True for Azure Blob service URLs (https://<account>.blob.core.windows.net/...), which open as Azure stores. */
export function isAzureBlobUrl(uri: URL): boolean {
  return (uri.protocol === "https:" || uri.protocol === "http:") && AZURE_HOST.test(uri.hostname);
}

/** How to reach the account: the service URL, a credential, and the secrets to keep out of messages. */
interface Connection {
  serviceUrl: string;
  account: string;
  credential: StorageSharedKeyCredential | AnonymousCredential | TokenCredential | "default";
  sas?: string;
  secrets: string[];
  /** Where the credential came from, for messages (never the credential itself). */
  source: string;
}

export function openAzureStore(uri: URL, options: AzureStoreOptions): Backend {
  const env = options.env ?? process.env;
  let shown: string;
  let connect: () => Connection;
  let location;
  if (uri.protocol === "az:") {
    location = parseLocation(uri);
    const endpoint = uri.searchParams.get("endpoint") ?? undefined;
    if (endpoint) parseEndpoint(endpoint, location.shown);
    shown = location.shown;
    connect = () => connectAz(env, endpoint);
  } else if (isAzureBlobUrl(uri)) {
    location = parseLocation(uri, true);
    if (uri.username || uri.password)
      throw new UsageError(`bad store URI ${location.shown}: credentials do not belong in the URI; use a SAS token or the environment`);
    shown = location.shown;
    connect = () => connectHttps(uri, env);
  } else {
    throw new UsageError(
      `bad store URI ${uri.protocol}//${uri.host}: not an Azure Blob URI (az://container/prefix or https://<account>.blob.core.windows.net/container/prefix)`,
    );
  }
  const container = location.bucket;
  const prefix = location.prefix;
  if (!/^(?:\$root|\$web|[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9])$/.test(container)) {
    throw new UsageError(`bad store URI ${shown}: "${container}" is not a valid container name (3-63 lowercase letters, digits and single hyphens)`);
  }
  return new AzureStore({
    url: shown,
    container,
    prefix,
    connect,
    settings: {
      pageSize: options.pageSize ?? 5000,
      singleShotMax: options.singleShotMax ?? 32 * 1024 * 1024,
      blockSize: Math.min(options.tuning.partSize, MAX_BLOCK_BYTES),
      blockConcurrency: options.tuning.concurrency,
    },
  });
}

function connectAz(env: NodeJS.ProcessEnv, endpoint: string | undefined): Connection {
  const cs = env.AZURE_STORAGE_CONNECTION_STRING?.trim();
  if (cs) {
    const conn = parseConnectionString(cs);
    if (endpoint) conn.serviceUrl = endpoint;
    return conn;
  }
  const account = env.AZURE_STORAGE_ACCOUNT?.trim() || (endpoint ? accountFromEndpoint(endpoint) : undefined);
  if (!account) {
    throw new StoreError(
      "auth",
      `no Azure storage account: set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT (with AZURE_STORAGE_KEY or an Azure login), or use https://<account>.blob.core.windows.net/<container>/<prefix>`,
    );
  }
  const serviceUrl = endpoint ?? `https://${account}.blob.core.windows.net`;
  return withEnvCredential(env, account, serviceUrl);
}

function connectHttps(uri: URL, env: NodeJS.ProcessEnv): Connection {
  const account = AZURE_HOST.exec(uri.hostname)!.slice(1).find(Boolean)!.toLowerCase();
  const serviceUrl = `${uri.protocol}//${uri.host}`;
  if (uri.searchParams.has("sig")) {
    const sas = uri.search.slice(1);
    return {
      serviceUrl,
      account,
      credential: new AnonymousCredential(),
      sas,
      secrets: [sas, uri.searchParams.get("sig")!],
      source: "the SAS token in the URL",
    };
  }
  const cs = env.AZURE_STORAGE_CONNECTION_STRING?.trim();
  if (cs) {
    const conn = parseConnectionString(cs);
    if (conn.account.toLowerCase() === account && !(conn.credential instanceof AnonymousCredential && !conn.sas)) {
      return { ...conn, serviceUrl };
    }
  }
  const envAccount = env.AZURE_STORAGE_ACCOUNT?.trim().toLowerCase();
  if (!envAccount || envAccount === account) return withEnvCredential(env, account, serviceUrl);
  return { serviceUrl, account, credential: "default", secrets: [], source: "DefaultAzureCredential" };
}

/** AZURE_STORAGE_KEY, else AZURE_STORAGE_SAS_TOKEN, else DefaultAzureCredential (az login, azure/login with OIDC, workload or managed identity). */
function withEnvCredential(env: NodeJS.ProcessEnv, account: string, serviceUrl: string): Connection {
  const key = env.AZURE_STORAGE_KEY?.trim();
  if (key) return { serviceUrl, account, credential: new StorageSharedKeyCredential(account, key), secrets: [key], source: "AZURE_STORAGE_KEY" };
  const sas = env.AZURE_STORAGE_SAS_TOKEN?.trim().replace(/^\?/, "");
  if (sas) return { serviceUrl, account, credential: new AnonymousCredential(), sas, secrets: [sas, ...sigOf(sas)], source: "AZURE_STORAGE_SAS_TOKEN" };
  return { serviceUrl, account, credential: "default", secrets: [], source: "DefaultAzureCredential" };
}

function parseConnectionString(cs: string): Connection {
  const parts = new Map<string, string>();
  for (const piece of cs.split(";")) {
    const eq = piece.indexOf("=");
    if (eq > 0) parts.set(piece.slice(0, eq).trim().toLowerCase(), piece.slice(eq + 1).trim());
  }
  const source = "AZURE_STORAGE_CONNECTION_STRING";
  if (parts.get("usedevelopmentstorage")?.toLowerCase() === "true") {
    return {
      serviceUrl: `http://127.0.0.1:10000/${DEV_ACCOUNT}`,
      account: DEV_ACCOUNT,
      credential: new StorageSharedKeyCredential(DEV_ACCOUNT, DEV_KEY),
      secrets: [],
      source,
    };
  }
  const account = parts.get("accountname") ?? "";
  const blobEndpoint = parts.get("blobendpoint");
  const key = parts.get("accountkey");
  const sas = parts.get("sharedaccesssignature")?.replace(/^\?/, "");
  if (!account && !(blobEndpoint && sas)) {
    throw new StoreError(
      "auth",
      `AZURE_STORAGE_CONNECTION_STRING has no AccountName (nor BlobEndpoint with SharedAccessSignature): copy it again from the portal (Access keys)`,
    );
  }
  const protocol = parts.get("defaultendpointsprotocol") ?? "https";
  const suffix = parts.get("endpointsuffix") ?? "core.windows.net";
  const serviceUrl = (blobEndpoint ?? `${protocol}://${account}.blob.${suffix}`).replace(/\/+$/, "");
  const resolvedAccount = account || accountFromEndpoint(serviceUrl) || "";
  if (key) {
    return { serviceUrl, account: resolvedAccount, credential: new StorageSharedKeyCredential(resolvedAccount, key), secrets: [key], source };
  }
  if (sas) return { serviceUrl, account: resolvedAccount, credential: new AnonymousCredential(), sas, secrets: [sas, ...sigOf(sas)], source };
  return { serviceUrl, account: resolvedAccount, credential: "default", secrets: [], source };
}

/** The account of an endpoint: the first label of <account>.blob.…, or the first path segment (emulators). */
function accountFromEndpoint(endpoint: string): string | undefined {
  try {
    const url = new URL(endpoint);
    const host = AZURE_HOST.exec(url.hostname);
    if (host) return host.slice(1).find(Boolean);
    return url.pathname.split("/").find(Boolean);
  } catch {
    return undefined;
  }
}

function sigOf(sas: string): string[] {
  const sig = new URLSearchParams(sas).get("sig");
  return sig ? [sig, encodeURIComponent(sig)] : [];
}

export class AzureStore implements Backend {
  readonly url: string;
  readonly writable = true;
  readonly listable = true;
  private readonly containerName: string;
  /** Blob-name prefix of every key: the store prefix and a '/', or "". */
  private readonly base: string;
  private readonly connect: () => Connection;
  private readonly settings: Settings;
  private connection: Connection | undefined;
  private containerClient: Promise<ContainerClient> | undefined;

  constructor(init: { url: string; container: string; prefix: string; connect: () => Connection; settings: Settings }) {
    this.url = init.url;
    this.containerName = init.container;
    this.base = init.prefix ? init.prefix + "/" : "";
    this.connect = init.connect;
    this.settings = init.settings;
  }

  /** The container client, built on first use (so opening a store never fails for want of credentials). */
  private client(): Promise<ContainerClient> {
    this.containerClient ??= this.build().catch((err: unknown) => {
      this.containerClient = undefined;
      throw err;
    });
    return this.containerClient;
  }

  private async build(): Promise<ContainerClient> {
    const conn = this.connect();
    this.connection = conn;
    const pipelineOptions: StoragePipelineOptions = {
      retryOptions: { maxTries: 1 }, // the retry layer's
      userAgentOptions: { userAgentPrefix: "assetkit" },
    };
    let credential: StorageSharedKeyCredential | AnonymousCredential | TokenCredential;
    if (conn.credential === "default") {
      // Loaded only here: the key and connection-string paths never pay for @azure/identity.
      const { DefaultAzureCredential } = await import("@azure/identity");
      credential = new DefaultAzureCredential();
    } else {
      credential = conn.credential;
    }
    const pipeline = newPipeline(credential, pipelineOptions);
    const serviceUrl = conn.sas ? `${conn.serviceUrl}?${conn.sas}` : conn.serviceUrl;
    return new BlobServiceClient(serviceUrl, pipeline).getContainerClient(this.containerName);
  }

  private async blob(key: string): Promise<BlockBlobClient> {
    return (await this.client()).getBlockBlobClient(this.base + key);
  }

  async head(key: string): Promise<StoredObject | undefined> {
    try {
      const blob = await this.blob(key);
      const props = await blob.getProperties(abortOption());
      return { key, size: props.contentLength ?? 0, etag: props.etag ?? "" };
    } catch (err) {
      if (isBlobMissing(err)) return undefined;
      throw err;
    }
  }

  async read(key: string): Promise<{ data: Buffer; etag: string } | undefined> {
    try {
      const blob = await this.blob(key);
      const res = await blob.download(0, undefined, { ...abortOption(), maxRetryRequests: 0 });
      const data = res.readableStreamBody ? await readDocumentBody(res.readableStreamBody as Readable, res.contentLength) : Buffer.alloc(0);
      return { data, etag: res.etag ?? "" };
    } catch (err) {
      if (isBlobMissing(err)) return undefined;
      throw err;
    }
  }

  async openRead(key: string, range?: ByteRange): Promise<Readable> {
    try {
      const offset = range?.start ?? 0;
      const count = range ? range.end - range.start + 1 : undefined;
      // A broken body is resumed by the transfer engine from the bytes it has (not by the SDK: maxRetryRequests 0).
      const blob = await this.blob(key);
      const res = await blob.download(offset, count, { ...abortOption(), maxRetryRequests: 0 });
      return (res.readableStreamBody as Readable | undefined) ?? Readable.from([]);
    } catch (err) {
      if (isBlobMissing(err)) throw notFound();
      throw err;
    }
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    const client = await this.client();
    // One page per request, resumed from its continuation token (so a timed-out page is simply asked again).
    let continuationToken: string | undefined;
    do {
      const pages = client.listBlobsFlat({ prefix: this.base + prefix, ...abortOption() }).byPage({ continuationToken, maxPageSize: this.settings.pageSize });
      const page = (await pages.next()).value;
      if (!page) return;
      for (const item of page.segment.blobItems) {
        yield {
          key: item.name.slice(this.base.length),
          size: item.properties.contentLength ?? 0,
          etag: item.properties.etag ?? "",
          modified: item.properties.lastModified,
        };
      }
      continuationToken = page.continuationToken || undefined;
    } while (continuationToken);
  }

  async write(key: string, body: Body, condition?: Condition, attempt?: WriteAttempt): Promise<boolean> {
    const s = this.settings;
    const blob = await this.blob(key);
    // Fresh option objects each try: the SDK writes into them.
    const conditions = !condition ? {} : "ifAbsent" in condition ? { ifNoneMatch: "*" } : { ifMatch: condition.ifMatch };
    const token = condition ? (attempt?.id ?? randomUUID()) : undefined;
    const metadata = token ? { [WRITE_TOKEN]: token } : undefined;
    try {
      if (Buffer.isBuffer(body)) {
        await blob.upload(body, body.length, { ...abortOption(), conditions: { ...conditions }, metadata });
      } else if ("open" in body) {
        // Another store's object: read once, in order, uploaded as blocks (memory: blockSize × blocks in flight),
        // committed under the condition when the stream ends. A source that fails its stream commits nothing.
        if (condition && "ifAbsent" in condition && !attempt?.retried && (await this.head(key))) return false;
        await blob.uploadStream(await body.open(), s.blockSize, Math.min(s.blockConcurrency, STREAM_BLOCKS_IN_FLIGHT), {
          ...abortOption(),
          conditions: { ...conditions },
          metadata,
        });
      } else {
        // A large create-only upload that is bound to lose is not worth sending: one HEAD first.
        if (condition && "ifAbsent" in condition && body.size > s.singleShotMax && !attempt?.retried && (await this.head(key))) return false;
        // Single shot up to singleShotMax, else blocks staged in parallel from file streams (nothing held in
        // memory) and committed with Put Block List, which carries the condition.
        await blob.uploadFile(body.file, {
          ...abortOption(),
          conditions: { ...conditions },
          metadata,
          blockSize: s.blockSize,
          concurrency: s.blockConcurrency,
          maxSingleShotSize: s.singleShotMax,
        });
      }
      return true;
    } catch (err) {
      const status = statusOf(err);
      const code = errorCodeOf(err);
      if (condition && (status === 412 || (status === 409 && code === "BlobAlreadyExists") || (status === 404 && code === "BlobNotFound"))) {
        // Did our own write land (a retry after a lost response answers "exists" / "etag changed")?
        return await this.landed(blob, token!);
      }
      throw err;
    }
  }

  private async landed(blob: BlockBlobClient, token: string): Promise<boolean> {
    try {
      const props = await blob.getProperties(abortOption());
      return props.metadata?.[WRITE_TOKEN] === token;
    } catch {
      return false;
    }
  }

  /**
   * Copy Blob from the source's URL, which the service authorises with this request's own credential inside one
   * account (Copy Blob From URL would need a SAS for the source); within an account it completes at once or soon.
   */
  async copy(sourceKey: string, destKey: string, expected?: SourceExpectation): Promise<boolean> {
    if (expected && !expected.etag) return false; // Azure proves a source by its ETag only
    return this.copyBlob(this, sourceKey, destKey, expected?.etag);
  }

  /**
   * Another container (or prefix) of the same account: Copy Blob authorises the source with this store's own
   * credential there. Another account would need a SAS for the source: false, the bytes are streamed instead.
   */
  async copyFrom(source: Store, sourceKey: string, destKey: string, expected?: SourceExpectation): Promise<boolean> {
    if (!(source instanceof AzureStore)) return false;
    if (expected && !expected.etag) return false; // Azure proves a source by its ETag only
    await Promise.all([this.client(), source.client()]).catch(() => undefined);
    if (!this.connection || this.connection.serviceUrl !== source.connection?.serviceUrl) return false;
    try {
      return await this.copyBlob(source, sourceKey, destKey, expected?.etag);
    } catch (err) {
      if (this.classify(err).code === "auth") return false;
      throw err;
    }
  }

  /** With `sourceEtag`, the copy is conditional on it (the source's If-Match): false when the source changed or is gone. */
  private async copyBlob(from: AzureStore, sourceKey: string, destKey: string, sourceEtag?: string): Promise<boolean> {
    try {
      const [source, dest] = await Promise.all([from.blob(sourceKey), this.blob(destKey)]);
      // Listings give ETags bare, headers quoted: the header form is sent.
      const sourceConditions = sourceEtag === undefined ? {} : { sourceConditions: { ifMatch: sourceEtag.startsWith('"') ? sourceEtag : `"${sourceEtag}"` } };
      const poller = await dest.beginCopyFromURL(source.url, { ...abortOption(), intervalInMs: COPY_POLL_MS, ...sourceConditions });
      await poller.pollUntilDone();
      return true;
    } catch (err) {
      const missing = isBlobMissing(err) || errorCodeOf(err) === "CannotVerifyCopySource";
      if (sourceEtag !== undefined && (missing || statusOf(err) === 412)) return false;
      if (missing) throw notFound();
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    try {
      const blob = await this.blob(key);
      await blob.deleteIfExists({ ...abortOption(), deleteSnapshots: "include" });
    } catch (err) {
      if (isBlobMissing(err)) return;
      throw err;
    }
  }

  /** What an SDK error is, in one line saying what to do (the layers add the store, operation and key, and scrub). */
  classify(err: unknown): StoreError {
    if (err instanceof StoreError) return err;
    const conn = this.connection;
    const account = conn?.account ?? "?";
    const status = statusOf(err);
    const code = errorCodeOf(err);
    const name = (err as Error)?.name ?? "";
    const firstLine = String((err as Error)?.message ?? err)
      .split("\n")[0]!
      .slice(0, 300);
    const say = (kind: ConstructorParameters<typeof StoreError>[0], text: string, temporary = false) => new StoreError(kind, text, { cause: err, temporary });

    if (/^(CredentialUnavailableError|AuthenticationError|AggregateAuthenticationError|AuthenticationRequiredError)$/.test(name)) {
      return say(
        "auth",
        `no usable Azure credential (${firstLine}); set AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_ACCOUNT + AZURE_STORAGE_KEY, or sign in (azure/login with OIDC, az login, workload or managed identity)`,
      );
    }
    if (status === 401 || status === 403) {
      const denied = code === "AuthenticationFailed" || code === "InvalidAuthenticationInfo" || status === 401 ? "authentication failed" : "access denied";
      const credential = conn?.credential;
      const fix =
        credential instanceof StorageSharedKeyCredential
          ? "check the account name and key (or the connection string), and that the account allows shared-key access and this network"
          : conn?.sas
            ? "check the SAS token: its expiry, permissions (read, write, list, delete) and allowed IPs"
            : credential === "default"
              ? "give the signed-in identity a role such as Storage Blob Data Contributor (or Reader) on the container, and check the account's network rules"
              : "the container needs credentials: set AZURE_STORAGE_CONNECTION_STRING or AZURE_STORAGE_KEY, or sign in";
      return say("auth", `${denied} (${status}${code ? " " + code : ""}) for account ${account} via ${conn?.source ?? "?"}: ${fix}`);
    }
    if (status === 404 && code === "ContainerNotFound") {
      return say(
        "not-found",
        `container "${this.containerName}" does not exist in account ${account}: create it (az storage container create --name ${this.containerName} --account-name ${account}) or fix the store URI`,
      );
    }
    if (status === 404 && code === "ResourceNotFound") {
      return say("not-found", `account ${account} or its endpoint does not exist (404 ResourceNotFound): check the account name and endpoint`);
    }
    if (status === undefined || status === 0) {
      const net = (err as { code?: string })?.code;
      if (name === "AbortError" || name === "TimeoutError") return say("unavailable", `no answer from ${this.endpointHost()}`, true);
      if (net || /fetch failed|socket|network|ECONN|ENOTFOUND|EAI_AGAIN|aborted|premature/i.test(firstLine)) {
        return say(
          "unavailable",
          `cannot reach ${this.endpointHost()} (${net ?? firstLine}): check the account name or endpoint, the network, and that the service is up`,
          true,
        );
      }
      return say("failed", firstLine || name || "unknown error");
    }
    if (status === 408 || status === 429 || status === 500 || status === 502 || status === 503 || status === 504) {
      const retryAfter = Number((err as { response?: { headers?: { get?: (n: string) => string | undefined } } })?.response?.headers?.get?.("retry-after"));
      return new StoreError(
        "unavailable",
        `the service answered ${status} ${code ?? ""} (busy or failing): retry later`.replace(" (", " (").replace("  ", " "),
        {
          cause: err,
          temporary: true,
          ...(Number.isFinite(retryAfter) ? { retryAfterMs: retryAfter * 1000 } : {}),
        },
      );
    }
    // Another writer committed this key while our blocks were staged, which discards them: try again.
    if (code === "InvalidBlockList") return say("unavailable", "the staged blocks were discarded by a concurrent write", true);
    return say("failed", `${status} ${code ?? ""} ${firstLine}`.replace(/\s+/g, " ").trim());
  }

  private endpointHost(): string {
    const url = this.connection?.serviceUrl;
    if (!url) return "the Azure endpoint";
    try {
      const u = new URL(url);
      return u.host;
    } catch {
      return "the Azure endpoint";
    }
  }

  secrets(): readonly string[] {
    return this.connection?.secrets ?? [];
  }
}

function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number })?.statusCode;
}

/** The service's error code: in the body for most requests, in x-ms-error-code for HEAD (getProperties). */
function errorCodeOf(err: unknown): string | undefined {
  const e = err as { code?: string; details?: { errorCode?: string } };
  return e?.details?.errorCode ?? e?.code;
}

function isBlobMissing(err: unknown): boolean {
  return statusOf(err) === 404 && errorCodeOf(err) === "BlobNotFound";
}
