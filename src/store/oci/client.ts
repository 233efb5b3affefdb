// A distribution-spec (OCI registry) client: blobs, uploads, manifests and tags of one registry, each request
// authenticated as the registry asks (auth.ts); the layout over it (OciLayout, assetkit versions as manifests) comes
// later, per docs/oci.md.
// A leaf like the other backends: it knows nothing of assets. Every request runs in the store layers (retries,
// deadlines, stall guard, errors in context with credentials scrubbed), one try per request except where noted.
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { headerOf, httpRequest, type HttpRequest, type HttpResponse } from "../http-client.ts";
import { Operations, uploadDeadlineMs } from "../layers/index.ts";
import { operationSignal } from "../layers/timeout.ts";
import { pumpChunks } from "../chunk-body.ts";
import { Http1Client, type FileRange, type Http1Response } from "../http1-client.ts";
import { readDocumentBody, sourceOf, StoreError, type Body, type ByteRange, type ObjectSource } from "../store.ts";
import type { TimeBudget } from "../tuning.ts";
import { CATALOG_SCOPE, RegistryAuth, repositoryScope } from "./auth.ts";
import type { CredentialLookup } from "./credentials.ts";
import { answerError, classifyRaw, nextPage, RETRY_STATUS, statusError, uploadedBytes } from "./responses.ts";

/** Manifest types asked for on every GET and HEAD: without an OCI Accept, distribution answers 404 (measured). */
export const MANIFEST_TYPES = ["application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json"] as const;
/** Blobs up to this size go in one PUT; larger ones in PATCH chunks of this size (docs/oci.md §8). */
export const DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024;
/** Redirects followed for one request (a blob GET sent to object storage or a CDN). */
const MAX_REDIRECTS = 5;
/** Restarts of a blob upload whose session the registry lost (404 on it). */
const SESSION_RESTARTS = 1;

export interface OciClientOptions {
  budget: TimeBudget;
  /** See DEFAULT_CHUNK_BYTES. */
  chunkBytes?: number;
  /**
   * Where the registry's credentials come from (ociCredentialsFor(host, env)), looked up when the registry first
   * challenges; without it, every request is anonymous. They and the tokens got with them are scrubbed from every
   * message, and never sent to another origin a redirect or session URL leads to.
   */
  credentials?: CredentialLookup;
}

export interface BlobInfo {
  digest: string;
  size: number;
}

export interface ManifestInfo {
  digest: string;
  size: number;
  mediaType: string;
}

export interface Manifest extends ManifestInfo {
  data: Buffer;
}

/** How a blob reached the repository: mounted from another repository (no byte sent), or uploaded. */
export type UploadOutcome = "mounted" | "uploaded";

/** A blob's bytes as an upload sends them: from `source` through Node's client; from `file` or `data` over the HTTP/1.1 one. */
interface Payload {
  source: ObjectSource;
  file?: string;
  data?: Buffer;
}

/** What an upload step's (or a blob HEAD's) expected answer said. */
interface StepAnswer {
  status: number;
  /** Its Location, resolved against the request's URL. */
  location: URL | undefined;
  /** The bytes an upload session holds, by its Range header. */
  held: number;
  /** Its Content-Length (a blob's size, for a HEAD). */
  length: number;
}

export class OciClient {
  /** `oci://<host>[:<port>]`: how messages name the registry. */
  readonly url: string;
  private readonly base: URL;
  private readonly chunkBytes: number;
  private readonly auth: RegistryAuth;
  private readonly operations: Operations;
  /** Blob reads, while the registry serves them itself (directBlob). */
  private readonly http1: Http1Client;
  private directReads: "unknown" | "on" | "off" = "unknown";
  /** While directReads is unknown: settles once the one read asked the general way has its answer (openBlob). */
  private directProbe: Promise<void> | undefined;
  /** The scopes each answer's request needed, for the hint of a refusal. */
  private readonly scopesOf = new WeakMap<HttpResponse, readonly string[]>();

  /** `registry`: the registry's origin, http: or https: (which one is the caller's rule, docs/oci.md §3). */
  constructor(registry: URL, options: OciClientOptions) {
    if (registry.protocol !== "http:" && registry.protocol !== "https:") throw new StoreError("failed", `${registry.href}: not an http(s) registry URL`);
    this.base = new URL(registry.origin);
    this.url = `oci://${registry.host}`;
    this.chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    this.auth = new RegistryAuth(this.base, options.credentials);
    this.operations = new Operations(this, options.budget);
    // Idle connections kept: the transfer engine's requests in flight (16 by default) with room, as the S3 store.
    this.http1 = new Http1Client({ maxIdle: 50, connectionTimeoutMs: options.budget.idleTimeoutMs, socketTimeoutMs: options.budget.idleTimeoutMs });
  }

  // ── blobs ──

  /** The blob's size, or undefined when the repository does not hold it. */
  blobExists(repo: string, digest: string): Promise<BlobInfo | undefined> {
    return this.operations.run("head", `read blob ${repo}@${digest}`, repo, () => this.headBlob(repo, digest));
  }

  /**
   * The blob's bytes, or a range of them, following redirects (the redirect is asked again on every try: signed
   * URLs expire). Rejects with not-found when absent, and with unsupported when a range is answered whole (200).
   */
  async openBlob(repo: string, digest: string, range?: ByteRange): Promise<Readable> {
    const what = `read blob ${repo}@${digest}${range ? ` (bytes ${range.start}-${range.end})` : ""}`;
    const body = await this.operations.run(
      "openRead",
      what,
      repo,
      async () => {
        // Until one answer says whether the registry serves blobs itself, one read asks the general way and the others
        // wait for it: the 16 parts a fetch starts with all went through Node's http parser before, and the registry
        // bench's 2 GiB fetch took 3.1 s, 1.8 s of user CPU and 118 MiB, against 2.5 s, 1.0 s and 84 MiB.
        while (this.directReads === "unknown" && this.directProbe) await this.directProbe;
        if (this.directReads === "on") {
          const direct = await this.directBlob(repo, digest, range);
          if (direct) return direct;
        }
        if (this.directReads !== "unknown") return this.generalBlob(repo, digest, range);
        let settle = (): void => undefined;
        this.directProbe = new Promise((resolve) => (settle = resolve));
        try {
          return await this.generalBlob(repo, digest, range);
        } finally {
          this.directProbe = undefined;
          settle();
        }
      },
      { discard: (late) => late.destroy() },
    );
    return this.operations.guarded(body, "openRead", what, repo);
  }

  /** A blob GET the general way (redirects followed, auth challenges answered); its answer decides directReads. */
  private async generalBlob(repo: string, digest: string, range: ByteRange | undefined): Promise<Readable> {
    const res = await this.send("GET", `/v2/${repo}/blobs/${digest}`, pull(repo), range ? { headers: { range: `bytes=${range.start}-${range.end}` } } : {});
    if (range && res.status === 200) {
      res.body.destroy();
      throw new StoreError("unsupported", "the registry answered a byte-range request with the whole blob (200, not 206)");
    }
    await this.expect(res, "GET", range ? 206 : 200);
    if (this.directReads === "unknown") this.directReads = res.redirected ? "off" : "on";
    return res.body;
  }

  /**
   * A small blob (a config, a move record) read whole as one operation, so a body cut or stalled mid-way is asked
   * again like a failed request (openBlob's stream is for the transfer engine, which resumes by range).
   */
  readBlob(repo: string, digest: string, size: number): Promise<Buffer> {
    return this.operations.run("read", `read blob ${repo}@${digest}`, repo, async () => {
      const res = await this.send("GET", `/v2/${repo}/blobs/${digest}`, pull(repo));
      await this.expect(res, "GET", 200);
      return readDocumentBody(res.body, size);
    });
  }

  /**
   * A blob GET over the buffer-reading HTTP/1.1 client (../http1-client.ts, shared with the S3 store): the registry bench fetched 2 GiB at
   * 6.6 CPU s/GiB through Node's http parser, against oras's 2.3. Used once a blob GET the general way was answered
   * by the registry itself (no redirect to storage or a CDN, as on ghcr.io), and until an answer is not the bytes:
   * then off for the client; a throttling or failing answer is a temporary error (its Retry-After kept: the retry
   * layer waits), any other (a 401 of an expired token…) is asked again the general way, which answers it.
   */
  private async directBlob(repo: string, digest: string, range: ByteRange | undefined): Promise<Readable | undefined> {
    const url = new URL(`/v2/${repo}/blobs/${digest}`, this.base);
    const res = await this.sendDirect("GET", url, pull(repo), range ? { range: `bytes=${range.start}-${range.end}` } : {});
    if (res.status === (range ? 206 : 200) && res.body) return res.body;
    res.body?.destroy();
    this.directReads = "off";
    if (RETRY_STATUS.has(res.status)) throw await answerError({ status: res.status, retryAfter: res.retryAfter }, "GET");
    return undefined;
  }

  /**
   * Puts a blob of `digest` into `repo`: mounted from `mountFrom` (another repository of this registry) when that
   * one holds it and the credentials may read it, else uploaded: in one PUT up to the chunk size, else in PATCH chunks, each try of a chunk resuming
   * from the bytes the registry reports it holds. The registry checks the digest (a mismatch: failed, 400
   * DIGEST_INVALID). Does not look whether `repo` holds it already (blobExists does).
   */
  async uploadBlob(repo: string, digest: string, body: Body, options: { mountFrom?: string } = {}): Promise<UploadOutcome> {
    const payload: Payload = Buffer.isBuffer(body)
      ? { source: bufferSource(body), data: body }
      : { source: sourceOf(body), ...("file" in body ? { file: body.file } : {}) };
    const { source } = payload;
    const what = `write blob ${repo}@${digest}`;
    let session: URL | undefined;
    if (options.mountFrom !== undefined) {
      const from = options.mountFrom;
      try {
        const mount = await this.operations.run("copy", `mount blob ${repo}@${digest} from ${from}`, repo, () =>
          this.startUpload(repo, `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`, [repositoryScope(from, "pull")]),
        );
        if (mount === "mounted") return "mounted";
        session = mount; // 202: a plain upload session, used for the upload's first try
      } catch (err) {
        // Credentials that may write here but not read the source (the mount needs both): the bytes go up instead.
        if (!(err instanceof StoreError && err.code === "auth")) throw err;
      }
    }
    for (let restarts = 0; ; restarts++) {
      try {
        if (source.size <= this.chunkBytes) await this.putWhole(repo, digest, payload, session);
        else await this.putChunks(repo, digest, payload, session ?? (await this.operations.run("write", what, repo, () => this.openSession(repo))));
        return "uploaded";
      } catch (err) {
        // A session the registry no longer knows (expired, or the registry restarted): the blob starts over.
        if (!(err instanceof StoreError && err.code === "not-found" && restarts < SESSION_RESTARTS)) throw err;
        session = undefined;
      }
    }
  }

  /** One PUT of the whole blob; each try opens its own session (a failed PUT may have spent the one it used). */
  private putWhole(repo: string, digest: string, payload: Payload, session: URL | undefined): Promise<void> {
    const { size } = payload.source;
    return this.operations.run(
      "write",
      `write blob ${repo}@${digest}`,
      repo,
      async (attempt) => {
        const location = attempt === 1 && session ? session : await this.openSession(repo);
        await this.finish(repo, location, digest, payload, { start: 0, end: size - 1 });
      },
      { deadlineMs: uploadDeadlineMs(this.operations.budget, size) },
    );
  }

  /** PATCH chunks in order, then the closing PUT. A retried chunk starts where the registry says its bytes end. */
  private async putChunks(repo: string, digest: string, payload: Payload, session: URL): Promise<void> {
    let location = session;
    let offset = 0;
    const what = `write blob ${repo}@${digest}`;
    const { size } = payload.source;
    while (offset < size) {
      const chunkEnd = Math.min(offset + this.chunkBytes, size) - 1;
      [location, offset] = await this.operations.run(
        "write",
        `${what} (bytes ${offset}-${chunkEnd})`,
        repo,
        async (attempt) => {
          let from = offset;
          // distribution keeps a broken PATCH's bytes, and its session URL carries the offset (signed): both anew.
          if (attempt > 1) [location, from] = await this.uploadStatus(repo, location);
          if (from > chunkEnd) return [location, from] as const; // the broken try's bytes all arrived
          const headers = { "content-type": "application/octet-stream", "content-range": `${from}-${chunkEnd}`, "content-length": String(chunkEnd - from + 1) };
          const res = await this.step("PATCH", location, push(repo), [202, 416], headers, { payload, range: { start: from, end: chunkEnd } });
          // 416: the registry holds another count than we asked from (a broken try's bytes still landing): ask again.
          if (res.status === 416) {
            throw new StoreError("unavailable", `PATCH answered 416: the upload holds other bytes than ${from}; resuming from its count`, { temporary: true });
          }
          return [sessionOf(res), res.held || chunkEnd + 1] as const;
        },
        { deadlineMs: uploadDeadlineMs(this.operations.budget, chunkEnd - offset + 1) },
      );
    }
    await this.operations.run("write", what, repo, async (attempt) => {
      // A closing PUT whose answer was lost may have stored the blob and ended the session: look before resending.
      if (attempt > 1 && (await this.headBlob(repo, digest))) return;
      await this.finish(repo, location, digest, undefined);
    });
  }

  /** POST /blobs/uploads/ (with `query`, needing `extraScopes` too): a session's URL, or "mounted" (201 to a mount). */
  private async startUpload(repo: string, query = "", extraScopes: string[] = []): Promise<URL | "mounted"> {
    const url = new URL(`/v2/${repo}/blobs/uploads/${query}`, this.base);
    const res = await this.step("POST", url, [...push(repo), ...extraScopes], [201, 202], { "content-length": "0" });
    return res.status === 201 ? "mounted" : sessionOf(res);
  }

  private async openSession(repo: string): Promise<URL> {
    const session = await this.startUpload(repo);
    if (session === "mounted") throw new StoreError("failed", "the registry answered an upload with 201 (a mount) though none was asked");
    return session;
  }

  /** The session's current URL and the bytes it holds (GET on it: 204 with Range); not-found when the registry lost it. */
  private async uploadStatus(repo: string, location: URL): Promise<[URL, number]> {
    const res = await this.send("GET", location, push(repo));
    await this.expect(res, "GET", 204);
    return [headerOf(res, "location") ? this.locationOf(res) : location, uploadedBytes(headerOf(res, "range"))];
  }

  /** One HEAD of a blob (no retry of its own). */
  private async headBlob(repo: string, digest: string): Promise<BlobInfo | undefined> {
    const res = await this.step("HEAD", new URL(`/v2/${repo}/blobs/${digest}`, this.base), pull(repo), [200, 404], {});
    return res.status === 404 ? undefined : { digest, size: res.length };
  }

  /** The closing PUT ?digest=, with the blob's bytes (`range` of `payload`) or none after chunks. */
  private async finish(repo: string, location: URL, digest: string, payload: Payload | undefined, range?: ByteRange): Promise<void> {
    const url = new URL(location);
    url.searchParams.set("digest", digest);
    const length = payload && range ? range.end - range.start + 1 : 0;
    const headers = { "content-type": "application/octet-stream", "content-length": String(length) };
    await this.step("PUT", url, push(repo), [201], headers, payload && length > 0 ? { payload, range: range! } : undefined);
  }

  /**
   * An upload step or a blob HEAD, answered by one of `expected` (else its StoreError is thrown). Sent over the
   * HTTP/1.1 client (../http1-client.ts) when its body is in memory or a local file: through Node's http client, a
   * file streamed in 64 KiB reads cost ~3.3 CPU s per GiB sent, against ~1.0 (a 1 GiB micro-benchmark; the registry
   * bench: 5.0 CPU s/GiB for a 2 GiB publish, oras 1.2). A challenge (401) or a redirect there is asked again through
   * `send`, which answers both (the registry checks access before it reads a body); any other answer is read there.
   */
  private async step(
    method: "HEAD" | "POST" | "PATCH" | "PUT",
    url: URL,
    scopes: readonly string[],
    expected: readonly number[],
    headers: Record<string, string>,
    body?: { payload: Payload; range: ByteRange },
  ): Promise<StepAnswer> {
    const direct = body && directBody(body.payload, body.range);
    if (!body || direct) {
      const res = await this.sendDirect(method, url, scopes, headers, direct);
      if (expected.includes(res.status)) {
        if (res.body) await pumpChunks(res.body, () => undefined);
        return {
          status: res.status,
          location: res.location === undefined ? undefined : new URL(res.location, url),
          held: uploadedBytes(res.range),
          length: res.length ?? 0,
        };
      }
      if (res.status !== 401 && (res.status < 300 || res.status > 399)) throw await answerError(res, method, this.auth.deniedHint(scopes));
      res.body?.destroy();
    }
    const res = await this.send(method, url, scopes, { headers, ...(body ? { body: () => body.payload.source.open(body.range) } : {}) });
    if (!expected.includes(res.status)) throw await statusError(res, method, this.auth.deniedHint(scopes));
    res.body.resume();
    const location = headerOf(res, "location");
    return {
      status: res.status,
      location: location === undefined ? undefined : new URL(location, res.url),
      held: uploadedBytes(headerOf(res, "range")),
      length: Number(headerOf(res, "content-length") ?? 0),
    };
  }

  /** One request over the HTTP/1.1 client, with the Authorization the auth has for `scopes` when it goes to the registry. */
  private async sendDirect(
    method: "GET" | "HEAD" | "POST" | "PATCH" | "PUT",
    url: URL,
    scopes: readonly string[],
    headers: Record<string, string>,
    body?: Buffer | FileRange,
  ): Promise<Http1Response> {
    const authorization = url.origin === this.base.origin ? await this.auth.authorization(scopes) : undefined;
    const signal = operationSignal();
    const all = { host: url.host, "accept-encoding": "identity", ...headers, ...(authorization ? { authorization } : {}) };
    return this.http1.request(method, url, url.pathname + url.search, all, {
      ...(body ? { body } : {}),
      ...(signal ? { signal } : {}),
      errorBody: method !== "GET",
    });
  }

  // ── manifests ──

  /** The manifest a tag or digest names, checked against its digest; undefined when absent. */
  getManifest(repo: string, reference: string): Promise<Manifest | undefined> {
    return this.operations.run("read", `read manifest ${named(repo, reference)}`, repo, async () => {
      const res = await this.send("GET", manifestPath(repo, reference), pull(repo), { headers: { accept: MANIFEST_TYPES.join(", ") } });
      if (res.status === 404) return discard(res);
      await this.expect(res, "GET", 200);
      const declared = headerOf(res, "content-length");
      const data = await readDocumentBody(res.body, declared === undefined ? undefined : Number(declared));
      const digest = sha256(data);
      const named = reference.startsWith("sha256:") ? reference : headerOf(res, "docker-content-digest");
      if (named && named !== digest) throw new StoreError("failed", `the manifest's bytes have digest ${digest}, not ${named} as the registry says`);
      return { digest, size: data.length, mediaType: headerOf(res, "content-type") ?? "", data };
    });
  }

  /** The digest, size and type of the manifest a tag or digest names (no body); undefined when absent. */
  headManifest(repo: string, reference: string): Promise<ManifestInfo | undefined> {
    return this.operations.run("head", `read manifest ${named(repo, reference)}`, repo, async () => {
      const res = await this.send("HEAD", manifestPath(repo, reference), pull(repo), { headers: { accept: MANIFEST_TYPES.join(", ") } });
      if (res.status === 404) return undefined;
      await this.expect(res, "HEAD", 200);
      const digest = headerOf(res, "docker-content-digest");
      if (!digest) throw new StoreError("failed", "HEAD of a manifest answered without Docker-Content-Digest");
      return { digest, size: Number(headerOf(res, "content-length")), mediaType: headerOf(res, "content-type") ?? "" };
    });
  }

  /**
   * Stores a manifest under a tag (which then names it, whatever it named before: registries have no conditional
   * PUT) or under its digest; every blob it names must be in the repository (else failed, 400). Returns its digest.
   */
  putManifest(repo: string, reference: string, data: Buffer, mediaType: string): Promise<string> {
    const digest = sha256(data);
    return this.operations.run("write", `write manifest ${named(repo, reference)}`, repo, async () => {
      const res = await this.send("PUT", manifestPath(repo, reference), push(repo), { headers: { "content-type": mediaType }, body: data });
      await this.expect(res, "PUT", 201);
      return digest;
    });
  }

  /**
   * Deletes a tag (the manifest and its other tags stay) or, by digest, a manifest with every tag naming it.
   * Absent is not an error; a registry that allows no deletes answers 405: unsupported.
   */
  deleteManifest(repo: string, reference: string): Promise<void> {
    return this.operations.run("delete", `delete manifest ${named(repo, reference)}`, repo, async () => {
      const res = await this.send("DELETE", manifestPath(repo, reference), [repositoryScope(repo, "delete")]);
      if (res.status === 404) return discard(res);
      await this.expect(res, "DELETE", 202);
    });
  }

  // ── tags ──

  /** Every tag of `repo`, `pageSize` per request (n, then the Link header's next page); none for a missing repository. */
  async *listTags(repo: string, pageSize = 1000): AsyncIterable<string> {
    let page: URL | undefined = new URL(`/v2/${repo}/tags/list?n=${pageSize}`, this.base);
    while (page) {
      const url: URL = page;
      const { tags, next } = await this.operations.run("list", `list tags of ${repo}`, repo, async () => {
        const res = await this.send("GET", url, pull(repo));
        if (res.status === 404) return { tags: [], next: discard(res) };
        await this.expect(res, "GET", 200);
        const listed = JSON.parse((await readDocumentBody(res.body)).toString("utf8")) as { tags?: unknown };
        if (listed.tags !== null && listed.tags !== undefined && !Array.isArray(listed.tags)) throw new StoreError("failed", "the tag list is not a list");
        return { tags: ((listed.tags as unknown[] | null) ?? []).filter((t): t is string => typeof t === "string"), next: nextPage(res) };
      });
      yield* tags;
      page = next;
    }
  }

  /**
   * Every repository of the registry (GET /v2/_catalog, paged like tags). Optional in the spec: a registry without
   * it answers 404 (not-found) or 401/403 (auth).
   */
  async *listRepositories(pageSize = 1000): AsyncIterable<string> {
    let page: URL | undefined = new URL(`/v2/_catalog?n=${pageSize}`, this.base);
    while (page) {
      const url: URL = page;
      const { repositories, next } = await this.operations.run("list", "list repositories", "_catalog", async () => {
        const res = await this.send("GET", url, [CATALOG_SCOPE]);
        await this.expect(res, "GET", 200);
        const listed = JSON.parse((await readDocumentBody(res.body)).toString("utf8")) as { repositories?: unknown };
        const names = Array.isArray(listed.repositories) ? listed.repositories : [];
        return { repositories: names.filter((r): r is string => typeof r === "string"), next: nextPage(res) };
      });
      yield* repositories;
      page = next;
    }
  }

  // ── what the layers ask ──

  classify(err: unknown): StoreError {
    return classifyRaw(err);
  }

  secrets(): readonly string[] {
    return this.auth.secrets();
  }

  /** Whether the registry's token service refused the credentials: an `auth` failure then says nothing of one request. */
  get credentialsRefused(): boolean {
    return this.auth.credentialsRefused;
  }

  // ── requests ──

  /**
   * One request needing `scopes` (token-flow scopes of the repositories it touches). To the registry it carries the
   * Authorization the auth has for them; a 401 is answered once (the body, when a stream, opened again for the
   * second try). A session URL or redirect to another origin gets no Authorization.
   */
  private async send(
    method: HttpRequest["method"],
    target: string | URL,
    scopes: readonly string[],
    init: { headers?: Record<string, string>; body?: Buffer | (() => Promise<Readable>) } = {},
  ): Promise<HttpResponse> {
    const url = typeof target === "string" ? new URL(target, this.base) : target;
    const toRegistry = url.origin === this.base.origin;
    let authorization = toRegistry ? await this.auth.authorization(scopes) : undefined;
    for (let challenged = false; ; challenged = true) {
      const headers: Record<string, string> = { "accept-encoding": "identity", ...init.headers, ...(authorization ? { authorization } : {}) };
      const body = typeof init.body === "function" ? await init.body() : init.body;
      const signal = operationSignal();
      const res = await httpRequest(url, { method, headers, ...(body ? { body } : {}), ...(signal ? { signal } : {}), maxRedirects: MAX_REDIRECTS });
      this.scopesOf.set(res, scopes);
      if (res.status !== 401 || !toRegistry) return res;
      this.auth.refused(authorization);
      if (challenged) return res;
      // A 401 before the body was read: the rest of that stream is never sent.
      if (body instanceof Readable) body.destroy();
      let next: string | undefined;
      try {
        next = await this.auth.answer(res, scopes, authorization);
      } catch (err) {
        res.body.resume();
        throw err;
      }
      if (next === undefined) return res;
      res.body.resume();
      authorization = next;
    }
  }

  /** Passes an answer of status `ok` (its body left to the caller); throws the StoreError for any other. */
  private async expect(res: HttpResponse, method: string, ok: number): Promise<void> {
    if (res.status === ok) {
      if (method !== "GET" || ok === 204) res.body.resume(); // nothing to read: free the connection
      return;
    }
    throw await statusError(res, method, this.auth.deniedHint(this.scopesOf.get(res) ?? []));
  }

  /** The upload session's URL from a Location header (relative to the answer's URL). */
  private locationOf(res: HttpResponse): URL {
    const location = headerOf(res, "location");
    if (!location) throw new StoreError("failed", `${res.status} answered without an upload Location`);
    return new URL(location, res.url);
  }
}

function pull(repo: string): string[] {
  return [repositoryScope(repo, "pull")];
}

function push(repo: string): string[] {
  return [repositoryScope(repo, "pull,push")];
}

function manifestPath(repo: string, reference: string): string {
  return `/v2/${repo}/manifests/${reference}`;
}

/** How messages name a manifest: repo:tag or repo@digest. */
function named(repo: string, reference: string): string {
  return reference.includes(":") ? `${repo}@${reference}` : `${repo}:${reference}`;
}

function sha256(data: Buffer): string {
  return "sha256:" + createHash("sha256").update(data).digest("hex");
}

/** A range of a payload as the HTTP/1.1 client sends it (a view of bytes in memory, or the file's range); undefined for another store's source. */
function directBody(payload: Payload, range: ByteRange): Buffer | FileRange | undefined {
  if (payload.data) return payload.data.subarray(range.start, range.end + 1);
  return payload.file === undefined ? undefined : { file: payload.file, ...range };
}

/** An upload session's URL from the answer that opened or advanced it. */
function sessionOf(answer: StepAnswer): URL {
  if (!answer.location) throw new StoreError("failed", `${answer.status} answered without an upload Location`);
  return answer.location;
}

/** Bytes in memory as a source: ranges are views, sent again as they are on a retry. */
function bufferSource(data: Buffer): ObjectSource {
  return { size: data.length, open: async (range) => Readable.from(range ? [data.subarray(range.start, range.end + 1)] : [data], { objectMode: false }) };
}

/** An answer whose body nobody reads: discarded, so its connection is free. */
function discard(res: HttpResponse): undefined {
  res.body.resume();
  return undefined;
}
