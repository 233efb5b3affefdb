// A local Sigstore (test code): one real HTTP server on 127.0.0.1 that plays every service keyless signing talks to
// (docs/trust.md, section 10):
//   GET  /.well-known/openid-configuration, /.well-known/jwks   an OIDC issuer (ES256), the issuer being this URL
//   GET  /token?api-version=2.0&audience=sigstore               GitHub's token endpoint as ACTIONS_ID_TOKEN_REQUEST_URL
//                                                              serves it: Bearer <requestToken> → {value: <JWT>}
//   POST /api/v2/signingCert                                    Fulcio: a certificate for a verified token
//   POST /api/v1/log/entries                                    Rekor v1: a `dsse` entry with inclusion proof
//   POST /api/v1/timestamp                                      an RFC 3161 timestamp authority
//   GET  /trust_config.json                                     the ClientTrustConfig (trusted root + signing config)
// The certificate authority, the logs and the TSA are @sigstore/mock's handlers, with four corrections that make
// them behave as the real services (found by experiment): Fulcio verifies the token's signature, issuer and audience
// (the mock only decodes it) and names the signer as Fulcio names a GitHub workflow; Rekor stores a `dsse` entry in
// its canonical form, as @sigstore/verify compares it; the TSA's chain is listed intermediate first, then root; the
// TSA's times are whole seconds.
// Tokens carry GitHub Actions claims for a workflow identity, settable per test (`identity`, or POST /_fake/identity).
// Standalone (for act and subprocesses): `node test/helpers/sigstore-fake.ts [--port N] [--trust-config FILE]
// [--request-token T]` prints its URL and writes the trust config to FILE.
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { exportJWK, jwtVerify, SignJWT, UnsecuredJWT, createLocalJWKSet, type JWTPayload } from "jose";
import { fulcioHandler, initializeCA, initializeCTLog } from "@sigstore/mock/dist/fulcio/index.js";
import { initializeTLog, rekorHandler } from "@sigstore/mock/dist/rekor/index.js";
import { initializeTSA, tsaHandler } from "@sigstore/mock/dist/timestamp/index.js";

/** The GitHub Actions run a token is issued for. */
export interface WorkflowIdentity {
  /** owner/name */
  repository: string;
  /** The workflow file's path in the repository, e.g. .github/workflows/train.yml */
  workflow: string;
  /** The ref the run is for, e.g. refs/heads/main */
  ref: string;
}

export const DEFAULT_IDENTITY: WorkflowIdentity = { repository: "acme/ml", workflow: ".github/workflows/train.yml", ref: "refs/heads/main" };

export interface SigstoreFake {
  url: string;
  /** The OIDC issuer URL (the tokens' `iss`, the certificates' issuer extension). */
  issuer: string;
  /** The identity the token endpoint issues tokens for; change it per test. */
  identity: WorkflowIdentity;
  /** ACTIONS_ID_TOKEN_REQUEST_URL and the Bearer token it takes (ACTIONS_ID_TOKEN_REQUEST_TOKEN). */
  tokenRequestUrl: string;
  tokenRequestToken: string;
  /** An OIDC token for Sigstore (audience `sigstore`) with GitHub Actions claims for `identity`. */
  token(identity?: WorkflowIdentity, claims?: JWTPayload): Promise<string>;
  /** The ClientTrustConfig JSON document (what `trust-config` files hold). */
  trustConfig: object;
  /** Requests served, method and path. */
  requests: { method: string; path: string; status: number }[];
  close(): Promise<void>;
}

/** The claims GitHub puts in a job's OIDC token (the subset Fulcio maps to certificate extensions). */
function actionsClaims(issuer: string, id: WorkflowIdentity): JWTPayload {
  const [owner] = id.repository.split("/");
  const workflowRef = `${id.repository}/${id.workflow}@${id.ref}`;
  const sha = createHash("sha1").update(workflowRef).digest("hex");
  return {
    iss: issuer,
    aud: "sigstore",
    sub: `repo:${id.repository}:ref:${id.ref}`,
    repository: id.repository,
    repository_owner: owner,
    repository_id: "1000001",
    repository_owner_id: "2000002",
    repository_visibility: "public",
    ref: id.ref,
    sha,
    workflow: id.workflow.split("/").pop(),
    workflow_ref: workflowRef,
    workflow_sha: sha,
    job_workflow_ref: workflowRef,
    job_workflow_sha: sha,
    event_name: "push",
    run_id: "42",
    run_attempt: "1",
    runner_environment: "github-hosted",
  };
}

export async function startSigstoreFake(options: { port?: number; identity?: WorkflowIdentity; requestToken?: string } = {}): Promise<SigstoreFake> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = url;
  const start = new Date(Date.now() - 60_000);

  const oidcKeys = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = { ...(await exportJWK(oidcKeys.publicKey)), kid: "fake-1", alg: "ES256", use: "sig" };
  const jwks = createLocalJWKSet({ keys: [jwk] });
  const keyPair = () => generateKeyPairSync("ec", { namedCurve: "P-256" });
  const ctLog = await initializeCTLog(keyPair());
  const ca = await initializeCA(keyPair(), ctLog);
  const tlogKeys = keyPair();
  const tlog = await initializeTLog(url, tlogKeys);
  const tsa = await initializeTSA(keyPair());
  // Correction 4: whole seconds. The mock writes fractions without trailing zeros ("…05.5Z"), a GeneralizedTime
  // @sigstore/core's parser refuses ("invalid time"): one timestamp in ten would not verify.
  (tsa as unknown as { getCurrentTime: () => Date }).getCurrentTime = () => new Date(Math.floor(Date.now() / 1000) * 1000);
  const fulcio = fulcioHandler(ca, { subjectClaim: "fulcio_subject" });
  const rekor = rekorHandler(tlog);
  const timestamp = tsaHandler(tsa);

  const der = (view: ArrayBufferView) => Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString("base64");
  const validFor = { start: start.toISOString() };
  const tlogKey = tlogKeys.publicKey.export({ format: "der", type: "spki" });
  const trustedRoot = {
    mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
    tlogs: [
      {
        baseUrl: url,
        hashAlgorithm: "SHA2_256",
        publicKey: { rawBytes: tlogKey.toString("base64"), keyDetails: "PKIX_ECDSA_P256_SHA_256", validFor },
        logId: { keyId: createHash("sha256").update(tlogKey).digest("base64") },
      },
    ],
    certificateAuthorities: [
      {
        subject: { organization: "sigstore.mock", commonName: "sigstore" },
        uri: url,
        certChain: { certificates: [{ rawBytes: der(ca.rootCertificate) }] },
        validFor,
      },
    ],
    ctlogs: [
      {
        baseUrl: url,
        hashAlgorithm: "SHA2_256",
        publicKey: { rawBytes: ctLog.publicKey.toString("base64"), keyDetails: "PKIX_ECDSA_P256_SHA_256", validFor },
        logId: { keyId: der(ctLog.logID) },
      },
    ],
    timestampAuthorities: [
      {
        subject: { organization: "sigstore.mock", commonName: "sigstore-tsa" },
        uri: url,
        // Correction 3: the chain as the verifier walks it, intermediate then root (the root alone does not verify).
        certChain: { certificates: [{ rawBytes: der(tsa.intCertificate) }, { rawBytes: der(tsa.rootCertificate) }] },
        validFor,
      },
    ],
  };
  const service = (operator: string) => ({ url, majorApiVersion: 1, validFor, operator });
  const signingConfig = {
    mediaType: "application/vnd.dev.sigstore.signingconfig.v0.2+json",
    caUrls: [service("fulcio.fake")],
    oidcUrls: [service("oidc.fake")],
    rekorTlogUrls: [service("rekor.fake")],
    tsaUrls: [{ ...service("tsa.fake"), url: `${url}/api/v1/timestamp` }],
    rekorTlogConfig: { selector: "ANY" },
    tsaConfig: { selector: "ANY" },
  };
  const trustConfig = { mediaType: "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json", trustedRoot, signingConfig };

  const token = (id: WorkflowIdentity = fake.identity, claims: JWTPayload = {}) =>
    new SignJWT({ ...actionsClaims(issuer, id), ...claims })
      .setProtectedHeader({ alg: "ES256", kid: jwk.kid, typ: "JWT" })
      .setIssuedAt()
      .setNotBefore("-1m")
      .setExpirationTime("10m")
      .sign(oidcKeys.privateKey);

  /** Correction 1: Fulcio checks the token first, and names a GitHub workflow by https://github.com/<job_workflow_ref>. */
  const signingCert = async (body: string) => {
    const request = JSON.parse(body) as { credentials?: { oidcIdentityToken?: string } };
    let claims: JWTPayload;
    try {
      claims = (await jwtVerify(request.credentials?.oidcIdentityToken ?? "", jwks, { issuer, audience: "sigstore" })).payload;
    } catch (err) {
      return {
        statusCode: 401,
        response: JSON.stringify({ code: 16, message: `There was an error processing the identity token: ${(err as Error).message}` }),
      };
    }
    // The mock decodes the token without checking it: hand it the checked claims, the subject under a claim of its own.
    const checked = new UnsecuredJWT({ ...claims, fulcio_subject: `https://github.com/${String(claims.job_workflow_ref)}` }).encode();
    return fulcio.fn(JSON.stringify({ ...request, credentials: { oidcIdentityToken: checked } }));
  };

  /** Correction 2: Rekor stores a `dsse` entry canonicalised (signatures, payload and envelope hashes), not as proposed. */
  const logEntry = (body: string) => {
    const proposed = JSON.parse(body) as { kind?: string; spec?: { proposedContent?: { envelope: string; verifiers: string[] } } };
    const content = proposed.spec?.proposedContent;
    if (proposed.kind !== "dsse" || !content) return rekor.fn(body);
    const envelope = JSON.parse(content.envelope) as { payload: string; signatures: { sig: string }[] };
    const sha256 = (data: Buffer | string) => ({ algorithm: "sha256", value: createHash("sha256").update(data).digest("hex") });
    const canonical = {
      apiVersion: "0.0.1",
      kind: "dsse",
      spec: {
        envelopeHash: sha256(content.envelope),
        payloadHash: sha256(Buffer.from(envelope.payload, "base64")),
        signatures: envelope.signatures.map((s) => ({ signature: s.sig, verifier: content.verifiers[0] })),
      },
    };
    return rekor.fn(JSON.stringify(canonical));
  };

  const requests: SigstoreFake["requests"] = [];
  const tokenRequestToken = options.requestToken ?? randomBytes(16).toString("hex");
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<number> => {
    const path = new URL(req.url ?? "/", url).pathname;
    const send = (status: number, body: string | Uint8Array | object, type = "application/json") => {
      res.writeHead(status, { "content-type": type });
      res.end(typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body));
      return status;
    };
    const body = req.method === "POST" ? await readBody(req) : "";
    if (req.method === "GET" && path === "/.well-known/openid-configuration")
      return send(200, { issuer, jwks_uri: `${url}/.well-known/jwks`, id_token_signing_alg_values_supported: ["ES256"] });
    if (req.method === "GET" && path === "/.well-known/jwks") return send(200, { keys: [jwk] });
    if (req.method === "GET" && path === "/trust_config.json") return send(200, trustConfig);
    if (req.method === "GET" && path === "/token") {
      if (req.headers.authorization !== `Bearer ${tokenRequestToken}`) return send(401, { message: "Bad credentials" });
      const audience = new URL(req.url ?? "/", url).searchParams.get("audience") ?? "sigstore";
      return send(200, { count: 1, value: await token(fake.identity, { aud: audience }) });
    }
    if (req.method === "POST" && path === "/_fake/identity") {
      fake.identity = JSON.parse(body) as WorkflowIdentity;
      return send(204, "");
    }
    const result =
      req.method !== "POST"
        ? undefined
        : path === "/api/v2/signingCert"
          ? await signingCert(body)
          : path === "/api/v1/log/entries"
            ? await logEntry(body)
            : path === "/api/v1/timestamp"
              ? await timestamp.fn(body)
              : undefined;
    if (!result) return send(404, { message: "Not Found" });
    const response =
      typeof result.response === "string" ? result.response : Buffer.from(result.response.buffer, result.response.byteOffset, result.response.byteLength);
    return send(result.statusCode, response, result.contentType ?? "application/json");
  };
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).then(
      (status) => requests.push({ method: req.method ?? "", path: new URL(req.url ?? "/", url).pathname, status }),
      (err: Error) => res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ message: err.message })),
    );
  });

  const fake: SigstoreFake = {
    url,
    issuer,
    identity: options.identity ?? DEFAULT_IDENTITY,
    tokenRequestUrl: `${url}/token?api-version=2.0`,
    tokenRequestToken,
    token,
    trustConfig,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
  return fake;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const requestToken = arg("--request-token");
  const fake = await startSigstoreFake({ port: Number(arg("--port") ?? 0), ...(requestToken ? { requestToken } : {}) });
  const trustConfigFile = arg("--trust-config");
  if (trustConfigFile) await writeFile(trustConfigFile, JSON.stringify(fake.trustConfig, null, 2));
  console.log(fake.url);
  const stop = () => void fake.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
