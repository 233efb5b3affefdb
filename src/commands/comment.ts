// comment: the specs (or the lockfile) resolved and compared with the base branch's lockfile, as one PR comment
// that every run edits in place. A token that may not write (a fork's PR) only loses the comment, not the job.
import path from "node:path";
import pMap from "p-map";
import type { Context } from "./context.ts";
import { AssetError, UsageError } from "../base/errors.ts";
import type { LockEntry, Lockfile } from "../project/lockfile.ts";
import { readBaseLockfile } from "../github/comment-base-lockfile.ts";
import { isReadOnlyTokenError, type GitHubClient } from "../github/comment-client.ts";
import { COMMENT_MARKER, upsertComment } from "../github/comment.ts";
import { COMMENT_MAX_CHARS, renderCommentTable, type Change, type CommentRow, type TableOptions } from "../github/comment-table.ts";
import type { PullRequest } from "../github/pull-request.ts";
import { detectScheme } from "../registry/versioning.ts";
import { loadLock, parseSpecs, policyChange, resolveInStore, specsOrDefaults } from "./resolution.ts";
import { keySignerId } from "../trust/keys.ts";

const SPEC_CONCURRENCY = 4;
/** GitHub's cap on a job summary (per step). */
const SUMMARY_MAX_CHARS = 1024 * 1024;

export interface CommentOptions {
  specs: string[];
  pullRequest: PullRequest;
  github: GitHubClient;
  /** The login our comments are written by (see GITHUB_TOKEN_LOGIN). */
  author: string;
  /** The repository's root in this checkout: the lockfile's path relative to it is read at the base commit. */
  workspace: string;
  /** GITHUB_SERVER_URL: run links are made to it only. */
  serverUrl: string;
}

export interface CommentResult {
  rows: CommentRow[];
  /** The comment's URL; undefined when the token may not write. */
  url?: string;
  action: "created" | "updated" | "unchanged" | "not posted";
  /** The same table for the job summary (every row, within the summary's own cap), and what became of the comment. */
  summary: string;
}

export async function commentCommand(ctx: Context, options: CommentOptions): Promise<CommentResult> {
  const lock = await loadLock(ctx);
  const wanted = parseSpecs(specsOrDefaults(ctx, options.specs, lock));
  if (wanted.length === 0) throw new UsageError("nothing to comment on: give specs, list them under assets: in assetkit.yml, or lock them");
  // The signers shown are the lockfile's pins: they mean something only under the policy in force.
  const changed = policyChange(ctx, lock);
  if (changed) throw new AssetError(changed);
  const current = await pMap(wanted, ({ spec, parsed }) => resolveInStore(ctx, spec, parsed, lock?.assets[spec]), { concurrency: SPEC_CONCURRENCY });

  const repoPath = lockfileRepoPath(ctx.lockfilePath, options.workspace);
  const pr = options.pullRequest;
  const base = repoPath === undefined ? undefined : await baseLockfile(ctx, options.github, pr, repoPath);
  if (repoPath === undefined) ctx.reporter.warn(`${ctx.lockfilePath} is outside the repository ${options.workspace}: no comparison with the base branch`);

  const rows: CommentRow[] = current.map((r) => {
    const doc = r.meta!.document;
    const source = doc.assetkit?.source ?? {};
    const workflow = [source.workflow, source.repository].filter(Boolean).join(" in ");
    const by = [source.actor, workflow].filter(Boolean).join(" — ") || doc.assetkit?.created_by;
    const baseVersion = base?.assets[r.spec]?.version;
    const signers =
      lock?.trust !== undefined && r.locked ? signerCells(ctx, lock.assets[r.spec]!, base?.trust !== undefined ? base.assets[r.spec] : undefined) : {};
    return {
      ...signers,
      spec: r.spec,
      version: r.version,
      ...(baseVersion !== undefined ? { baseVersion } : {}),
      change: changeOf(baseVersion, r.version),
      ...(r.meta!.size !== undefined ? { size: r.meta!.size } : {}),
      digest: r.digest,
      ...(typeof doc.push_date === "string" ? { publishedAt: doc.push_date } : {}),
      ...(by ? { publishedBy: by } : {}),
      ...(source.run_url ? { runUrl: source.run_url } : {}),
    };
  });
  // Without specs given, the run covers the whole set: what the base branch locked and this PR no longer has
  // is removed. (Given specs name only what to look at.)
  if (options.specs.length === 0) {
    const kept = new Set([...wanted.map((w) => w.spec), ...Object.keys(lock?.assets ?? {})]);
    for (const [spec, entry] of Object.entries(base?.assets ?? {})) {
      if (!kept.has(spec)) rows.push({ spec, baseVersion: entry.version, change: "removed" });
    }
  }

  const table: Omit<TableOptions, "marker" | "maxChars"> = {
    base: repoPath === undefined ? undefined : { sha: pr.baseSha, lockfile: repoPath, found: base !== undefined },
    serverUrl: options.serverUrl,
  };
  const body = renderCommentTable(rows, { ...table, marker: COMMENT_MARKER, maxChars: COMMENT_MAX_CHARS });
  const summary = renderCommentTable(rows, { ...table, marker: "", maxChars: SUMMARY_MAX_CHARS });
  try {
    const posted = await upsertComment(options.github, pr, options.author, body);
    if (posted.action === "created" && posted.author.toLowerCase() !== options.author.toLowerCase()) {
      ctx.reporter.warn(
        `the comment was written by ${posted.author}, not ${options.author}: set the input comment-author to ${posted.author}, or the next run cannot find it and comments again`,
      );
    }
    ctx.reporter.info(`${posted.action} ${posted.url}`);
    return { rows, url: posted.url, action: posted.action, summary: `${summary}\nThe pull request comment: [${posted.action}](${posted.url}).\n` };
  } catch (err) {
    if (!isReadOnlyTokenError(err)) throw new AssetError(`cannot comment on ${pr.owner}/${pr.repo}#${pr.number}: ${(err as Error).message}`, { cause: err });
    ctx.reporter.warn(
      `cannot comment on ${pr.owner}/${pr.repo}#${pr.number}: the token may not write (a pull request from a fork, or no pull-requests: write permission); the table is in the job summary`,
    );
    return { rows, action: "not posted", summary: `${summary}\nNo pull request comment: the token may not write (a pull request from a fork?).\n` };
  }
}

/** The lockfile as a '/'-separated path inside the repository, or undefined when it lies outside. */
function lockfileRepoPath(lockfilePath: string, workspace: string): string | undefined {
  const relative = path.relative(path.resolve(workspace), lockfilePath);
  if (relative === "" || relative.startsWith("..") || path.isAbsolute(relative)) return undefined;
  return relative.split(path.sep).join("/");
}

/** The base commit's lockfile; one it cannot parse is reported and compared as absent, never failing the job. */
async function baseLockfile(ctx: Context, github: GitHubClient, pr: PullRequest, repoPath: string): Promise<Lockfile | undefined> {
  try {
    return await readBaseLockfile(github, pr, repoPath);
  } catch (err) {
    if (err instanceof UsageError) {
      ctx.reporter.warn(`${err.message}: compared as if the base branch had no lockfile`);
      return undefined;
    }
    throw new AssetError(`cannot read ${repoPath} at the base commit ${pr.baseSha}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Who signed a locked version, as its entry pins it (no store request): the policy's key file when it names the
 * key, else the short signer id; and, when the base branch's lockfile pinned another signer, that one.
 */
function signerCells(ctx: Context, entry: LockEntry, baseEntry: LockEntry | undefined): Pick<CommentRow, "signer" | "baseSigner"> {
  const name = (id: string | undefined): string => {
    if (id === undefined) return "unsigned";
    const key = ctx.config.trust?.rules.flatMap((r) => r.keys).find((k) => keySignerId(k.hint) === id);
    return key ? key.file : `${id.slice(0, "key:".length + 12)}…`;
  };
  const changed = baseEntry !== undefined && baseEntry.signer !== entry.signer;
  return { signer: name(entry.signer), ...(changed ? { baseSigner: name(baseEntry.signer) } : {}) };
}

/** Compared with the asset's version scheme; versions the scheme cannot read are only "changed". */
function changeOf(baseVersion: string | undefined, version: string): Change {
  if (baseVersion === undefined) return "added";
  if (baseVersion === version) return "unchanged";
  const scheme = detectScheme([version, baseVersion], "semver");
  if (!scheme.isVersion(version) || !scheme.isVersion(baseVersion)) return "changed";
  return scheme.compare(version, baseVersion) > 0 ? "upgraded" : "downgraded";
}
