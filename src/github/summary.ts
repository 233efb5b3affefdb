// Job-summary rendering, in one place: commands return data, the Action turns it into Markdown here (the job
// summary and the step's `markdown` output), and appends it to the job summary.
import * as core from "@actions/core";
import { appendFile } from "node:fs/promises";
import { formatBytes } from "../base/units.ts";
import type { HistoryResult } from "../registry/channels.ts";
import type { ResolvedAsset } from "../registry/registry.ts";
import { escapeMarkdown } from "./comment-table.ts";

/**
 * Appends Markdown to the file GITHUB_STEP_SUMMARY names (created when missing, as in a local run: the runner
 * creates it). A summary that cannot be written is one warning: it neither fails the step nor hides its error.
 */
export async function appendJobSummary(markdown: string): Promise<void> {
  const file = process.env.GITHUB_STEP_SUMMARY;
  if (!file) return;
  try {
    await appendFile(file, markdown);
  } catch (err) {
    core.warning(`job summary not written: ${(err as Error).message}`);
  }
}

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

/** A channel history as tables, one per channel, newest move first. */
export function historyMarkdown(r: HistoryResult): string {
  const parts = [`### assetkit history\n\nStore: ${escapeMarkdown(r.store)}\n`];
  for (const c of r.channels) {
    const table = [
      `#### ${escapeMarkdown(`${r.name}:${c.channel}`)} → ${escapeMarkdown(c.version)}`,
      "",
      "| version | previous | when | by | run |",
      "| --- | --- | --- | --- | --- |",
    ];
    for (const m of c.history) {
      const version = `${escapeMarkdown(m.version)}${m.rollback ? " (rollback)" : ""}`;
      const run = m.run_url ? `[run](${encodeURI(m.run_url)})` : "—";
      table.push(`| ${version} | ${escapeMarkdown(m.previous ?? "—")} | ${escapeMarkdown(m.at)} | ${escapeMarkdown(m.by)} | ${run} |`);
    }
    if (c.dropped) table.push("", `${c.dropped} older move(s) no longer kept.`);
    parts.push(table.join("\n") + "\n");
  }
  return parts.join("\n");
}
