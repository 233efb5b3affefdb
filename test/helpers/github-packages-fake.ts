// A fake of GitHub's Packages REST API for container packages (test code: no real server of it can run here), kept
// over a real registry (the CNCF distribution registry with deletes on) the way ghcr.io keeps its packages: a
// package `<path>` of owner `<owner>` is repository `<owner>/<path>`, a package version is one manifest with every
// tag on it. Exactly the endpoints assetkit calls, for organisations and users alike:
//   GET    /{orgs|users}/{owner}/packages/container/{package}/versions   per_page (default 30, max 100), page, Link
//          header (rel="next", rel="last"); each version {id, name: <manifest digest>, metadata.container.tags}
//   DELETE /{orgs|users}/{owner}/packages/container/{package}/versions/{id}   204; the manifest and all its tags go
//   POST   /{orgs|users}/{owner}/packages/container/{package}/versions/{id}/restore   204; the manifest and its tags return
// Owners named in `users` are users (their /orgs/ path is 404), others organisations (their /users/ path is 404).
// A token without admin may list but gets 403 on delete and restore; an unknown or missing token gets 401 "Bad
// credentials". Rate limits can be injected for the next requests: GitHub's primary limit (403,
// `x-ratelimit-remaining: 0`, `x-ratelimit-reset`) or its secondary one (429, `retry-after`).
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

const MANIFEST_TYPES = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

export interface PackagesFakeSetup {
  /** The registry's origin (`http://127.0.0.1:<port>`), reached directly. */
  registry: string;
  /** Token → whether it has admin on the packages (may delete and restore). */
  tokens: Record<string, { admin: boolean }>;
  /** Owners that are users; any other owner is an organisation. */
  users?: string[];
  /** The largest page (GitHub's: 100); smaller makes listings page. */
  maxPerPage?: number;
}

interface Deleted {
  repo: string;
  digest: string;
  data: Buffer;
  mediaType: string;
  tags: string[];
}

export class GitHubPackagesFake {
  readonly url: string;
  /** Every request, as "METHOD path?query". */
  readonly requests: string[] = [];
  private readonly server: ReturnType<typeof createServer>;
  private readonly setup: PackagesFakeSetup;
  /** Package version ids by repository and manifest digest, given once and kept (GitHub's ids are stable). */
  private readonly ids = new Map<string, number>();
  private readonly deleted = new Map<number, Deleted>();
  private limits: { kind: "primary" | "secondary"; times: number }[] = [];

  private constructor(server: ReturnType<typeof createServer>, setup: PackagesFakeSetup) {
    this.server = server;
    this.setup = setup;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  static async start(setup: PackagesFakeSetup): Promise<GitHubPackagesFake> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const fake = new GitHubPackagesFake(server, setup);
    server.on("request", (req, res) => {
      fake.handle(req, res).catch((err: Error) => send(res, 500, { message: err.message }));
    });
    return fake;
  }

  /** The next `times` requests meet a rate limit: primary (403, remaining 0, reset in 1 s) or secondary (429, retry-after 1). */
  rateLimit(kind: "primary" | "secondary", times: number): void {
    this.limits.push({ kind, times });
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.requests.push(`${req.method} ${req.url}`);
    const limit = this.limits.find((l) => l.times > 0);
    if (limit) {
      limit.times--;
      if (limit.kind === "primary") {
        const reset = String(Math.ceil(Date.now() / 1000) + 1);
        return send(res, 403, { message: "API rate limit exceeded for user ID 1." }, { "x-ratelimit-remaining": "0", "x-ratelimit-reset": reset });
      }
      return send(res, 429, { message: "You have exceeded a secondary rate limit." }, { "retry-after": "1" });
    }
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    const who = token === undefined ? undefined : this.setup.tokens[token];
    if (!who) return send(res, 401, { message: "Bad credentials" });
    const url = new URL(req.url!, this.url);
    const route = /^\/(orgs|users)\/([^/]+)\/packages\/container\/([^/]+)\/versions(?:\/(\d+)(\/restore)?)?$/.exec(url.pathname);
    if (!route) return send(res, 404, { message: "Not Found" });
    const [, kind, owner, encodedName, idText, restore] = route as unknown as [string, string, string, string, string | undefined, string | undefined];
    const isUser = (this.setup.users ?? []).includes(owner);
    if ((kind === "users") !== isUser) return send(res, 404, { message: "Not Found" });
    const repo = `${owner}/${decodeURIComponent(encodedName)}`;

    if (req.method === "GET" && idText === undefined) return this.list(res, url, repo);
    if (!who.admin) return send(res, 403, { message: "You need admin access to the package to delete or restore its versions." });
    const id = Number(idText);
    if (req.method === "DELETE" && idText !== undefined && !restore) return this.remove(res, repo, id);
    if (req.method === "POST" && restore) return this.restore(res, repo, id);
    return send(res, 404, { message: "Not Found" });
  }

  private async list(res: ServerResponse, url: URL, repo: string): Promise<void> {
    const versions = await this.versionsOf(repo);
    if (versions.length === 0) return send(res, 404, { message: "Package not found." });
    const perPage = Math.min(Number(url.searchParams.get("per_page") ?? 30), this.setup.maxPerPage ?? 100);
    const page = Number(url.searchParams.get("page") ?? 1);
    const last = Math.max(1, Math.ceil(versions.length / perPage));
    const link = (p: number) => {
      const next = new URL(url);
      next.searchParams.set("per_page", String(perPage));
      next.searchParams.set("page", String(p));
      return next.href;
    };
    const headers: Record<string, string> = {};
    if (page < last) headers.link = `<${link(page + 1)}>; rel="next", <${link(last)}>; rel="last"`;
    const shown = versions.slice((page - 1) * perPage, page * perPage);
    send(
      res,
      200,
      shown.map((v) => ({ id: v.id, name: v.digest, metadata: { package_type: "container", container: { tags: v.tags } } })),
      headers,
    );
  }

  /** The repository's manifests that have tags, newest (highest id) first, as GitHub lists active versions. */
  private async versionsOf(repo: string): Promise<{ id: number; digest: string; tags: string[] }[]> {
    const listed = await fetch(`${this.setup.registry}/v2/${repo}/tags/list`);
    if (listed.status === 404) return [];
    const tags = ((await listed.json()) as { tags: string[] | null }).tags ?? [];
    const byDigest = new Map<string, string[]>();
    for (const tag of tags) {
      const head = await fetch(`${this.setup.registry}/v2/${repo}/manifests/${tag}`, { method: "HEAD", headers: { accept: MANIFEST_TYPES } });
      const digest = head.headers.get("docker-content-digest")!;
      byDigest.set(digest, [...(byDigest.get(digest) ?? []), tag]);
    }
    return [...byDigest].map(([digest, tagged]) => ({ id: this.idOf(repo, digest), digest, tags: tagged.sort() })).sort((a, b) => b.id - a.id);
  }

  private idOf(repo: string, digest: string): number {
    const key = `${repo}@${digest}`;
    if (!this.ids.has(key)) this.ids.set(key, 1000 + this.ids.size);
    return this.ids.get(key)!;
  }

  private async remove(res: ServerResponse, repo: string, id: number): Promise<void> {
    const version = (await this.versionsOf(repo)).find((v) => v.id === id);
    if (!version) return send(res, 404, { message: "Package version not found." });
    const manifest = await fetch(`${this.setup.registry}/v2/${repo}/manifests/${version.digest}`, { headers: { accept: MANIFEST_TYPES } });
    const data = Buffer.from(await manifest.arrayBuffer());
    const mediaType = manifest.headers.get("content-type")!;
    const gone = await fetch(`${this.setup.registry}/v2/${repo}/manifests/${version.digest}`, { method: "DELETE" });
    if (gone.status !== 202) throw new Error(`the registry did not delete ${repo}@${version.digest}: ${gone.status}`);
    this.deleted.set(id, { repo, digest: version.digest, data, mediaType, tags: version.tags });
    send(res, 204);
  }

  private async restore(res: ServerResponse, repo: string, id: number): Promise<void> {
    const version = this.deleted.get(id);
    if (!version || version.repo !== repo) return send(res, 404, { message: "Package version not found." });
    for (const tag of version.tags) {
      const put = await fetch(`${this.setup.registry}/v2/${repo}/manifests/${tag}`, {
        method: "PUT",
        body: version.data,
        headers: { "content-type": version.mediaType },
      });
      if (put.status !== 201) throw new Error(`the registry did not take ${repo}:${tag} back: ${put.status}`);
    }
    this.deleted.delete(id);
    send(res, 204);
  }
}

function send(res: ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...(body === undefined ? {} : { "content-type": "application/json; charset=utf-8" }), ...headers });
  res.end(body === undefined ? undefined : JSON.stringify(body));
}
