// Job-summary rendering, in one place: commands return data, the Action turns it into Markdown here (the job
// summary and the step's `markdown` output).
import type { ResolvedAsset } from "../commands/resolve.ts";
import { formatBytes } from "../progress.ts";
import { escapeMarkdown } from "./comment-table.ts";

/** One line of a command's table. */
export type Row = Partial<ResolvedAsset> & { spec: string; path?: string; note?: string; size?: number };

/** Markdown table: spec, version, digest, size, path. Everything from users is escaped (entities, not code spans, so pipes stay inside their cell). */
export function summaryMarkdown(command: string, store: string, rows: Row[]): string {
  const head = `### assetkit ${escapeMarkdown(command)}\n\nStore: ${escapeMarkdown(store)}\n\n`;
  const table = ["| spec | version | digest | size | path |", "| --- | --- | --- | --- | --- |"];
  for (const r of rows) {
    const digest = r.digest ? `\`${escapeMarkdown(r.digest.slice(0, 19))}…\`` : "—";
    const size = r.size !== undefined ? formatBytes(r.size) : "—";
    const path = r.path ?? r.note;
    table.push(`| ${escapeMarkdown(r.spec)} | ${escapeMarkdown(r.version ?? "—")} | ${digest} | ${size} | ${path ? escapeMarkdown(path) : "—"} |`);
  }
  return head + table.join("\n") + "\n";
}

