// The Azure Blob store: `az://container/prefix` (account and credentials from the environment, `?endpoint=` for
// emulators) or `https://<account>.blob.core.windows.net/container/prefix`. Block blobs; conditional writes with
// If-None-Match: * (create-only, answered 409 BlobAlreadyExists) and If-Match: <etag> (compare-and-swap, 412).
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
import { stallGuard } from "./stall-guard.ts";
import { StoreError, notFound, readDocumentBody, type Body, type ByteRange, type Condition, type Store, type StoredObject } from "./store.ts";

/** Tuning knobs; the defaults suit real use, tests shrink them to exercise paging and block uploads. */
export interface AzureStoreOptions {
  /** Blobs per list page (the service caps it at 5,000). */
  pageSize?: number;
  /** Files larger than this are uploaded in blocks (staged in parallel, committed under the condition). */
  singleShotMax?: number;
  /** Block size of block uploads. Memory in flight is about blockConcurrency × a read buffer, not blocks. */
  blockSize?: number;
  /** Blocks of one file in flight at once. */
  blockConcurrency?: number;
  /** Tries per request (network errors, 500, 503) and the exponential backoff base and cap. */
  maxTries?: number;
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /**
   * Client-side bound on one try of an operation (the SDK's own retries included), up to the response headers;
   * uploads get size / uploadAllowanceBytesPerSec more. A timed-out operation is tried again, TIMEOUT_TRIES in all.
   */
  timeoutMs?: number;
  uploadAllowanceBytesPerSec?: number;
  /** Bound on a pause of a download while its reader waits for bytes. */
  stallMs?: number;
  /** Environment to read credentials from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

const DEFAULTS = {
  pageSize: 5000,
  singleShotMax: 32 * 1024 * 1024,
  blockSize: 8 * 1024 * 1024,
  blockConcurrency: 4,
  maxTries: 5,
  retryDelayMs: 400,
  maxRetryDelayMs: 15_000,
  timeoutMs: 60_000,
  uploadAllowanceBytesPerSec: 64 * 1024,
  stallMs: 60_000,
};

type Settings = typeof DEFAULTS;

/** The well-known key of the storage emulator's account devstoreaccount1 (public, documented by Microsoft). */
const DEV_ACCOUNT = "devstoreaccount1";
const DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/** Metadata set on conditional writes: a retried request whose first response was lost finds its own write. */
const WRITE_TOKEN = "assetkitwrite";

/** Status polls of a server-side copy still pending (rare within one account). */
const COPY_POLL_MS = 500;

/** Tries of an operation that runs out of time (each try bounded by timeoutMs + the upload allowance). */
const TIMEOUT_TRIES = 3;

const AZURE_HOST = /^([a-z0-9]{3,24})\.(?:privatelink\.)?blob\.core\.(?:windows\.net|chinacloudapi\.cn|usgovcloudapi\.net)$|^([a-z0-9]{3,24})\.z\d+\.blob\.storage\.azure\.net$/i;

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

export function openAzureStore(uri: URL, options?: AzureStoreOptions): Store {
  const env = options?.env ?? process.env;
  let container: string;
  let prefixPath: string;
  let shown: string;
  let connect: () => Connection;
  if (uri.protocol === "az:") {
    container = safeDecode(uri.hostname || uri.host);
    prefixPath = uri.pathname;
    const endpoint = uri.searchParams.get("endpoint") ?? undefined;
    let shownEndpoint = "";
    if (endpoint) {
      let parsed: URL;
      try {
        parsed = new URL(endpoint);
      } catch {
        throw new StoreError("failed", `az://${container}${prefixPath}: ?endpoint= is not a URL`);
      }
      parsed.username = parsed.password = parsed.search = parsed.hash = "";
      shownEndpoint = `?endpoint=${parsed.href.replace(/\/$/, "")}`;
    }
    shown = `az://${container}${trimSlashes(prefixPath) ? "/" + trimSlashes(prefixPath) : ""}${shownEndpoint}`;
    connect = () => connectAz(env, endpoint, shown);
  } else if (isAzureBlobUrl(uri)) {
    const [first = "", ...rest] = uri.pathname.replace(/^\/+/, "").split("/");
    container = safeDecode(first);
    prefixPath = rest.join("/");
    shown = `${uri.protocol}//${uri.host}/${container}${trimSlashes(prefixPath) ? "/" + trimSlashes(prefixPath) : ""}`;
    connect = () => connectHttps(uri, env);
  } else {
    throw new StoreError("failed", `${uri.protocol}//${uri.host}: not an Azure Blob URI (az://container/prefix or https://<account>.blob.core.windows.net/container/prefix)`);
  }
  if (!/^(?:\$root|\$web|[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9])$/.test(container)) {
    throw new StoreError("failed", `${shown}: "${container}" is not a valid container name (3-63 lowercase letters, digits and single hyphens)`);
  }
  const prefix = trimSlashes(prefixPath).split("/").filter(Boolean).map(safeDecode).join("/");
  return new AzureStore({ url: shown, container, prefix, connect, settings: { ...DEFAULTS, ...stripUndefined(options) } });
}

function connectAz(env: NodeJS.ProcessEnv, endpoint: string | undefined, shown: string): Connection {
  const cs = env.AZURE_STORAGE_CONNECTION_STRING?.trim();
  if (cs) {
    const conn = parseConnectionString(cs, shown);
    if (endpoint) conn.serviceUrl = endpoint;
    return conn;
  }
  const account = env.AZURE_STORAGE_ACCOUNT?.trim() || (endpoint ? accountFromEndpoint(endpoint) : undefined);
  if (!account) {
    throw new StoreError(
      "auth",
      `${shown}: no Azure storage account: set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT (with AZURE_STORAGE_KEY or an Azure login), or use https://<account>.blob.core.windows.net/<container>/<prefix>`,
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
    return { serviceUrl, account, credential: new AnonymousCredential(), sas, secrets: [sas, uri.searchParams.get("sig")!], source: "the SAS token in the URL" };
  }
  const cs = env.AZURE_STORAGE_CONNECTION_STRING?.trim();
  if (cs) {
    const conn = parseConnectionString(cs, serviceUrl);
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

function parseConnectionString(cs: string, shown: string): Connection {
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
    throw new StoreError("auth", `${shown}: AZURE_STORAGE_CONNECTION_STRING has no AccountName (nor BlobEndpoint with SharedAccessSignature): copy it again from the portal (Access keys)`);
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

export class AzureStore implements Store {
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
    const s = this.settings;
    const pipelineOptions: StoragePipelineOptions = {
      retryOptions: { maxTries: s.maxTries, retryDelayInMs: s.retryDelayMs, maxRetryDelayInMs: s.maxRetryDelayMs },
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
      const props = await this.timed((abortSignal) => blob.getProperties({ abortSignal }));
      return { key, size: props.contentLength ?? 0, etag: props.etag ?? "" };
    } catch (err) {
      if (isBlobMissing(err)) return undefined;
      throw this.fail(`cannot read ${key}`, err);
    }
  }

  async read(key: string): Promise<{ data: Buffer; etag: string } | undefined> {
    try {
      const blob = await this.blob(key);
      const res = await this.timed((abortSignal) => blob.download(0, undefined, { abortSignal, maxRetryRequests: 3 }));
      const data = res.readableStreamBody ? await readDocumentBody(this.guard(res.readableStreamBody as Readable, key), this.url, key, res.contentLength) : Buffer.alloc(0);
      return { data, etag: res.etag ?? "" };
    } catch (err) {
      if (isBlobMissing(err)) return undefined;
      throw this.fail(`cannot read ${key}`, err);
    }
  }

  async openRead(key: string, range?: ByteRange): Promise<Readable> {
    try {
      const offset = range?.start ?? 0;
      const count = range ? range.end - range.start + 1 : undefined;
      // The SDK resumes a broken body from where it stopped, pinned to the first response's etag.
      const blob = await this.blob(key);
      const res = await this.timed((abortSignal) => blob.download(offset, count, { abortSignal, maxRetryRequests: 3 }));
      const body = res.readableStreamBody as Readable | undefined;
      return body ? this.guard(body, key) : Readable.from([]);
    } catch (err) {
      if (isBlobMissing(err)) throw notFound(this.url, key);
      throw this.fail(`cannot read ${key}`, err);
    }
  }

  /** Bounds pauses of a download; errors of the SDK's resuming stream (its retries spent) become StoreErrors. */
  private guard(body: Readable, key: string): Readable {
    return stallGuard(
      body,
      this.settings.stallMs,
      () => new StoreError("unavailable", `${this.url}: reading ${key} stalled for ${this.settings.stallMs / 1000} s; retry`),
      (err) => this.fail(`cannot read ${key}`, err),
    );
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    const what = `cannot list ${prefix || "the store"}`;
    const client = await this.client().catch((err: unknown) => Promise.reject(this.fail(what, err)));
    // One page per request, resumed from its continuation token (so a timed-out page is simply asked again).
    let continuationToken: string | undefined;
    do {
      let page;
      try {
        page = await this.timed(async (abortSignal) => {
          const pages = client.listBlobsFlat({ prefix: this.base + prefix, abortSignal }).byPage({ continuationToken, maxPageSize: this.settings.pageSize });
          return (await pages.next()).value;
        });
      } catch (err) {
        throw this.fail(what, err);
      }
      if (!page) return;
      for (const item of page.segment.blobItems) {
        yield { key: item.name.slice(this.base.length), size: item.properties.contentLength ?? 0, etag: item.properties.etag ?? "", modified: item.properties.lastModified };
      }
      continuationToken = page.continuationToken || undefined;
    } while (continuationToken);
  }

  async write(key: string, body: Body, condition?: Condition): Promise<boolean> {
    const s = this.settings;
    for (let attempt = 1; ; attempt++) {
      const blob = await this.blob(key).catch((err: unknown) => Promise.reject(this.fail(`cannot write ${key}`, err)));
      // Fresh option objects each try: the SDK writes into them.
      const conditions = !condition ? {} : "ifAbsent" in condition ? { ifNoneMatch: "*" } : { ifMatch: condition.ifMatch };
      const token = condition ? randomUUID() : undefined;
      const metadata = token ? { [WRITE_TOKEN]: token } : undefined;
      try {
        if (Buffer.isBuffer(body)) {
          await this.timed((abortSignal) => blob.upload(body, body.length, { abortSignal, conditions: { ...conditions }, metadata }), body.length);
        } else if ("open" in body) {
          // Another store's object: read once, in order, uploaded as blocks (memory: blockSize × blockConcurrency),
          // committed under the condition when the stream ends. A source that fails its stream commits nothing.
          if (condition && "ifAbsent" in condition && (await this.head(key))) return false;
          await this.timed(
            async (abortSignal) =>
              blob.uploadStream(await body.open(), s.blockSize, s.blockConcurrency, { abortSignal, conditions: { ...conditions }, metadata }),
            body.size,
          );
        } else {
          // A large create-only upload that is bound to lose is not worth sending: one HEAD first.
          if (condition && "ifAbsent" in condition && body.size > s.singleShotMax && (await this.head(key))) return false;
          // Single shot up to singleShotMax, else blocks staged in parallel from file streams (nothing held in
          // memory) and committed with Put Block List, which carries the condition.
          await this.timed(
            (abortSignal) =>
              blob.uploadFile(body.file, {
                abortSignal,
                conditions: { ...conditions },
                metadata,
                blockSize: s.blockSize,
                concurrency: s.blockConcurrency,
                maxSingleShotSize: s.singleShotMax,
              }),
            body.size,
          );
        }
        return true;
      } catch (err) {
        if (err instanceof StoreError) throw err;
        const status = statusOf(err);
        const code = errorCodeOf(err);
        if (condition && (status === 412 || (status === 409 && code === "BlobAlreadyExists") || (status === 404 && code === "BlobNotFound"))) {
          // Did our own write land (a retry after a lost response answers "exists" / "etag changed")?
          return await this.landed(blob, token!);
        }
        if (code === "InvalidBlockList" && attempt < 3) {
          // Another writer committed this key while our blocks were staged, which discards them.
          if (condition && !(await this.holds(key, condition))) return false;
          continue;
        }
        throw this.fail(`cannot write ${key}`, err);
      }
    }
  }

  /**
   * Runs `op` under a client-side time limit, again when it ran out. The SDK retries network errors and 500/503
   * by itself but has no client-side timeout we can use: its request `timeout` leaves a live timer behind every
   * failed request (keeping the process up that long) and its tryTimeoutInMs is only a server-side hint. Safe for
   * writes: a create-only write that landed before its answer was lost finds its own token when tried again.
   */
  private async timed<T>(op: (abortSignal: AbortSignal) => Promise<T>, bodyBytes = 0): Promise<T> {
    const limit = this.settings.timeoutMs + Math.ceil((bodyBytes / this.settings.uploadAllowanceBytesPerSec) * 1000);
    for (let attempt = 1; ; attempt++) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), limit);
      try {
        return await op(controller.signal);
      } catch (err) {
        if (!controller.signal.aborted || attempt >= TIMEOUT_TRIES) throw err;
      } finally {
        clearTimeout(timer);
      }
    }
  }

  private async landed(blob: BlockBlobClient, token: string): Promise<boolean> {
    try {
      const props = await blob.getProperties();
      return props.metadata?.[WRITE_TOKEN] === token;
    } catch {
      return false;
    }
  }

  private async holds(key: string, condition: Condition): Promise<boolean> {
    const current = await this.head(key);
    return "ifAbsent" in condition ? !current : current?.etag === condition.ifMatch;
  }

  /**
   * Copy Blob from the source's URL, which the service authorises with this request's own credential inside one
   * account (Copy Blob From URL would need a SAS for the source); within an account it completes at once or soon.
   */
  async copy(sourceKey: string, destKey: string): Promise<void> {
    await this.copyBlob(this, sourceKey, destKey);
  }

  /**
   * Another container (or prefix) of the same account: Copy Blob authorises the source with this store's own
   * credential there. Another account would need a SAS for the source: false, the bytes are streamed instead.
   */
  async copyFrom(source: Store, sourceKey: string, destKey: string): Promise<boolean> {
    if (!(source instanceof AzureStore)) return false;
    await Promise.all([this.client(), source.client()]).catch(() => undefined);
    if (!this.connection || this.connection.serviceUrl !== source.connection?.serviceUrl) return false;
    try {
      await this.copyBlob(source, sourceKey, destKey);
      return true;
    } catch (err) {
      if (err instanceof StoreError && err.code === "auth") return false;
      throw err;
    }
  }

  private async copyBlob(from: AzureStore, sourceKey: string, destKey: string): Promise<void> {
    try {
      const [source, dest] = await Promise.all([from.blob(sourceKey), this.blob(destKey)]);
      await this.timed(async (abortSignal) => {
        const poller = await dest.beginCopyFromURL(source.url, { abortSignal, intervalInMs: COPY_POLL_MS });
        await poller.pollUntilDone();
      });
    } catch (err) {
      if (isBlobMissing(err) || errorCodeOf(err) === "CannotVerifyCopySource") throw notFound(from.url, sourceKey);
      throw this.fail(`cannot copy ${from === this ? "" : from.url + " "}${sourceKey} to ${destKey}`, err);
    }
  }

  async delete(key: string): Promise<void> {
    try {
      const blob = await this.blob(key);
      await this.timed((abortSignal) => blob.deleteIfExists({ abortSignal, deleteSnapshots: "include" }));
    } catch (err) {
      if (isBlobMissing(err)) return;
      throw this.fail(`cannot delete ${key}`, err);
    }
  }

  /** A one-line StoreError naming the store, the cause and what to do; never a key, SAS or signature. */
  private fail(what: string, err: unknown): StoreError {
    if (err instanceof StoreError) return err;
    const conn = this.connection;
    const account = conn?.account ?? "?";
    const status = statusOf(err);
    const code = errorCodeOf(err);
    const name = (err as Error)?.name ?? "";
    const firstLine = this.scrub(String((err as Error)?.message ?? err).split("\n")[0] ?? "").slice(0, 300);
    const say = (kind: ConstructorParameters<typeof StoreError>[0], text: string) =>
      new StoreError(kind, `${this.url}: ${what}: ${text}`, { cause: err });

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
      return new StoreError(
        "not-found",
        `${this.url}: container "${this.containerName}" does not exist in account ${account}: create it (az storage container create --name ${this.containerName} --account-name ${account}) or fix the store URI`,
        { cause: err },
      );
    }
    if (status === 404 && code === "ResourceNotFound") {
      return new StoreError("not-found", `${this.url}: ${what}: account ${account} or its endpoint does not exist (404 ResourceNotFound): check the account name and endpoint`, { cause: err });
    }
    if (status === undefined || status === 0) {
      const net = (err as { code?: string })?.code;
      if (name === "AbortError" || name === "TimeoutError") {
        return say("unavailable", `no answer from ${this.endpointHost()} within ${this.settings.timeoutMs / 1000} s, ${TIMEOUT_TRIES} tries: check the network and the endpoint, then retry`);
      }
      if (net || /fetch failed|socket|network|ECONN|ENOTFOUND|EAI_AGAIN/i.test(firstLine)) {
        return say(
          "unavailable",
          `cannot reach ${this.endpointHost()} (${net ?? firstLine}) after ${this.settings.maxTries} tries: check the account name or endpoint, the network, and that the service is up`,
        );
      }
      return say("failed", firstLine || name || "unknown error");
    }
    if (status === 429 || status === 500 || status === 502 || status === 503 || status === 504) {
      return say("unavailable", `the service answered ${status} ${code ?? ""} after ${this.settings.maxTries} tries (busy or failing): retry later`.replace(" )", ")"));
    }
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

  private scrub(text: string): string {
    let out = text.replace(/([?&]sig=)[^&\s'"]+/gi, "$1REDACTED");
    for (const secret of this.connection?.secrets ?? []) if (secret) out = out.split(secret).join("REDACTED");
    return out;
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

function trimSlashes(s: string): string {
  return s.replace(/^\/+|\/+$/g, "");
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function stripUndefined(options: AzureStoreOptions | undefined): Partial<Settings> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options ?? {})) if (v !== undefined && k !== "env") out[k] = v;
  return out as Partial<Settings>;
}
