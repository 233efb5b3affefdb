// A token server of the distribution auth spec (the realm of registry C in scripts/test-servers.ts): `GET /token`
// with Basic credentials of a known user or none (anonymous: pull only), and `POST /token` with an OAuth2 refresh
// token (an identity token) or a password grant; it answers an RS256 JWT whose `access` claim grants the asked
// scopes (none on a repository under a `no-access` segment), signed by a key whose public half the registry reads
// from a JWKS file. It logs every token request (`GET /requests`: the cache tests count them), can issue tokens the
// registry will find expired (`POST /expire?n=N`: the next N) and can fail token requests (`POST
// /fail?n=N&status=S`: the next N answer S). Standalone: `node test/helpers/oci-token-server.ts --port N --key
// private.pem --user name:password [--refresh-token token:name]` serves until killed.
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";

/** What registry C's `auth.token` trusts: its `issuer` and `service`, and the key id its JWKS names. */
export const TOKEN_ISSUER = "assetkit-test";
export const TOKEN_SERVICE = "assetkit-test-registry";
const KEY_ID = "assetkit-test-key";
const TOKEN_SECONDS = 300;
/** Expired beyond distribution's 60 s leeway. */
const EXPIRED_BY_SECONDS = 120;
const GRANTED_TO_USERS = new Set(["pull", "push", "delete", "*"]);
const NO_ACCESS = "no-access";

export interface TokenRequest {
  method: string;
  /** The user the request authenticated as; undefined when anonymous; "(refused)" for bad credentials. */
  user: string | undefined;
  scopes: string[];
  status: number;
}

export interface TokenServerOptions {
  port?: number;
  /** PEM of the RSA signing key. */
  privateKey: string;
  /** User name → password. */
  users: Record<string, string>;
  /** Refresh (identity) token → user name. */
  refreshTokens?: Record<string, string>;
}

export interface TokenServer {
  url: string;
  requests: TokenRequest[];
  close(): Promise<void>;
}

/** A new signing key: its PEM for the server, and the JWKS (its public half) for the registry's `auth.token.jwks`. */
export function makeSigningKey(): { privateKey: string; jwks: string } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwk = { ...publicKey.export({ format: "jwk" }), kid: KEY_ID, alg: "RS256", use: "sig" };
  return { privateKey: privateKey.export({ format: "pem", type: "pkcs8" }).toString(), jwks: JSON.stringify({ keys: [jwk] }) };
}

export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const key = createPrivateKey(options.privateKey);
  createPublicKey(key); // refuses a key that is not a private key
  const requests: TokenRequest[] = [];
  let expiredToIssue = 0;
  let failing = { left: 0, status: 500 };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url!, "http://token.invalid");
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    };
    if (req.method === "GET" && url.pathname === "/requests") return reply(200, requests);
    if (req.method === "POST" && url.pathname === "/expire") {
      expiredToIssue = Number(url.searchParams.get("n") ?? "1");
      return reply(200, { expiredToIssue });
    }
    if (req.method === "POST" && url.pathname === "/fail") {
      failing = { left: Number(url.searchParams.get("n") ?? "1"), status: Number(url.searchParams.get("status") ?? "500") };
      return reply(200, failing);
    }
    if (url.pathname !== "/token" || (req.method !== "GET" && req.method !== "POST")) return reply(404, { error: "not found" });
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const form = req.method === "POST" ? new URLSearchParams(Buffer.concat(chunks).toString("utf8")) : url.searchParams;
      const scopes = req.method === "POST" ? (form.get("scope") ?? "").split(" ").filter(Boolean) : url.searchParams.getAll("scope");
      if (failing.left > 0) {
        failing.left--;
        requests.push({ method: req.method!, user: undefined, scopes, status: failing.status });
        return reply(failing.status, { errors: [{ code: "UNAVAILABLE", message: "failing on demand" }] });
      }
      const user = authenticate(req, form, options);
      requests.push({ method: req.method!, user: user === null ? "(refused)" : user, scopes, status: user === null ? 401 : 200 });
      if (user === null) return reply(401, { errors: [{ code: "UNAUTHORIZED", message: "bad credentials" }] });
      const expired = expiredToIssue > 0;
      if (expired) expiredToIssue--;
      const token = jwt(key, user, scopes, expired);
      reply(200, { token, access_token: token, expires_in: TOKEN_SECONDS, issued_at: new Date().toISOString() });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", resolve);
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** The user a request authenticates as: a name, undefined for anonymous, null for credentials that are wrong. */
function authenticate(req: http.IncomingMessage, form: URLSearchParams, options: TokenServerOptions): string | undefined | null {
  if (req.method === "POST") {
    const grant = form.get("grant_type");
    if (grant === "refresh_token") return options.refreshTokens?.[form.get("refresh_token") ?? ""] ?? null;
    if (grant === "password") return options.users[form.get("username") ?? ""] === form.get("password") ? form.get("username") : null;
    return null;
  }
  const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? "")?.[1];
  if (!basic) return undefined;
  const decoded = Buffer.from(basic, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  const name = decoded.slice(0, colon);
  return colon > 0 && Object.hasOwn(options.users, name) && options.users[name] === decoded.slice(colon + 1) ? name : null;
}

/**
 * A token granting `scopes` (`type:name:actions`): a user gets what it asks, anonymous only pull; nobody gets
 * anything on a repository with a path segment `no-access` (credentials that cannot read a mount's source).
 */
function jwt(key: KeyObject, user: string | undefined, scopes: string[], expired: boolean): string {
  const access = scopes.flatMap((scope) => {
    const first = scope.indexOf(":");
    const last = scope.lastIndexOf(":");
    if (first < 0 || last <= first) return [];
    const actions = scope
      .slice(last + 1)
      .split(",")
      .filter((a) => (user === undefined ? a === "pull" : GRANTED_TO_USERS.has(a)))
      .filter(
        () =>
          !scope
            .slice(first + 1, last)
            .split("/")
            .includes(NO_ACCESS),
      );
    return [{ type: scope.slice(0, first), name: scope.slice(first + 1, last), actions }];
  });
  const now = Math.floor(Date.now() / 1000);
  const exp = expired ? now - EXPIRED_BY_SECONDS : now + TOKEN_SECONDS;
  const claims = { iss: TOKEN_ISSUER, sub: user ?? "", aud: TOKEN_SERVICE, exp, nbf: now - 10, iat: now - 10, jti: randomUUID(), access };
  const encode = (part: object): string => Buffer.from(JSON.stringify(part)).toString("base64url");
  const signed = `${encode({ alg: "RS256", typ: "JWT", kid: KEY_ID })}.${encode(claims)}`;
  return `${signed}.${sign("sha256", Buffer.from(signed), key).toString("base64url")}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: "string" },
      key: { type: "string" },
      user: { type: "string", multiple: true },
      "refresh-token": { type: "string", multiple: true },
    },
  });
  if (!values.port || !values.key) throw new Error("usage: oci-token-server.ts --port N --key private.pem --user name:password [--refresh-token token:name]");
  const pairs = (list: string[] | undefined): Record<string, string> =>
    Object.fromEntries((list ?? []).map((pair) => [pair.slice(0, pair.indexOf(":")), pair.slice(pair.indexOf(":") + 1)]));
  const server = await startTokenServer({
    port: Number(values.port),
    privateKey: readFileSync(values.key, "utf8"),
    users: pairs(values.user),
    refreshTokens: pairs(values["refresh-token"]),
  });
  process.stdout.write(`token server on ${server.url}\n`);
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => void server.close().then(() => process.exit(0)));
}

const isMain = (import.meta as { main?: boolean }).main ?? process.argv[1] === new URL(import.meta.url).pathname;
if (isMain) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  });
}
