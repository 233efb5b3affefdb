// A fake of the GitHub REST API (test code): a real HTTP server on 127.0.0.1 that answers exactly the endpoints
// assetkit's PR comment calls, the way GitHub answers them, including their failures:
//   GET   /repos/{owner}/{repo}/issues/{number}/comments   per_page (default 30, max 100), page, Link header
//   POST  /repos/{owner}/{repo}/issues/{number}/comments
//   PATCH /repos/{owner}/{repo}/issues/comments/{id}
//   GET   /repos/{owner}/{repo}/contents/{path}?ref=        base64 content JSON, 404 when absent; ref is a branch
//                                                          name, or the head commit sha that the branch list gives
//   GET   /repos/{owner}/{repo}/branches                   per_page (default 30, max 100), page, Link header
//   POST  /repos/{owner}/{repo}/attestations               {bundle}: a Sigstore bundle whose DSSE statement's subjects
//                                                          it is listed under → 201 {id}
//   GET   /repos/{owner}/{repo}/attestations/{digest}      sha256:<hex>: {attestations: [{bundle, repository_id}]},
//                                                          per_page (default 30, max 100), page, Link header
// A token maps to a login; a read-only token gets GitHub's 403 "Resource not accessible by integration" on
// writes; a secondary rate limit (403 + retry-after) can be injected for the next N requests.
// State: the methods below, or GET /_fake/state; setup over HTTP: POST /_fake/setup (same shape as the options).
// Standalone (for end-to-end runs): `node test/helpers/github-api-fake.ts [--port N] [--config setup.json]`
// prints its URL; without a config, any token comments as github-actions[bot] with write access.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";

export interface FakeIdentity {
  login: string;
  /** A read-only token (a fork's PR, `permissions: read-all`): every write gets GitHub's 403. */
  readOnly?: boolean;
}

export interface FakeSetup {
  /** Token → who it is. */
  tokens?: Record<string, FakeIdentity>;
  /** Who any other token is; without it, other tokens get 401 "Bad credentials". */
  anyToken?: FakeIdentity;
  /** Repository files: files["owner/repo"][ref][path] = content. */
  files?: Record<string, Record<string, Record<string, string>>>;
  /** Comments already on issues and pull requests, oldest first. */
  comments?: { repo: string; issue: number; login: string; body: string }[];
  /** Branches of a repository: branches["owner/repo"] = names; each one's files are files["owner/repo"][name]. */
  branches?: Record<string, string[]>;
  /** Refs (branch names) whose file reads get GitHub's 403, as for a token without access to them. */
  forbiddenRefs?: string[];
}

export interface FakeComment {
  id: number;
  repo: string;
  issue: number;
  login: string;
  body: string;
  created_at: string;
  updated_at: string;
}

export interface LoggedRequest {
  method: string;
  /** Path and query, as sent. */
  url: string;
  login: string | undefined;
  status: number;
}

/** GitHub's cap on a comment body, in characters. */
const MAX_BODY_CHARS = 65_536;
const DOCS = "https://docs.github.com/rest";

/** An attestation stored (POST /repos/{owner}/{repo}/attestations). */
export interface FakeAttestation {
  id: number;
  repo: string;
  login: string;
  bundle: Record<string, unknown>;
  /** The subject digests of its statement, as `sha256:<hex>`. */
  digests: string[];
}

/** A repository_dispatch event received (POST /repos/{owner}/{repo}/dispatches). */
export interface FakeDispatch {
  repo: string;
  login: string;
  event_type: string;
  client_payload: Record<string, unknown>;
}

export interface GitHubApiFake {
  /** The API base URL: GITHUB_API_URL for the Action. */
  url: string;
  comments: FakeComment[];
  dispatches: FakeDispatch[];
  attestations: FakeAttestation[];
  requests: LoggedRequest[];
  commentsOn(repo: string, issue: number): FakeComment[];
  setup(setup: FakeSetup): void;
  /** The next `count` requests get GitHub's secondary-rate-limit 403 with `retry-after: seconds`. */
  rateLimitNext(count: number, retryAfterSeconds?: number): void;
  close(): Promise<void>;
}

export async function startGitHubApiFake(setup: FakeSetup = {}, options: { port?: number; serverUrl?: string } = {}): Promise<GitHubApiFake> {
  const serverUrl = options.serverUrl ?? "https://github.com";
  const tokens = new Map<string, FakeIdentity>();
  let anyToken: FakeIdentity | undefined;
  const files = new Map<string, string>();
  const branches = new Map<string, string[]>();
  const forbiddenRefs = new Set<string>();
  const comments: FakeComment[] = [];
  const dispatches: FakeDispatch[] = [];
  const attestations: FakeAttestation[] = [];
  const requests: LoggedRequest[] = [];
  let nextId = 1_000_001;
  let rateLimited = { count: 0, retryAfter: 1 };
  let apiUrl = "";

  const fileKey = (repo: string, ref: string, path: string) => `${repo.toLowerCase()}\0${ref}\0${path}`;
  const addComment = (repo: string, issue: number, login: string, body: string): FakeComment => {
    const now = new Date().toISOString();
    const comment = { id: nextId++, repo: repo.toLowerCase(), issue, login, body, created_at: now, updated_at: now };
    comments.push(comment);
    return comment;
  };
  const applySetup = (s: FakeSetup) => {
    for (const [token, identity] of Object.entries(s.tokens ?? {})) tokens.set(token, identity);
    if (s.anyToken) anyToken = s.anyToken;
    for (const [repo, refs] of Object.entries(s.files ?? {})) {
      for (const [ref, paths] of Object.entries(refs)) for (const [path, content] of Object.entries(paths)) files.set(fileKey(repo, ref, path), content);
    }
    for (const c of s.comments ?? []) addComment(c.repo, c.issue, c.login, c.body);
    for (const [repo, names] of Object.entries(s.branches ?? {})) branches.set(repo.toLowerCase(), names);
    for (const ref of s.forbiddenRefs ?? []) forbiddenRefs.add(ref);
  };
  /** A branch's head commit, as the branch list reports it. */
  const headSha = (repo: string, branch: string) => createHash("sha1").update(`${repo.toLowerCase()}\0${branch}`).digest("hex");
  /** A ref as given (a branch name, or a branch's head sha) → the branch name the files are set up under. */
  const refName = (repo: string, ref: string) => branches.get(repo.toLowerCase())?.find((b) => headSha(repo, b) === ref) ?? ref;
  applySetup(setup);

  const commentJson = (c: FakeComment) => {
    const [owner, repo] = c.repo.split("/");
    return {
      id: c.id,
      node_id: `IC_${Buffer.from(String(c.id)).toString("base64")}`,
      url: `${apiUrl}/repos/${owner}/${repo}/issues/comments/${c.id}`,
      html_url: `${serverUrl}/${owner}/${repo}/pull/${c.issue}#issuecomment-${c.id}`,
      issue_url: `${apiUrl}/repos/${owner}/${repo}/issues/${c.issue}`,
      body: c.body,
      user: { login: c.login, id: loginId(c.login), type: c.login.endsWith("[bot]") ? "Bot" : "User" },
      created_at: c.created_at,
      updated_at: c.updated_at,
      author_association: "NONE",
    };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, identity: FakeIdentity | undefined): Promise<number> => {
    const url = new URL(req.url ?? "/", apiUrl);
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, {
        "content-type": "application/json; charset=utf-8",
        "x-github-request-id": `FAKE:${requests.length + 1}`,
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": String(5000 - requests.length - 1),
        "x-ratelimit-reset": String(Math.floor(Date.now() / 1000) + 3600),
        "x-ratelimit-resource": "core",
        ...headers,
      });
      res.end(body === undefined ? undefined : JSON.stringify(body));
      return status;
    };
    const error = (status: number, message: string, docs = DOCS, headers: Record<string, string> = {}) =>
      send(status, { message, documentation_url: docs, status: String(status) }, headers);

    if (url.pathname === "/_fake/state" && req.method === "GET") return send(200, { comments, dispatches, attestations, requests });
    if (url.pathname === "/_fake/setup" && req.method === "POST") {
      applySetup(JSON.parse(await readBody(req)) as FakeSetup);
      return send(204, undefined);
    }
    if (rateLimited.count > 0) {
      rateLimited.count--;
      return error(
        403,
        "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID FAKE.",
        "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits",
        { "retry-after": String(rateLimited.retryAfter) },
      );
    }
    if (!identity) return error(401, "Bad credentials");

    const write = req.method === "POST" || req.method === "PATCH";
    if (write && identity.readOnly) {
      if (/\/attestations$/.test(url.pathname))
        return error(403, "Resource not accessible by integration", `${DOCS}/repos/attestations#create-an-attestation`, {
          "x-accepted-github-permissions": "attestations=write",
        });
      const docs = req.method === "POST" ? `${DOCS}/issues/comments#create-an-issue-comment` : `${DOCS}/issues/comments#update-an-issue-comment`;
      return error(403, "Resource not accessible by integration", docs, { "x-accepted-github-permissions": "issues=write; pull_requests=write" });
    }

    let a = /^\/repos\/([^/]+)\/([^/]+)\/attestations$/.exec(url.pathname);
    if (a && req.method === "POST") {
      const docs = `${DOCS}/repos/attestations#create-an-attestation`;
      let bundle: unknown;
      try {
        bundle = (JSON.parse(await readBody(req)) as { bundle?: unknown }).bundle;
      } catch {
        return error(400, "Problems parsing JSON", docs);
      }
      const digests = statementDigests(bundle);
      if (!digests) return error(422, "Invalid request.\n\nbundle is not a Sigstore bundle with a DSSE in-toto statement.", docs);
      const attestation = { id: nextId++, repo: `${a[1]}/${a[2]}`.toLowerCase(), login: identity.login, bundle: bundle as Record<string, unknown>, digests };
      attestations.push(attestation);
      return send(201, { id: attestation.id });
    }
    a = /^\/repos\/([^/]+)\/([^/]+)\/attestations\/([^/]+)$/.exec(url.pathname);
    if (a && req.method === "GET") {
      const [repo, digest] = [`${a[1]}/${a[2]}`.toLowerCase(), decodeURIComponent(a[3]!)];
      const found = attestations.filter((x) => x.repo === repo && x.digests.includes(digest));
      const { items, headers } = paginate(url, found);
      return send(200, { attestations: items.map((x) => ({ bundle: x.bundle, repository_id: loginId(x.repo) })) }, headers);
    }

    const dispatch = /^\/repos\/([^/]+)\/([^/]+)\/dispatches$/.exec(url.pathname);
    if (dispatch && req.method === "POST") {
      // GitHub: event_type 1-100 characters; client_payload an object of at most 10 top-level properties; 204.
      const docs = `${DOCS}/repos/repos#create-a-repository-dispatch-event`;
      let body: { event_type?: unknown; client_payload?: unknown };
      try {
        body = JSON.parse(await readBody(req)) as typeof body;
      } catch {
        return error(400, "Problems parsing JSON", docs);
      }
      if (typeof body.event_type !== "string" || body.event_type.length < 1 || body.event_type.length > 100)
        return error(422, "Invalid request.\n\nFor 'properties/event_type', nil is not a string.", docs);
      const payload = body.client_payload ?? {};
      if (typeof payload !== "object" || payload === null || Array.isArray(payload) || Object.keys(payload).length > 10) {
        return error(422, "Invalid request.\n\nNo more than 10 properties are allowed; client_payload was invalid.", docs);
      }
      dispatches.push({
        repo: `${dispatch[1]}/${dispatch[2]}`.toLowerCase(),
        login: identity.login,
        event_type: body.event_type,
        client_payload: payload as Record<string, unknown>,
      });
      res.writeHead(204, { "x-github-request-id": `FAKE:${requests.length + 1}` });
      res.end();
      return 204;
    }

    let m = /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/.exec(url.pathname);
    if (m && req.method === "GET") {
      const [repo, issue] = [`${m[1]}/${m[2]}`.toLowerCase(), Number(m[3])];
      const { items, headers } = paginate(
        url,
        comments.filter((c) => c.repo === repo && c.issue === issue),
      );
      return send(200, items.map(commentJson), headers);
    }
    if (m && req.method === "POST") {
      const body = bodyProblem(await readBody(req));
      if (typeof body !== "string") return send(422, body);
      const comment = addComment(`${m[1]}/${m[2]}`, Number(m[3]), identity.login, body);
      return send(201, commentJson(comment), { location: commentJson(comment).url });
    }
    m = /^\/repos\/([^/]+)\/([^/]+)\/branches$/.exec(url.pathname);
    if (m && req.method === "GET") {
      const repo = `${m[1]}/${m[2]}`;
      const names = branches.get(repo.toLowerCase());
      if (!names) return error(404, "Not Found", `${DOCS}/branches/branches#list-branches`);
      const { items, headers } = paginate(url, names);
      const branch = (name: string) => ({
        name,
        commit: { sha: headSha(repo, name), url: `${apiUrl}/repos/${repo}/commits/${headSha(repo, name)}` },
        protected: false,
      });
      return send(200, items.map(branch), headers);
    }
    m = /^\/repos\/([^/]+)\/([^/]+)\/issues\/comments\/(\d+)$/.exec(url.pathname);
    if (m && req.method === "PATCH") {
      const comment = comments.find((c) => c.id === Number(m![3]) && c.repo === `${m![1]}/${m![2]}`.toLowerCase());
      if (!comment) return error(404, "Not Found", `${DOCS}/issues/comments#update-an-issue-comment`);
      const body = bodyProblem(await readBody(req));
      if (typeof body !== "string") return send(422, body);
      comment.body = body;
      comment.updated_at = new Date().toISOString();
      return send(200, commentJson(comment));
    }
    m = /^\/repos\/([^/]+)\/([^/]+)\/contents\/(.+)$/.exec(url.pathname);
    if (m && req.method === "GET") {
      const path = decodeURIComponent(m[3]!);
      const ref = refName(`${m[1]}/${m[2]}`, url.searchParams.get("ref") ?? "");
      if (forbiddenRefs.has(ref)) return error(403, "Resource not accessible by integration", `${DOCS}/repos/contents#get-repository-content`);
      const content = files.get(fileKey(`${m[1]}/${m[2]}`, ref, path));
      if (content === undefined) return error(404, "Not Found", `${DOCS}/repos/contents#get-repository-content`);
      const bytes = Buffer.from(content);
      return send(200, {
        type: "file",
        encoding: "base64",
        size: bytes.length,
        name: path.split("/").pop(),
        path,
        // GitHub wraps the base64 at 60 characters.
        content: bytes.toString("base64").replace(/.{60}/g, "$&\n"),
        sha: createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex"),
        html_url: `${serverUrl}/${m[1]}/${m[2]}/blob/${url.searchParams.get("ref")}/${path}`,
      });
    }
    return error(404, "Not Found");
  };

  const server = createServer((req, res) => {
    const auth = /^(?:token|bearer) (.+)$/i.exec(req.headers.authorization ?? "")?.[1];
    const identity = auth === undefined ? undefined : (tokens.get(auth) ?? anyToken);
    handle(req, res, identity).then(
      (status) => {
        if (!(req.url ?? "").startsWith("/_fake/")) requests.push({ method: req.method ?? "", url: req.url ?? "", login: identity?.login, status });
      },
      (err: Error) => {
        res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ message: err.message }));
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, "127.0.0.1", resolve));
  apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: apiUrl,
    comments,
    dispatches,
    attestations,
    requests,
    commentsOn: (repo, issue) => comments.filter((c) => c.repo === repo.toLowerCase() && c.issue === issue),
    setup: applySetup,
    rateLimitNext(count, retryAfterSeconds = 1) {
      rateLimited = { count, retryAfter: retryAfterSeconds };
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

/** GitHub's page-number pagination: `per_page` (default 30, max 100) and `page`, with a Link header. */
function paginate<T>(url: URL, all: T[]): { items: T[]; headers: Record<string, string> } {
  const perPage = Math.min(100, Math.max(1, Number(url.searchParams.get("per_page") ?? 30) || 30));
  const page = Math.max(1, Number(url.searchParams.get("page") ?? 1) || 1);
  const last = Math.max(1, Math.ceil(all.length / perPage));
  const pageUrl = (p: number) => {
    const u = new URL(url);
    u.searchParams.set("per_page", String(perPage));
    u.searchParams.set("page", String(p));
    return u.href;
  };
  const links = [
    ...(page < last ? [`<${pageUrl(page + 1)}>; rel="next"`, `<${pageUrl(last)}>; rel="last"`] : []),
    ...(page > 1 ? [`<${pageUrl(1)}>; rel="first"`, `<${pageUrl(page - 1)}>; rel="prev"`] : []),
  ];
  return { items: all.slice((page - 1) * perPage, page * perPage), headers: links.length ? { link: links.join(", ") } : {} };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** The comment body of a create/update request, or GitHub's 422 document. */
function bodyProblem(raw: string): string | object {
  let body: unknown;
  try {
    body = (JSON.parse(raw) as { body?: unknown }).body;
  } catch {
    return { message: "Problems parsing JSON", documentation_url: DOCS, status: "400" };
  }
  const invalid = (code: string, message?: string) => ({
    message: "Validation Failed",
    errors: [{ resource: "IssueComment", code, field: "body", ...(message ? { message } : {}) }],
    documentation_url: `${DOCS}/issues/comments#create-an-issue-comment`,
    status: "422",
  });
  if (typeof body !== "string" || body === "") return invalid("missing_field");
  // GitHub counts characters (code points), not UTF-16 units.
  if ([...body].length > MAX_BODY_CHARS) return invalid("custom", `body is too long (maximum is ${MAX_BODY_CHARS} characters)`);
  return body;
}

/** The subject digests (`sha256:<hex>`) of a bundle's DSSE in-toto statement, or undefined when it is not one. */
function statementDigests(bundle: unknown): string[] | undefined {
  const envelope = (bundle as { dsseEnvelope?: { payload?: unknown } } | undefined)?.dsseEnvelope;
  if (typeof envelope?.payload !== "string") return undefined;
  try {
    const statement = JSON.parse(Buffer.from(envelope.payload, "base64").toString("utf8")) as { subject?: { digest?: Record<string, string> }[] };
    return (statement.subject ?? []).flatMap((s) => Object.entries(s.digest ?? {}).map(([algorithm, hex]) => `${algorithm}:${hex}`));
  } catch {
    return undefined;
  }
}

/** A stable numeric user id per login, as GitHub's `user.id`. */
function loginId(login: string): number {
  return createHash("sha256").update(login).digest().readUInt32BE(0);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const configFile = arg("--config");
  const setup: FakeSetup = configFile ? (JSON.parse(await readFile(configFile, "utf8")) as FakeSetup) : { anyToken: { login: "github-actions[bot]" } };
  const fake = await startGitHubApiFake(setup, { port: Number(arg("--port") ?? 0) });
  console.log(fake.url);
  const stop = () => void fake.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
