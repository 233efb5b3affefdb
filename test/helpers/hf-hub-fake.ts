// A fake of the Hugging Face Hub (test code): two real HTTP servers on 127.0.0.1, the Hub and its LFS CDN (a
// different origin, as on the real Hub), answering exactly the endpoints assetkit's import calls, the way the
// Hub answers them (huggingface_hub's hf_raise_for_status reads the same X-Error-Code headers):
//   GET  /api/{models|datasets}/{org}/{repo}/revision/{rev}          {id, sha, siblings}; 404 RevisionNotFound
//   POST /api/{models|datasets}/{org}/{repo}/paths-info/{rev}        form paths=…&expand=false → [entry]
//   GET  /api/{models|datasets}/{org}/{repo}/tree/{rev}[/{path}]?recursive=true   [entry], Link rel="next" pages
//   GET  /[datasets/]{org}/{repo}/resolve/{rev}/{path}               small files: 200 (Range → 206) with
//        X-Repo-Commit and ETag = git blob id; LFS files: 302 to the CDN with a signed URL
//   GET  CDN /blobs/{sha256}?sig=…                                   the content (Range → 206); a request that
//        carries an Authorization header is refused (400), like a presigned S3 URL
// An unknown repo answers 401 RepoNotFound without a token, 404 with one (the Hub hides private repos). A gated
// repo lists its files to anyone but its resolve answers 401 GatedRepo without a token and 403 GatedRepo to a
// token without access. `rateLimit(n, seconds)` answers the next n requests 429 with Retry-After, `unavailable(n)`
// the next n 503. `corrupt(oid)`
// makes the CDN serve other bytes for that LFS object. Entries entry.lfs = {oid: sha256, size, pointerSize}.
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeRepo {
  type?: "model" | "dataset";
  /** org/name */
  id: string;
  /** branch or tag → commit sha */
  refs: Record<string, string>;
  /** commit sha → files */
  commits: Record<string, Record<string, Buffer>>;
  gated?: boolean;
  private?: boolean;
  /** Tokens allowed into a gated or private repo. */
  tokens?: string[];
}

export interface HubFake {
  url: string;
  cdnUrl: string;
  requests: { method: string; url: string; status: number; host: "hub" | "cdn"; authorized: boolean }[];
  rateLimit(requests: number, retryAfterSeconds: number): void;
  /** Answers the next `requests` requests 503 Service Unavailable. */
  unavailable(requests: number): void;
  corrupt(sha256: string): void;
  close(): Promise<void>;
}

/** Files at or above this size are stored in LFS (the Hub's rule is per .gitattributes; size is enough here). */
export const LFS_THRESHOLD = 1024;
const PAGE_SIZE = 50;

export function commitSha(seed: string): string {
  return createHash("sha1").update(seed).digest("hex");
}

function gitOid(data: Buffer): string {
  return createHash("sha1").update(`blob ${data.length}\0`).update(data).digest("hex");
}

function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

function entryOf(path: string, data: Buffer) {
  if (data.length < LFS_THRESHOLD) return { type: "file", oid: gitOid(data), size: data.length, path };
  const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(data)}\nsize ${data.length}\n`;
  return {
    type: "file",
    oid: gitOid(Buffer.from(pointer)),
    size: data.length,
    lfs: { oid: sha256(data), size: data.length, pointerSize: pointer.length },
    path,
  };
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

export async function startHubFake(repos: FakeRepo[]): Promise<HubFake> {
  const blobs = new Map<string, Buffer>();
  const corrupted = new Set<string>();
  const signature = randomBytes(8).toString("hex");
  for (const repo of repos) for (const files of Object.values(repo.commits)) for (const data of Object.values(files)) blobs.set(sha256(data), data);
  let limited = 0;
  let retryAfter = 1;
  let down = 0;
  const requests: HubFake["requests"] = [];

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    const data = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    res.writeHead(status, {
      "content-type": Buffer.isBuffer(body) ? "application/octet-stream" : "application/json",
      "content-length": String(data.length),
      ...headers,
    });
    res.end(data);
  };
  const fail = (res: ServerResponse, status: number, code: string | undefined, message: string): void =>
    send(res, status, { error: message }, { ...(code ? { "x-error-code": code } : {}), "x-error-message": message });
  const serveBytes = (req: IncomingMessage, res: ServerResponse, data: Buffer, headers: Record<string, string>): void => {
    const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
    if (!range) return send(res, 200, data, { "accept-ranges": "bytes", ...headers });
    const start = Number(range[1]);
    const end = Math.min(Number(range[2]), data.length - 1);
    send(res, 206, data.subarray(start, end + 1), { "content-range": `bytes ${start}-${end}/${data.length}`, ...headers });
  };

  const cdn = createServer((req, res) => {
    const url = new URL(req.url!, "http://cdn");
    const authorized = req.headers.authorization !== undefined;
    res.on("finish", () => requests.push({ method: req.method!, url: req.url!, status: res.statusCode, host: "cdn", authorized }));
    if (authorized) return fail(res, 400, undefined, "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter should be specified");
    const oid = /^\/blobs\/([0-9a-f]{64})$/.exec(url.pathname)?.[1];
    const data = oid ? blobs.get(oid) : undefined;
    if (!oid || !data || url.searchParams.get("sig") !== signature) return fail(res, 403, undefined, "AccessDenied");
    serveBytes(req, res, corrupted.has(oid) ? Buffer.concat([data.subarray(0, -1), Buffer.from([data.at(-1)! ^ 1])]) : data, { etag: `"${oid}"` });
  });
  const cdnUrl = await listen(cdn);

  const hub = createServer(async (req, res) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    res.on("finish", () => requests.push({ method: req.method!, url: req.url!, status: res.statusCode, host: "hub", authorized: token !== undefined }));
    let body = "";
    for await (const chunk of req) body += chunk;
    if (down > 0) {
      down--;
      return send(res, 503, { error: "Service Unavailable" });
    }
    if (limited > 0) {
      limited--;
      return send(res, 429, { error: "You have exceeded our hourly quotas. We invite you to retry later." }, { "retry-after": String(retryAfter) });
    }
    const url = new URL(req.url!, "http://hub");
    const parts = url.pathname.split("/").slice(1).map(decodeURIComponent);
    const api = parts[0] === "api";
    if (api) parts.shift();
    let type: "model" | "dataset" = "model";
    if (api) type = parts.shift() === "datasets" ? "dataset" : "model";
    else if (parts[0] === "datasets") {
      parts.shift();
      type = "dataset";
    }
    const id = `${parts[0]}/${parts[1]}`;
    const [action, rev, ...rest] = parts.slice(2);
    const repo = repos.find((r) => r.id === id && (r.type ?? "model") === type);
    const allowed = repo !== undefined && (!repo.private || (token !== undefined && (repo.tokens ?? []).includes(token)));
    if (!repo || !allowed) {
      return token
        ? fail(res, 404, "RepoNotFound", `Repository Not Found for url: ${req.url}.`)
        : fail(
            res,
            401,
            "RepoNotFound",
            `Repository Not Found for url: ${req.url}. Please make sure you specified the correct repo_id and repo_type. If you are trying to access a private or gated repo, make sure you are authenticated.`,
          );
    }
    const commit = rev === undefined ? undefined : /^[0-9a-f]{40}$/.test(rev) && repo.commits[rev] ? rev : repo.refs[rev];
    if (!commit) return fail(res, 404, "RevisionNotFound", `Invalid rev id: ${rev}`);
    const files = repo.commits[commit]!;
    const entries = Object.entries(files).map(([p, d]) => entryOf(p, d));

    if (api && action === "revision" && req.method === "GET") {
      return send(res, 200, {
        _id: randomBytes(12).toString("hex"),
        id,
        sha: commit,
        private: repo.private ?? false,
        gated: repo.gated ? "auto" : false,
        siblings: Object.keys(files).map((rfilename) => ({ rfilename })),
      });
    }
    if (api && action === "paths-info" && req.method === "POST") {
      const asked = new URLSearchParams(body).getAll("paths");
      const dirs = new Set(
        Object.keys(files).flatMap((p) =>
          p
            .split("/")
            .slice(0, -1)
            .map((_, i, segs) => segs.slice(0, i + 1).join("/")),
        ),
      );
      return send(
        res,
        200,
        asked.flatMap((p) => (files[p] ? [entryOf(p, files[p])] : dirs.has(p) ? [{ type: "directory", oid: gitOid(Buffer.from(p)), size: 0, path: p }] : [])),
      );
    }
    if (api && action === "tree" && req.method === "GET") {
      const under = rest.join("/");
      const listed = entries.filter((e) => !under || e.path.startsWith(`${under}/`)).sort((a, b) => a.path.localeCompare(b.path));
      if (under && listed.length === 0) return fail(res, 404, "EntryNotFound", `${under} does not exist on "${rev}"`);
      const start = Number(url.searchParams.get("cursor") ?? "0");
      const page = listed.slice(start, start + PAGE_SIZE);
      const next = new URL(req.url!, `http://${req.headers.host}`);
      next.searchParams.set("cursor", String(start + PAGE_SIZE));
      return send(res, 200, page, start + PAGE_SIZE < listed.length ? { link: `<${next.href}>; rel="next"` } : {});
    }
    if (!api && action === "resolve" && (req.method === "GET" || req.method === "HEAD")) {
      if (repo.gated && !(token && (repo.tokens ?? []).includes(token))) {
        return token
          ? fail(
              res,
              403,
              "GatedRepo",
              `Access to model ${id} is restricted and you are not in the authorized list. Visit https://huggingface.co/${id} to ask for access.`,
            )
          : fail(res, 401, "GatedRepo", `Access to model ${id} is restricted. You must have access to it and be authenticated to access it. Please log in.`);
      }
      const path = rest.join("/");
      const data = files[path];
      if (!data) return fail(res, 404, "EntryNotFound", `${path} does not exist on "${rev}"`);
      const entry = entryOf(path, data);
      const common = { "x-repo-commit": commit, etag: `"${entry.lfs?.oid ?? entry.oid}"` };
      if (!entry.lfs) return serveBytes(req, res, data, common);
      res.writeHead(302, {
        location: `${cdnUrl}/blobs/${entry.lfs.oid}?sig=${signature}`,
        "x-linked-size": String(data.length),
        "x-linked-etag": `"${entry.lfs.oid}"`,
        ...common,
      });
      return res.end();
    }
    fail(res, 404, undefined, "Not Found");
  });
  const url = await listen(hub);

  return {
    url,
    cdnUrl,
    requests,
    rateLimit(n, seconds) {
      limited = n;
      retryAfter = seconds;
    },
    unavailable(n) {
      down = n;
    },
    corrupt(oid) {
      corrupted.add(oid);
    },
    async close() {
      const closing = [hub, cdn].map((server) => new Promise((r) => server.close(r)));
      hub.closeAllConnections();
      cdn.closeAllConnections();
      await Promise.all(closing);
    },
  };
}
