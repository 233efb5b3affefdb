// The Action face: INPUT_* → command → GITHUB_OUTPUT and a job summary. Translates only.
import * as core from "@actions/core";
import path from "node:path";
import { commentCommand } from "../commands/comment.ts";
import { fetchCommand } from "../commands/fetch.ts";
import { gcCommand, unlistedNote } from "../commands/gc.ts";
import { historyCommand } from "../commands/history.ts";
import { lockCommand } from "../commands/lock.ts";
import { promoteCommand } from "../commands/promote.ts";
import { importCommand } from "../commands/import.ts";
import { pruneCommand, pruneLines } from "../commands/prune.ts";
import { publishCommand, withoutVPrefix, type PublishOptions, type PublishResult } from "../commands/publish.ts";
import { resolveCommand } from "../commands/resolve.ts";
import type { ResolvedAsset } from "../registry/registry.ts";
import { verifyCommand } from "../commands/verify.ts";
import { createContext, type Context } from "../commands/context.ts";
import { ACTION_COMMANDS, type ActionCommand, type ActionInput, type ActionOutput } from "./action-io.ts";
import { UsageError } from "../base/errors.ts";
import type { CrossRunCache } from "../local/cross-run-cache.ts";
import { actionsCache, savesOnBranch } from "../github/cache.ts";
import { GITHUB_TOKEN_LOGIN } from "../github/comment.ts";
import { lockedOnBranches } from "../github/branch-lockfiles.ts";
import { createGitHubClient } from "../github/comment-client.ts";
import { sendDeployEvent, type DeployEvent } from "../github/dispatch.ts";
import { escapeMarkdown } from "../github/comment-table.ts";
import { appendJobSummary, historyMarkdown, summaryMarkdown, type Row } from "../github/summary.ts";
import { pullRequestOfRun, repositoryOfRun } from "../github/pull-request.ts";
import { formatBytes } from "../base/units.ts";
import { createProgress } from "./progress.ts";
import { scrub, uriSecrets } from "../store/redact.ts";
import { parseSize } from "../base/units.ts";

/** GitHub shows at most 10 annotations of a type per step: later warnings go to the log only. */
const MAX_WARNING_ANNOTATIONS = 10;

function input(name: ActionInput): string | undefined {
  return core.getInput(name) || undefined;
}

/** true/True/TRUE or false/False/FALSE (YAML 1.2 core schema, as core.getBooleanInput reads it); unset: `fallback`. */
function booleanInput(name: ActionInput, fallback: boolean): boolean {
  if (core.getInput(name) === "") return fallback;
  try {
    return core.getBooleanInput(name);
  } catch {
    throw new UsageError(`input ${name} must be true or false, not ${JSON.stringify(core.getInput(name))}`);
  }
}

/** The only way to set an output, so that each one is in ACTION_OUTPUTS (and so in action.yml and the README). */
function setOutput(name: ActionOutput, value: string): void {
  core.setOutput(name, value);
}

function lines(name: ActionInput): string[] {
  return core
    .getMultilineInput(name)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

export async function runAction(): Promise<void> {
  let command = "";
  let warnings = 0;
  const warn = (message: string) => (++warnings <= MAX_WARNING_ANNOTATIONS ? core.warning(message) : core.info(`warning: ${message}`));
  try {
    command = core.getInput("command" satisfies ActionInput, { required: true }).trim();
    if (!(ACTION_COMMANDS as readonly string[]).includes(command)) {
      throw new UsageError(`unknown command ${JSON.stringify(command)}: use one of ${ACTION_COMMANDS.join(", ")}`);
    }
    // The runner masks these in the log, whatever prints them.
    for (const secret of uriSecrets(input("store") ?? process.env.ASSETKIT_STORE ?? "")) core.setSecret(secret);
    const progress = createProgress(process.stdout, { live: false });
    const ctx = await createContext(
      {
        store: input("store"),
        config: input("config"),
        lockfile: input("lockfile"),
        assetsDir: input("assets-dir"),
        versioning: input("versioning"),
        layout: input("layout"),
        offline: booleanInput("offline", false),
        githubToken: input("github-token"),
      },
      { info: (m) => core.info(m), warn, progress: (done, total, label, files) => progress.update(done, total, label, files) },
    );
    const rows = await run(command as ActionCommand, ctx);
    if (typeof rows === "object" && "store" in rows) await writeSummary(command, rows.store, rows.rows);
    else await writeSummary(command, ctx.registry.url, rows);
  } catch (err) {
    // One error annotation (setFailed), and the same line in the job summary.
    const message = scrub((err as Error).message);
    core.setFailed(message);
    await appendJobSummary(`### assetkit ${escapeMarkdown(command)} failed\n\n${escapeMarkdown(message)}\n`);
  }
}

/** The rows of the summary table (with the store they are in, when not the context's), or (comment) the summary's whole Markdown. */
async function run(command: ActionCommand, ctx: Context): Promise<Row[] | string | { rows: Row[]; store: string }> {
  switch (command) {
    case "publish": {
      const name = input("name");
      const path = input("path");
      if (!name || !path) throw new UsageError("command publish needs the inputs name and path");
      const r = await publishCommand(ctx, {
        path,
        target: name,
        bump: input("bump"),
        version: input("version"),
        ifChanged: booleanInput("if-changed", false),
        metadata: lines("metadata"),
        ...signingInputs(),
      });
      core.info(r.published ? `published ${r.spec} (${r.digest})` : `unchanged: ${r.spec} already holds this content (${r.digest})`);
      setPublishOutputs(r);
      if (r.published) {
        await notify("assetkit-published", { name: r.name, version: r.version, digest: r.digest, channel: null, previous: null, store: r.store });
      }
      return [{ spec: r.spec, version: r.version, digest: r.digest, size: r.size, note: r.published ? "published" : "unchanged" }];
    }
    case "import": {
      const name = input("name");
      const source = input("source");
      if (!name || !source) throw new UsageError("command import needs the inputs name and source");
      const r = await importCommand(ctx, {
        source,
        target: name,
        bump: input("bump"),
        version: input("version"),
        ifChanged: booleanInput("if-changed", false),
        metadata: lines("metadata"),
        ...signingInputs(),
        include: lines("include"),
        exclude: lines("exclude"),
        unpack: booleanInput("unpack", true),
        maxUnpackedSize: input("max-unpacked-size"),
        maxEntries: input("max-entries"),
      });
      core.info(r.published ? `imported ${r.source} as ${r.spec} (${r.digest})` : `unchanged: ${r.spec} already holds ${r.source} (${r.digest})`);
      setPublishOutputs(r);
      return [{ spec: r.spec, version: r.version, digest: r.digest, size: r.size, note: `${r.published ? "imported" : "unchanged"} from ${r.source}` }];
    }
    case "fetch": {
      const crossRunCache = cacheOfRun();
      const r = await fetchCommand({ ...ctx, crossRunCache }, lines("specs"), { frozen: booleanInput("frozen", false) });
      setResolvedOutputs(r.resolved);
      setOutput("paths", r.resolved.map((a) => a.path).join("\n"));
      setOutput("path", r.resolved[0]?.path ?? "");
      setOutput("cache-hit", String(r.resolved.every((a) => a.local || a.cached)));
      return r.resolved.map((a) => ({
        ...a,
        note: a.local ? "local copy" : a.cached ? "from the cache" : a.verified ? "downloaded" : "downloaded (unverified)",
      }));
    }
    case "resolve": {
      const r = await resolveCommand(ctx, lines("specs"), { frozen: booleanInput("frozen", false) });
      setResolvedOutputs(r.resolved);
      return r.resolved;
    }
    case "lock": {
      const r = await lockCommand(ctx, lines("specs"), { update: booleanInput("update", false) });
      setResolvedOutputs(r.resolved);
      setOutput("lockfile", r.lockfile);
      return r.resolved;
    }
    case "promote": {
      const channel = input("channel");
      const to = input("to");
      const rollback = booleanInput("rollback", false);
      const version = input("version");
      const named = input("name") && (version || rollback) ? `${input("name")}:${rollback ? channel : withoutVPrefix(version!)}` : undefined;
      const spec = lines("specs")[0] ?? named;
      if ((!channel && !to) || !spec) throw new UsageError("command promote needs the input channel (or to), and specs (one spec) or name and version");
      const r = await promoteCommand(ctx, spec, { channel, to, rollback, allowUnverified: booleanInput("allow-unverified", false) });
      setOutput("version", r.version);
      setOutput("spec", r.spec);
      setOutput("digest", r.digest ?? "");
      if (r.copied !== undefined) setOutput("copied", String(r.copied));
      if (r.changed || r.copied) {
        await notify("assetkit-promoted", { name: r.name, version: r.version, digest: r.digest, channel: r.alias, previous: r.previous, store: r.store });
      }
      const moved =
        r.alias === null
          ? ""
          : r.changed
            ? r.previous
              ? `${r.rollback ? "rolled back" : "promoted"} (was ${r.previous})`
              : "promoted (new channel)"
            : "unchanged";
      const copied = r.copied === undefined ? "" : r.copied ? `copied into ${r.store}` : `already in ${r.store}`;
      return { store: r.store, rows: [{ spec: r.spec, version: r.version, digest: r.digest, note: [copied, moved].filter(Boolean).join("; ") }] };
    }
    case "verify": {
      const r = await verifyCommand(ctx, lines("specs"));
      const rows = r.verified.map((v) => ({
        spec: v.spec,
        version: v.version ?? undefined,
        digest: v.digest,
        note: [v.status, `local ${v.local}`, v.newer ? `newer: ${v.newer}` : "", v.detail ?? ""].filter(Boolean).join("; "),
      }));
      if (r.failed) {
        await writeSummary(command, ctx.registry.url, rows);
        throw r.failed;
      }
      return rows;
    }
    case "gc": {
      const r = await gcCommand(ctx, {
        olderThan: input("older-than"),
        dryRun: booleanInput("dry-run", false),
        removeUnlisted: booleanInput("remove-unlisted", false),
      });
      const lines = [
        ...r.plan,
        ...r.unlisted.map(unlistedNote),
        `${r.dryRun ? "would remove" : "removed"} ${r.removed.versions} unfinished version(s), ${r.removed.claims} claim(s), ${r.removed.uploads} incomplete upload(s), ${formatBytes(r.removed.bytes + r.removed.uploadBytes)}`,
      ];
      for (const line of [...lines, ...(r.note ? [r.note] : [])]) core.info(line);
      setOutput("removed", JSON.stringify(r.removed));
      return `### assetkit gc${r.dryRun ? " (dry run)" : ""}\n\nStore: ${escapeMarkdown(r.store)}\n\n${lines.map((l) => `- ${escapeMarkdown(l)}`).join("\n")}\n`;
    }
    case "prune": {
      const token = input("github-token");
      if (!token) throw new UsageError("command prune needs the input github-token, to read the lockfile of every branch");
      const repo = repositoryOfRun();
      const workspace = process.env.GITHUB_WORKSPACE ?? process.cwd();
      const repoPath = path.relative(workspace, ctx.lockfilePath).split(path.sep).join("/");
      if (repoPath.startsWith("..") || path.isAbsolute(repoPath))
        throw new UsageError(`the lockfile ${ctx.lockfilePath} is outside the repository ${workspace}`);
      const branches = await lockedOnBranches(await createGitHubClient(token, (m) => core.info(m)), repo, repoPath);
      core.info(`read ${repoPath} on ${branches.branches} branch(es) of ${repo.owner}/${repo.repo}`);
      const r = await pruneCommand(ctx, {
        keepLast: input("keep-last"),
        perSeries: booleanInput("per-series", false),
        keepWithin: input("keep-within"),
        keepHistory: input("keep-history"),
        keepLocked: lines("keep-locked"),
        locked: branches.locked,
        apply: !booleanInput("dry-run", true),
      });
      const text = pruneLines(r, "set dry-run: false to delete");
      for (const line of text) core.info(line);
      setOutput("removed", JSON.stringify(r.removed));
      return `### assetkit prune${r.dryRun ? " (dry run)" : ""}\n\nStore: ${escapeMarkdown(r.store)}\n\n${text.map((l) => `- ${escapeMarkdown(l.replaceAll("\t", " "))}`).join("\n")}\n`;
    }
    case "history": {
      const target = input("name") ? `${input("name")}${input("channel") ? `:${input("channel")}` : ""}` : lines("specs")[0];
      if (!target) throw new UsageError("command history needs the input name (and channel for one channel)");
      const r = await historyCommand(ctx, target);
      setOutput("history", JSON.stringify(r));
      return historyMarkdown(r);
    }
    case "comment": {
      const pr = await pullRequestOfRun();
      if ("event" in pr) {
        const message = `no pull request comment: this run is for the ${pr.event} event, not pull_request`;
        core.info(message);
        setOutput("comment-url", "");
        return `### assetkit comment\n\n${escapeMarkdown(message)}\n`;
      }
      const token = input("github-token");
      if (!token) throw new UsageError("command comment needs the input github-token (its default is the workflow's token)");
      const r = await commentCommand(ctx, {
        specs: lines("specs"),
        pullRequest: pr,
        github: await createGitHubClient(token, (m) => core.info(m)),
        author: input("comment-author") ?? GITHUB_TOKEN_LOGIN,
        workspace: process.env.GITHUB_WORKSPACE ?? process.cwd(),
        serverUrl: process.env.GITHUB_SERVER_URL ?? "https://github.com",
      });
      setOutput("comment-url", r.url ?? "");
      return r.summary;
    }
  }
}

function setPublishOutputs(r: PublishResult): void {
  setOutput("version", r.version);
  setOutput("spec", r.spec);
  setOutput("digest", r.digest);
  setOutput("published", String(r.published));
}

/** The Actions cache as the inputs cache (true | false | restore-only), cache-save-branches and cache-max-size allow. */
function cacheOfRun(): CrossRunCache | undefined {
  const mode = (input("cache") ?? "true").trim().toLowerCase();
  if (["false", "no", "0"].includes(mode)) return undefined;
  if (!["true", "yes", "1", "restore-only"].includes(mode))
    throw new UsageError(`input cache must be true, false or restore-only, not ${JSON.stringify(mode)}`);
  const branches = lines("cache-save-branches");
  const branch = process.env.GITHUB_REF_NAME ?? "";
  const maxSize = input("cache-max-size");
  const noSave =
    mode === "restore-only"
      ? "cache is restore-only"
      : savesOnBranch(branches, branch)
        ? undefined
        : `branch ${JSON.stringify(branch)} is not in cache-save-branches (${branches.join(", ")})`;
  return actionsCache({ ...(noSave ? { noSave } : {}), ...(maxSize ? { maxSize: parseSize(maxSize, "cache-max-size") } : {}) });
}

/** With `notify: true`, a repository_dispatch event for a deploy workflow; a refusal is a warning. */
async function notify(eventType: DeployEvent["event_type"], payload: DeployEvent["client_payload"]): Promise<void> {
  if (!booleanInput("notify", false)) return;
  const token = input("github-token");
  if (!token) {
    core.warning(`notify: no github-token, so no ${eventType} event`);
    return;
  }
  if (await sendDeployEvent(token, process.env.GITHUB_REPOSITORY ?? "", { event_type: eventType, client_payload: payload }, (m) => core.warning(m))) {
    core.info(`sent ${eventType} to ${process.env.GITHUB_REPOSITORY}`);
  }
}

/**
 * How publish and import sign (docs/trust.md, section 5): `sign-key`, the PEM itself from a secret (masked in the
 * log, like a store URI's credentials). Keyless signing adds its input here.
 */
/** The signing inputs of publish and import: a key (`sign-key`, masked line by line), or keyless (`sign`), and `attest`. */
function signingInputs(): Pick<PublishOptions, "signKeyPem" | "sign" | "sigstore" | "attest"> {
  const pem = input("sign-key");
  if (pem !== undefined) for (const line of pem.split(/\r?\n/)) if (line.trim() && !line.startsWith("-----")) core.setSecret(line.trim());
  return {
    ...(pem !== undefined ? { signKeyPem: pem } : {}),
    sign: booleanInput("sign", false),
    sigstore: input("sigstore"),
    attest: booleanInput("attest", false),
  };
}

function setResolvedOutputs(resolved: (ResolvedAsset & { path?: string; signer?: string | null })[]): void {
  const map: Record<string, { name: string; version: string; digest: string | null; path?: string; signer?: string | null }> = {};
  for (const a of resolved)
    map[a.spec] = {
      name: a.name,
      version: a.version,
      digest: a.digest,
      ...(a.path ? { path: a.path } : {}),
      ...(a.signer !== undefined ? { signer: a.signer } : {}),
    };
  setOutput("resolved", JSON.stringify(map));
}

/** The step's Markdown: the `markdown` output (for gh release create --notes) and the job summary. */
async function writeSummary(command: string, store: string, rows: Row[] | string): Promise<void> {
  const markdown = typeof rows === "string" ? rows : summaryMarkdown(command, store, rows);
  setOutput("markdown", markdown);
  await appendJobSummary(markdown);
}
