// The PR comment's Markdown: one table row per spec, everything that comes from users or stores escaped, and
// the body kept under a size cap (GitHub refuses comments over 65,536 characters): a long table is collapsed
// in <details>, and rows that would not fit are left out with a note saying how many.
import { formatBytes } from "../base/units.ts";

export type Change = "added" | "removed" | "upgraded" | "downgraded" | "unchanged" | "changed";

export interface CommentRow {
  spec: string;
  /** Undefined for a removed spec. */
  version?: string;
  /** Undefined for an added spec. */
  baseVersion?: string;
  change: Change;
  size?: number;
  digest?: string | null;
  /** ISO-8601 time the version was published (its meta's push_date). */
  publishedAt?: string;
  /** Who published it: the actor, with the workflow and repository, or the tool, from the meta's provenance. */
  publishedBy?: string;
  /** The workflow run that published it. */
  runUrl?: string;
  /** Who signed it, as the lockfile pins it under a trust policy ("unsigned" when its rule allows that). */
  signer?: string;
  /** The signer the base branch's lockfile pinned, when it is another one. */
  baseSigner?: string;
}

export interface TableOptions {
  /** First line of the body (the hidden marker of the PR comment), or "" for a job summary. */
  marker: string;
  /** The whole body stays within this many UTF-16 code units (never fewer than GitHub's characters). */
  maxChars: number;
  /** The base commit compared against, and the lockfile read there; `found` is false when it had none. */
  base: { sha: string; lockfile: string; found: boolean } | undefined;
  /** Run links are made only to this GitHub server (from GITHUB_SERVER_URL). */
  serverUrl: string;
}

/** GitHub's cap on an issue or PR comment body. */
export const COMMENT_MAX_CHARS = 65_536;
/** Past this many rows the table is folded in <details>, so a PR page stays readable. */
const COLLAPSE_AFTER_ROWS = 10;
/** Longest text kept from one user-supplied field, before escaping. */
const MAX_FIELD_CHARS = 200;
const CHANGE_ORDER: Change[] = ["upgraded", "downgraded", "changed", "added", "removed", "unchanged"];

const COLUMNS = ["spec", "version", "base", "change", "size", "digest", "published", "by", "run"];
/** Shown when the lockfile pins signers (a trust policy): a column a project without one does not need. */
const SIGNER_COLUMN = "signed by";

function header(columns: readonly string[]): string {
  return `| ${columns.join(" | ")} |\n|${" --- |".repeat(columns.length)}`;
}

export function renderCommentTable(rows: CommentRow[], options: TableOptions): string {
  // Changes first: they are what a reviewer looks for, and what stays when rows must be left out.
  const ordered = [...rows].sort((a, b) => Number(a.change === "unchanged") - Number(b.change === "unchanged"));
  const collapsed = rows.length > COLLAPSE_AFTER_ROWS;
  const signers = rows.some((r) => r.signer !== undefined);
  const head = [
    options.marker,
    "### assetkit: assets of this pull request",
    "",
    `${counts(rows)} ${baseSentence(options.base)}`,
    "",
    ...(collapsed ? [`<details><summary>${rows.length} assets</summary>`, ""] : []),
    header(signers ? [...COLUMNS, SIGNER_COLUMN] : COLUMNS),
  ]
    .filter((line, i) => i > 0 || line !== "")
    .join("\n");
  const close = collapsed ? "\n\n</details>\n" : "\n";
  const note = (left: number) =>
    `\n_${left} more spec(s) not shown: this text is capped at ${options.maxChars} characters; the run's job summary lists them all._\n`;

  const budget = options.maxChars - head.length - close.length - note(rows.length).length;
  const lines: string[] = [];
  let used = 0;
  for (const row of ordered) {
    const line = `\n${tableRow(row, options.serverUrl, signers)}`;
    if (used + line.length > budget) break;
    lines.push(line);
    used += line.length;
  }
  const left = rows.length - lines.length;
  return head + lines.join("") + close + (left > 0 ? note(left) : "");
}

function tableRow(row: CommentRow, serverUrl: string, signers: boolean): string {
  const cells = [
    escapeMarkdown(row.spec),
    row.version === undefined ? "—" : escapeMarkdown(row.version),
    row.baseVersion === undefined ? "—" : escapeMarkdown(row.baseVersion),
    row.change === "unchanged" ? row.change : `**${row.change}**`,
    row.size === undefined ? "—" : formatBytes(row.size),
    shortDigest(row.digest),
    row.publishedAt === undefined ? "—" : publishedTime(row.publishedAt),
    row.publishedBy === undefined ? "—" : escapeMarkdown(row.publishedBy),
    row.runUrl === undefined ? "—" : runLink(row.runUrl, serverUrl),
    ...(signers ? [signerCell(row)] : []),
  ];
  return `| ${cells.join(" | ")} |`;
}

/** The signer, and a changed one flagged with the base branch's: a replaced key is what a reviewer must not miss. */
function signerCell(row: CommentRow): string {
  if (row.signer === undefined) return "—";
  const signer = escapeMarkdown(row.signer);
  return row.baseSigner === undefined ? signer : `${signer} (**signer changed**, was ${escapeMarkdown(row.baseSigner)})`;
}

function counts(rows: CommentRow[]): string {
  if (rows.length === 0) return "No assets.";
  const parts = CHANGE_ORDER.map((change) => [change, rows.filter((r) => r.change === change).length] as const)
    .filter(([, n]) => n > 0)
    .map(([change, n]) => `${n} ${change}`);
  return `**${parts.join(", ")}**`;
}

function baseSentence(base: TableOptions["base"]): string {
  if (!base) return "";
  const where = `\`${escapeMarkdown(base.sha.slice(0, 7))}\``;
  return base.found
    ? `against ${escapeMarkdown(base.lockfile)} at the base commit ${where}.`
    : `(the base commit ${where} has no ${escapeMarkdown(base.lockfile)}: every spec is new).`;
}

function shortDigest(digest: string | null | undefined): string {
  if (!digest) return "—";
  const hex = /^sha256:([0-9a-f]{64})$/.exec(digest)?.[1];
  return hex ? `\`${hex.slice(0, 12)}\`` : escapeMarkdown(digest);
}

function publishedTime(iso: string): string {
  const time = new Date(iso);
  return Number.isNaN(time.getTime()) ? escapeMarkdown(iso) : `${time.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

/**
 * A link only to a run on this GitHub server: a meta is written by whoever can write the store, and a link
 * to elsewhere labelled "run" would be a trap. Other URLs are shown as (escaped, unlinked) text.
 */
function runLink(raw: string, serverUrl: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return escapeMarkdown(raw);
  }
  if (url.origin !== new URL(serverUrl).origin) return escapeMarkdown(raw);
  // Characters that would end the link destination or the table cell, percent-encoded.
  return `[run](${url.href.replace(/[()|\\[\]<> ]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`)})`;
}

/**
 * Text from users or stores, made inert in GitHub Markdown: clipped, on one line (a newline would end the table
 * row), Markdown and HTML punctuation as numeric entities (entities, not backslashes or code spans, so a pipe
 * stays inside its cell), the ':' of '://' too (no autolinks), and a zero-width space after '@' (no @mentions: GitHub finds
 * those in the rendered text, where entities are already decoded).
 */
export function escapeMarkdown(text: string): string {
  const clipped = text.length > MAX_FIELD_CHARS ? `${text.slice(0, MAX_FIELD_CHARS)}…` : text;
  return clipped.replace(/[\r\n\t]+/g, " ").replace(/[\\`*_{}[\]()#+!|<>&~@]|:(?=\/\/)/g, (c) => (c === "@" ? "@&#8203;" : `&#${c.charCodeAt(0)};`));
}
