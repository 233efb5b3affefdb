// A client for exactly the Hugging Face Hub endpoints an import needs (the documented HTTP API that
// huggingface_hub calls): resolve a revision to its commit, describe a path, list a tree (all pages), and
// download a file, following the Hub's redirect of LFS files to its CDN (the token is dropped on that
// cross-origin hop). Retries, time budgets and the stall guard are the store layers' (ASSETKIT_RETRIES,
// ASSETKIT_IDLE_TIMEOUT, ASSETKIT_TIMEOUT); rate limits (429) are waited out per Retry-After within that budget.
// The token is sent, never printed.
import type { Readable } from "node:stream";
import { AssetError } from "../base/errors.ts";
import { headerOf, httpRequest, type HttpRequest, type HttpResponse } from "../store/http-client.ts";
import { retryAfter } from "../store/http.ts";
import { retrying } from "../store/layers/retry.ts";
import { idleError, operationSignal, withDeadline } from "../store/layers/timeout.ts";
import { stallGuard } from "../store/stall-guard.ts";
import { readDocumentBody, StoreError, type ByteRange } from "../store/store.ts";
import type { TimeBudget } from "../store/tuning.ts";

export type RepoType = "model" | "dataset";

export interface HubRepo {
  type: RepoType;
  /** org/name */
  id: string;
}

/** A tree entry as the Hub lists it: a file's git blob id, size, and for LFS files the sha256 of the content. */
export interface HubEntry {
  type: "file" | "directory";
  path: string;
  size: number;
  oid: string;
  lfs?: { oid: string; size: number };
}

export class HubClient {
  private readonly endpoint: string;
  private readonly token: string | undefined;
  readonly repo: HubRepo;
  private readonly shown: string;
  private readonly budget: TimeBudget;

  constructor(endpoint: string, token: string | undefined, repo: HubRepo, budget: TimeBudget) {
    this.endpoint = endpoint.replace(/\/+$/, "");
    this.token = token || undefined;
    this.repo = repo;
    this.budget = budget;
    this.shown = `${repo.type === "dataset" ? "dataset " : ""}${repo.id}`;
  }

  private api(...parts: string[]): string {
    return `${this.endpoint}/api/${this.repo.type}s/${this.repo.id}/${parts.join("/")}`;
  }

  /** The commit sha a branch, tag or sha names. */
  async commit(revision: string): Promise<string> {
    const res = await this.request(this.api("revision", encodeURIComponent(revision)), {}, `revision ${revision}`);
    const info = (await json(res)) as { sha?: unknown };
    if (typeof info.sha !== "string" || !/^[0-9a-f]{40}$/.test(info.sha)) throw new AssetError(`the Hub sent no commit sha for ${this.shown}@${revision}`);
    return info.sha;
  }

  /** The file or folder at `path` in a commit, or undefined when there is none. */
  async pathInfo(commit: string, path: string): Promise<HubEntry | undefined> {
    const body = new URLSearchParams({ paths: path, expand: "false" }).toString();
    const headers = { "content-type": "application/x-www-form-urlencoded;charset=UTF-8" };
    const res = await this.request(this.api("paths-info", commit), { method: "POST", headers, body }, path);
    const entries = (await json(res)) as HubEntry[];
    return entries.find((e) => e.path === path);
  }

  /** Every file under `path` ("" for the whole repo) in a commit, across all pages. */
  async files(commit: string, path: string): Promise<HubEntry[]> {
    const out: HubEntry[] = [];
    let url: string | undefined =
      `${this.api("tree", commit, ...(path ? [path.split("/").map(encodeURIComponent).join("/")] : []))}?recursive=true&expand=false`;
    while (url) {
      const res = await this.request(url, {}, path || "the file list");
      out.push(...((await json(res)) as HubEntry[]).filter((e) => e.type === "file"));
      url = nextLink(headerOf(res, "link"));
    }
    return out;
  }

  /** A file's bytes (or a range of them) at a commit; LFS files come from the CDN the Hub redirects to. */
  async open(commit: string, path: string, range?: ByteRange): Promise<Readable> {
    const prefix = this.repo.type === "dataset" ? "datasets/" : "";
    const url = `${this.endpoint}/${prefix}${this.repo.id}/resolve/${commit}/${path.split("/").map(encodeURIComponent).join("/")}`;
    const res = await this.request(url, range ? { headers: { range: `bytes=${range.start}-${range.end}` } } : {}, path);
    if (range && res.status !== 206) {
      res.body.destroy();
      throw new StoreError("unavailable", `the Hub answered ${res.status}, not 206, to a byte range of ${path} in ${this.shown}`);
    }
    const idle = this.budget.idleTimeoutMs;
    return stallGuard(res.body, idle, () => idleError(idle, "no data"));
  }

  /** One request, tried by the store layers' policy: network failures, stalls, 429s and 5xx again; other failures explained. */
  private request(url: string, init: Omit<HttpRequest, "method"> & { method?: "POST" }, what: string): Promise<HttpResponse> {
    const headers = { ...init.headers, ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) };
    const signal = operationSignal();
    return retrying(this.budget, () =>
      withDeadline(
        this.budget.idleTimeoutMs,
        async () => {
          let res: HttpResponse;
          try {
            res = await httpRequest(new URL(url), { ...init, method: init.method ?? "GET", headers, ...(signal ? { signal } : {}) });
          } catch (err) {
            throw new StoreError("unavailable", `cannot reach the Hub at ${this.endpoint} for ${what} (${(err as Error).message})`, {
              temporary: true,
              cause: err,
            });
          }
          if (res.status >= 200 && res.status <= 299) return res;
          res.body.destroy();
          throw this.failure(res, what);
        },
        (late) => void late.body.destroy(),
      ),
    );
  }

  private failure(res: HttpResponse, what: string): Error {
    const code = headerOf(res, "x-error-code");
    const repo = this.shown;
    if (res.status === 401) {
      return new AssetError(
        this.token
          ? `the Hub refused HF_TOKEN for ${repo} (401): check the token`
          : `${repo} needs HF_TOKEN: the Hub answered 401 (${code === "GatedRepo" ? "a gated repo" : "a private or missing repo"}) for ${what}`,
      );
    }
    if (res.status === 403) {
      return new AssetError(
        code === "GatedRepo"
          ? `HF_TOKEN has no access to the gated repo ${repo}: accept its conditions on the Hub first`
          : `the Hub forbids ${what} of ${repo} to this HF_TOKEN (403): give the token read access`,
      );
    }
    if (res.status === 404) {
      if (code === "RevisionNotFound") return new AssetError(`${repo} has no ${what} on the Hub`);
      if (code === "EntryNotFound") return new AssetError(`${repo} has no ${what} at that revision`);
      return new AssetError(`the Hub has no ${repo} (404${code ? ` ${code}` : ""}) for ${what}`);
    }
    if (res.status === 429) {
      const retryAfterMs = retryAfter(headerOf(res, "retry-after"));
      // A wait beyond the time budget is not waited out: the import fails and says when to retry.
      if (retryAfterMs !== undefined && retryAfterMs > this.budget.timeoutMs)
        return new AssetError(`the Hub rate-limits ${repo} for ${Math.ceil(retryAfterMs / 1000)} s: retry later (set HF_TOKEN for a higher limit)`);
      return new StoreError("unavailable", `the Hub rate-limits ${repo} (429): retry later (set HF_TOKEN for a higher limit)`, {
        temporary: true,
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      });
    }
    return new StoreError("unavailable", `the Hub answered ${res.status} ${res.statusText} for ${what} of ${repo}`.trimEnd(), { temporary: res.status >= 500 });
  }
}

/** The `rel="next"` URL of a Link header (the Hub's pagination), or undefined on the last page. */
/** A JSON answer's document. */
async function json(res: HttpResponse): Promise<unknown> {
  return JSON.parse((await readDocumentBody(res.body)).toString("utf8"));
}

function nextLink(header: string | undefined): string | undefined {
  for (const part of header?.split(",") ?? []) {
    const match = /<([^>]*)>\s*;\s*rel="?next"?/.exec(part);
    if (match) return match[1];
  }
  return undefined;
}
