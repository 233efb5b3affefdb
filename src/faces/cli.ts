// The CLI face: argv → command → text or JSON. Translates only; the commands do the work.
import { Command, CommanderError, Option } from "commander";
import { fetchCommand } from "../commands/fetch.ts";
import { DEFAULT_GC_GRACE, gcCommand, unlistedNote } from "../commands/gc.ts";
import { DEFAULT_KEEP_HISTORY, pruneCommand, pruneLines } from "../commands/prune.ts";
import { historyCommand } from "../commands/history.ts";
import { listCommand } from "../commands/list.ts";
import { lockCommand } from "../commands/lock.ts";
import { promoteCommand } from "../commands/promote.ts";
import { pruneLocalCommand } from "../commands/prune-local.ts";
import { publishCommand, type PublishResult } from "../commands/publish.ts";
import { resolveCommand } from "../commands/resolve.ts";
import { showCommand } from "../commands/show.ts";
import type { OciStorage } from "../registry/oci/oci-layout.ts";
import { signatureLine } from "../trust/signature-report.ts";
import { syncCommand } from "../commands/sync.ts";
import { verifyCommand } from "../commands/verify.ts";
import { createContext, type Context, type GlobalOptions } from "../commands/context.ts";
import { AssetError, UsageError, exitCodeOf } from "../base/errors.ts";
import { formatBytes } from "../base/units.ts";
import { createProgress } from "./progress.ts";
import { parseDuration, parseWholeNumber } from "../base/units.ts";
import { parseSignalTarget } from "../local/serving/hooks.ts";
import { describeHashing } from "../hashing/part-hash.ts";
import { scrub } from "../store/redact.ts";
import { VERSION } from "../base/version.ts";

interface CliOptions extends GlobalOptions {
  json?: boolean;
  quiet?: boolean;
  debug?: boolean;
}

/** What a command prints; `failure`, when set, is reported after the output and sets the exit status. */
type Action = (ctx: Context, opts: CliOptions, command: Command) => Promise<{ json: unknown; text: string[]; failure?: Error }>;

export async function runCli(argv: string[]): Promise<number> {
  let debug = argv.includes("--debug");
  const run =
    (action: Action) =>
    async (...args: unknown[]) => {
      const command = args[args.length - 1] as Command;
      const opts = command.optsWithGlobals<CliOptions>();
      debug = opts.debug ?? false;
      const progress = createProgress(process.stderr, { live: process.stderr.isTTY === true });
      const ctx = await createContext(opts, {
        info: (m) => {
          if (opts.quiet) return;
          progress.clear();
          process.stderr.write(`${m}\n`);
        },
        warn: (m) => {
          progress.clear();
          process.stderr.write(`warning: ${m}\n`);
        },
        progress: opts.quiet ? undefined : (done, total, label, files) => progress.update(done, total, label, files),
      });
      if (debug) process.stderr.write(`debug: ${describeHashing()}\n`);
      const out = await action(ctx, opts, command);
      progress.clear();
      if (opts.json) process.stdout.write(JSON.stringify(out.json, null, 2) + "\n");
      else if (out.text.length > 0) process.stdout.write(out.text.join("\n") + "\n");
      if (out.failure) throw out.failure;
    };

  // Global options are declared on every subcommand too (positional options), so that `publish --version V`
  // is publish's own flag and not the program's --version, while `assetkit resolve x --json` still works.
  const program = withGlobalOptions(new Command("assetkit"))
    .description("Publish, pin, fetch and promote immutable, versioned ML assets in an object store.")
    .version(VERSION, "-V, --version")
    .enablePositionalOptions()
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();

  const publish = program
    .command("publish")
    .description("publish a file or folder as the next version of an asset")
    .argument("<path>", "the file or folder to publish")
    .argument("<name>", "asset name, or name:series to publish the next version inside a series (name:1 → 1.x)");
  withPublishFlags(publish, "publish nothing when the latest version already holds the same content").action(
    run(async (ctx, opts, command) => {
      const [path, target] = command.args as [string, string];
      const local = command.opts<{
        bump?: string;
        version?: string;
        ifChanged?: boolean;
        meta?: string[];
        sign?: boolean;
        attest?: boolean;
        signKey?: string;
      }>();
      return publishedOutput(await publishCommand(ctx, { path, target, ...local, metadata: local.meta ?? [] }));
    }),
  );

  const importer = program
    .command("import")
    .description("publish a model from where it already lives (a bucket path, an HTTP file or archive, the Hugging Face Hub) as the next version of an asset")
    .argument(
      "<source>",
      "s3://bucket/path[/], gs://…, az://… or azure://…, https://<account>.blob.core.windows.net/…, https://…/model.tar.gz, hf://org/repo[@revision][/sub/path], hf://datasets/org/repo, file:// or a path",
    )
    .argument("<name>", "asset name, or name:series to publish the next version inside a series (name:1 → 1.x)");
  withPublishFlags(
    importer,
    "publish nothing when the source is unchanged since the latest version (same ETags or Hub commit: nothing downloaded) or holds the same content",
  )
    .option("--include <glob>", "import only paths matching this glob (repeatable; prefixes, archives and Hub repos)", repeatable)
    .option("--exclude <glob>", "skip paths matching this glob (repeatable)", repeatable)
    .option("--no-unpack", "publish a .tar, .tar.gz/.tgz or .zip as the file it is (default: unpack it into a folder asset)")
    .option("--max-unpacked-size <size>", "archives: refuse one that unpacks to more than this (default 50GiB)")
    .option("--max-entries <count>", "archives: refuse one with more entries than this (default 100000)")
    .action(
      run(async (ctx, _opts, command) => {
        const [source, target] = command.args as [string, string];
        const local = command.opts<{
          bump?: string;
          version?: string;
          ifChanged?: boolean;
          meta?: string[];
          sign?: boolean;
          attest?: boolean;
          signKey?: string;
          include?: string[];
          exclude?: string[];
          maxUnpackedSize?: string;
          maxEntries?: string;
          unpack?: boolean;
        }>();
        // Loaded here: its archive, glob and Hub code is for this command only, and costs every other one's start-up.
        const { importCommand } = await import("../commands/import.ts");
        const r = await importCommand(ctx, { source, target, ...local, metadata: local.meta ?? [] });
        return publishedOutput(r, `\tfrom ${r.source}`);
      }),
    );

  program
    .command("resolve")
    .description("print the exact version each spec resolves to (no download)")
    .argument("[specs...]", "specs like name, name:1, name:1.2.3, name:^1.2, name:production (default: assetkit.yml assets, or the lockfile's)")
    .action(
      run(async (ctx, _opts, command) => {
        const r = await resolveCommand(ctx, command.args);
        const json = { resolved: r.resolved.map(({ spec, name, version, digest }) => ({ spec, name, version, digest })) };
        return { json, text: r.resolved.map((a) => `${a.spec} -> ${a.version}\t${a.digest ?? "(no digest)"}`) };
      }),
    );

  program
    .command("fetch")
    .description("download specs into the assets dir, verified (a warm, pinned asset costs no store request)")
    .argument("[specs...]", "specs (default: assetkit.yml assets, or the lockfile's)")
    .option("--assets-dir <dir>", "local assets dir (default: $ASSETKIT_ASSETS_DIR, $MODELKIT_ASSETS_DIR, assetkit.yml, .assetkit/assets)")
    .option("--frozen", "fail unless every spec is in the lockfile with the digest the store has")
    .option("--in-place", "local or mounted store: verify the version where it lies and print the store's own path (nothing copied)")
    .action(
      run(async (ctx, _opts, command) => {
        const r = await fetchCommand(ctx, command.args, command.opts<{ frozen?: boolean; inPlace?: boolean }>());
        const json = { resolved: r.resolved.map(({ spec, name, version, digest, path, signer }) => ({ spec, name, version, digest, path, signer })) };
        return { json, text: r.resolved.map((a) => `${a.spec} -> ${a.version}\t${a.path}`) };
      }),
    );

  program
    .command("list")
    .description("list the assets of the store, or the versions of one (newest first)")
    .argument("[name]", "asset name")
    .option("--limit <n>", "at most N entries (versions of the named asset, else assets); the JSON's next is the --after of the next page")
    .option("--after <entry>", "start after this version (older ones follow), or without a name after this asset")
    .action(
      run(async (ctx, _opts, command) => {
        const { limit, after } = command.opts<{ limit?: string; after?: string }>();
        const r = await listCommand(ctx, command.args[0], {
          ...(limit !== undefined ? { limit: parseWholeNumber(limit, "--limit", 1) } : {}),
          ...(after !== undefined ? { after } : {}),
        });
        if (r.next) ctx.reporter.info(`more follow: add --after ${r.next}`);
        return { json: r, text: r.assets.map((a) => `${a.name}\t${a.versions.join(" ")}`) };
      }),
    );

  program
    .command("show")
    .description("print the meta of the version a spec resolves to: files, digest, provenance, and who signed it")
    .argument("<spec>", "spec")
    .action(
      run(async (ctx, _opts, command) => {
        const r = await showCommand(ctx, command.args[0]!);
        const oci = r.oci ? ociLines(r.oci) : [];
        return {
          json: { ...r.meta, signature: r.signature, ...(r.oci ? { oci: r.oci } : {}) },
          text: [`${r.name}:${r.version}`, signatureLine(r.signature), ...oci, JSON.stringify(r.meta, null, 2)],
        };
      }),
    );

  program
    .command("lock")
    .description("resolve specs into the lockfile (default: the assets of assetkit.yml)")
    .argument("[specs...]", "specs to add to the lockfile")
    .option("--update", "re-resolve specs that are already locked")
    .action(
      run(async (ctx, _opts, command) => {
        const r = await lockCommand(ctx, command.args, command.opts<{ update?: boolean }>());
        return { json: r, text: r.resolved.map((a) => `${a.spec} -> ${a.version}\t${a.digest ?? "(no digest)"}`) };
      }),
    );

  program
    .command("promote")
    .description("point a channel (an alias such as production) at the version a spec resolves to, after copying it to another store with --to")
    .argument("<spec>", "the version to promote: name:1.4.2, or any spec (name:1 promotes the latest 1.x); with --rollback, name:channel")
    .argument("[alias]", "the channel: lowercase letters, digits and '-', starting with a letter (production, staging)")
    .option("--channel <alias>", "the channel (instead of the second argument)")
    .option("--to <store-uri>", "copy the version into this store first (same version, files and digest) and move the channel there")
    .option("--rollback", "move the channel back to the version it pointed at before (spec: name:channel)")
    .option("--allow-unverified", "with --to: copy a version whose meta has no checksums (written by modelkit)")
    .addOption(layoutOption())
    .action(
      run(async (ctx, _opts, command) => {
        const [spec, alias] = command.args as [string, string | undefined];
        const local = command.opts<{ channel?: string; to?: string; rollback?: boolean; allowUnverified?: boolean }>();
        if (alias && local.channel && alias !== local.channel) throw new UsageError(`two channels given: ${alias} and --channel ${local.channel}`);
        const r = await promoteCommand(ctx, spec, { ...local, channel: alias ?? local.channel });
        const copied = r.copied === undefined ? "" : `\t${r.copied ? "copied" : "already there"} from ${r.from}`;
        return {
          json: r,
          text: [
            `${r.spec} -> ${r.version}\t${r.alias === null ? "no channel" : r.changed ? (r.previous ? `was ${r.previous}` : "new") : "unchanged"}${copied}`,
          ],
        };
      }),
    );

  program
    .command("history")
    .description("print how a channel moved, newest first (every channel of the asset without :channel)")
    .argument("<name>", "name or name:channel")
    .action(
      run(async (ctx, _opts, command) => {
        const r = await historyCommand(ctx, command.args[0]!);
        const text = r.channels.flatMap((c) =>
          c.history.map(
            (m) =>
              `${r.name}:${c.channel}\t${m.version}\t${m.previous ? `was ${m.previous}` : "new"}${m.rollback ? " (rollback)" : ""}\t${m.at}\t${m.by}${m.run_url ? `\t${m.run_url}` : ""}`,
          ),
        );
        return { json: r, text };
      }),
    );

  program
    .command("verify")
    .description("check reproducibility: every spec locked, the store's content equal to the lock, local copies intact")
    .argument("[specs...]", "specs (default: assetkit.yml assets, or the lockfile's)")
    .option("--assets-dir <dir>", "local assets dir whose copies are re-hashed (default as for fetch)")
    .action(
      run(async (ctx, _opts, command) => {
        const r = await verifyCommand(ctx, command.args);
        const text = r.verified.map(
          (v) => `${v.spec} -> ${v.version ?? "-"}\t${v.status}\tlocal ${v.local}${v.newer ? `\tnewer: ${v.newer}` : ""}${v.detail ? `\t${v.detail}` : ""}`,
        );
        return { json: { verified: r.verified }, text, failure: r.failed };
      }),
    );

  program
    .command("gc")
    .description("remove what failed publishes left behind: claims, data of versions without a meta, incomplete S3 multipart uploads")
    .option(
      "--older-than <duration>",
      "grace period: only leftovers older than this (30m, 24h, 7d) are removed, so running publishes are safe",
      DEFAULT_GC_GRACE,
    )
    .option("--dry-run", "print the plan, delete nothing")
    .option("--remove-unlisted", "also remove complete versions (with a meta) that .versions does not list; without it they are reported and kept")
    .action(
      run(async (ctx, _opts, command) => {
        const r = await gcCommand(ctx, command.opts<{ olderThan?: string; dryRun?: boolean; removeUnlisted?: boolean }>());
        const { removed: t } = r;
        const verb = r.dryRun ? "would remove" : "removed";
        const text = [
          ...r.plan.map((line) => (r.dryRun ? `plan: ${line}` : line)),
          ...r.recent.map((v) => `kept ${v}: written within ${r.olderThan} (a publish may be running)`),
          ...r.unlisted.map(unlistedNote),
          `${verb} ${t.versions} unfinished version(s) (${t.objects} object(s), ${formatBytes(t.bytes)}), ${t.claims} claim(s), ${t.uploads} incomplete upload(s) (${formatBytes(t.uploadBytes)})` +
            (t.blobs ? `, ${t.blobs} unreferenced blob(s) (${formatBytes(t.blobBytes)})` : ""),
          ...(r.note ? [`note: ${r.note}`] : []),
        ];
        return { json: r, text };
      }),
    );

  program
    .command("prune")
    .description("delete old versions by policy; never a version a channel, its recent history or a lockfile names. Prints the plan unless --yes")
    .argument("[names...]", "assets to prune (default: every asset of the store)")
    .option("--keep-last <n>", "keep the newest N versions of each asset")
    .option("--per-series", "with --keep-last: keep the newest N of each major series")
    .option("--keep-within <duration>", "keep versions pushed within this period (90d, 12w, 36h)")
    .option("--keep-history <k>", "keep the versions of each channel's last K history entries", String(DEFAULT_KEEP_HISTORY))
    .option("--keep-locked <file...>", "keep every version these lockfiles name (the lockfile beside the config always counts)")
    .option("--yes", "delete; without it, print the plan only")
    .action(
      run(async (ctx, _opts, command) => {
        const local = command.opts<{
          keepLast?: string;
          perSeries?: boolean;
          keepWithin?: string;
          keepHistory?: string;
          keepLocked?: string[];
          yes?: boolean;
        }>();
        const r = await pruneCommand(ctx, { names: command.args, ...local, apply: local.yes ?? false });
        return { json: r, text: pruneLines(r, "pass --yes to delete") };
      }),
    );

  program
    .command("prune-local")
    .description("free space in the local assets dir: remove the least recently used versions (never one a running fetch holds, nor one the lockfile names)")
    .option("--assets-dir <dir>", "local assets dir (default as for fetch)")
    .option("--max-size <size>", "remove least recently used versions until the dir holds at most this much (20GiB, 500MB)")
    .option("--keep-last <n>", "keep only the N most recently used versions of each asset")
    .option("--all", "also remove versions the lockfile beside the config names")
    .option("--dry-run", "print what would be removed, remove nothing")
    .action(
      run(async (ctx, _opts, command) => {
        const r = await pruneLocalCommand(ctx, command.opts<{ maxSize?: string; keepLast?: string; all?: boolean; dryRun?: boolean }>());
        const verb = r.dryRun ? "would remove" : "removed";
        const text = [
          ...r.removed.map((v) => `${verb}\t${v.name}:${v.version}\t${formatBytes(v.size)}\tlast used ${v.lastUsed}`),
          ...r.kept.map((v) => `kept\t${v.name}:${v.version}\t${v.reason}`),
          `${r.assetsDir}: ${formatBytes(r.before)} -> ${formatBytes(r.after)}${r.maxSize !== null && r.after > r.maxSize ? ` (still over ${formatBytes(r.maxSize)}: what is left is locked or in use)` : ""}`,
        ];
        return { json: r, text };
      }),
    );

  program
    .command("sync")
    .description("keep the versions specs name (usually channels) live in a dir: <dir>/<name>/current, swapped atomically to each new verified version")
    .argument("[specs...]", "specs, usually channels like name:production (default: assetkit.yml assets)")
    .requiredOption("--dir <dir>", "the dir to serve from: versions at <dir>/<name>/<version>, the link <dir>/<name>/current")
    .option("--keep <n>", "previous versions kept for in-flight readers and rollback", "2")
    .option("--watch <interval>", "keep running, checking the store every interval (30s, 5m; one HEAD per spec when nothing changed)")
    .option("--in-place", "serve a local or mounted store's own files, verified once, instead of copies")
    .option("--status-file <file>", "JSON status (version, digest, path, last check, last error) rewritten after every check")
    .option("--on-change <command>", "shell command run after each swap, with ASSETKIT_NAME, _VERSION, _DIGEST, _PATH, _CURRENT, _PREVIOUS, _SPEC set")
    .option("--signal-pid <pid[:signal]>", "send a signal (default SIGHUP) to this process after each swap (repeatable)", repeatable)
    .action(
      run(async (ctx, _opts, command) => {
        const local = command.opts<{
          dir: string;
          keep: string;
          watch?: string;
          inPlace?: boolean;
          statusFile?: string;
          onChange?: string;
          signalPid?: string[];
        }>();
        const stopper = new AbortController();
        const onSignal = (signal: NodeJS.Signals): void => stopper.abort(new AssetError(`stopped by ${signal}: nothing was swapped`));
        // Kept (not once) until the sync ends: proper-lockfile's exit hook (signal-exit), once a lock is taken,
        // re-raises a signal no other listener handles, which would kill the process before it stops cleanly.
        process.on("SIGTERM", onSignal).on("SIGINT", onSignal);
        try {
          const r = await syncCommand(ctx, command.args, {
            dir: local.dir,
            keep: parseWholeNumber(local.keep, "--keep", 0),
            ...(local.watch !== undefined ? { watchMs: parseDuration(local.watch, "--watch", 100) } : {}),
            inPlace: local.inPlace ?? false,
            ...(local.statusFile ? { statusFile: local.statusFile } : {}),
            ...(local.onChange ? { onChange: local.onChange } : {}),
            signals: (local.signalPid ?? []).map(parseSignalTarget),
            stop: stopper.signal,
          });
          return { json: r, text: r.synced.map((a) => `${a.spec} -> ${a.version ?? "(none)"}\t${a.current}`) };
        } finally {
          process.off("SIGTERM", onSignal).off("SIGINT", onSignal);
        }
      }),
    );

  for (const sub of program.commands) withGlobalOptions(sub).exitOverride();

  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2; // commander printed the message
    // Store errors are scrubbed where they arise; this is the last net for anything else that quotes a credential.
    process.stderr.write(`error: ${scrub((err as Error).message)}\n`);
    if (debug && err instanceof Error && err.stack)
      process.stderr.write(scrub(`${err.stack}\n${err.cause ? `cause: ${String((err.cause as Error).stack ?? err.cause)}\n` : ""}`));
    return exitCodeOf(err);
  }
  return 0;
}

/** What publish and import print: one line, or the JSON document (without the size and file count). */
function publishedOutput(r: PublishResult, suffix = ""): { json: unknown; text: string[] } {
  const text = [`${r.spec}\t${r.published ? "published" : "unchanged"}\t${r.digest}\t${r.files} file(s), ${formatBytes(r.size)}${suffix}`];
  const { size: _size, files: _files, ...json } = r;
  return { json, text };
}

/** A repeatable flag's values, in order. */
/** show's lines for a version in a registry: its pinnable reference, and the files a standard puller gets as parts. */
function ociLines(oci: OciStorage): string[] {
  const split = oci.split.map((f) => `${f.file} (${formatBytes(f.size)}): ${f.parts} parts`);
  return [
    `reference: ${oci.reference}`,
    ...(split.length > 0 ? [`split into parts (assetkit joins them; oras pull and image volumes get <file>.part-NNN-of-MMM): ${split.join(", ")}`] : []),
  ];
}

function repeatable(value: string, all: string[] = []): string[] {
  return [...all, value];
}

/** The flags of every command that publishes a version (publish, import). */
function withPublishFlags(command: Command, ifChangedHelp: string): Command {
  return command
    .addOption(new Option("--bump <level>", "which part to bump (default: minor; patch inside a name:1.2 series)").choices(["major", "minor", "patch"]))
    .option("--version <version>", "publish exactly this version (refused if it exists)")
    .option("--if-changed", ifChangedHelp)
    .option("--meta <key=value>", "metadata kept in the version's meta (repeatable)", repeatable)
    .option("--sign", "sign the version keylessly with Sigstore (the job's OIDC token in GitHub Actions, else SIGSTORE_ID_TOKEN)")
    .option("--attest", "record a GitHub build-provenance attestation of the version's digest (GITHUB_REPOSITORY, GITHUB_TOKEN; keyless, like --sign)")
    .option("--sign-key <file>", "sign the version with this PEM EC private key (P-256/384/521; default: the PEM in ASSETKIT_SIGNING_KEY)")
    .addOption(
      new Option("--versioning <scheme>", "scheme of a new asset (default: semver, or assetkit.yml)").choices(["semver", "major-minor", "simple-date"]),
    )
    .addOption(layoutOption())
    .option("--unsafe-publish", "publish even if the store ignores conditional writes (only one publisher at a time!)");
}

/** --layout of every command that writes a version (publish, import, promote --to). */
function layoutOption(): Option {
  return new Option(
    "--layout <layout>",
    "where the version's files go: modelkit (under the version; modelkit reads it) or content-addressed (by sha256, shared between versions; modelkit cannot read it). Default: assetkit.yml, else the layout of the version it follows, else modelkit",
  ).choices(["modelkit", "content-addressed"]);
}

function withGlobalOptions(command: Command): Command {
  return command
    .option(
      "--store <uri>",
      "store: s3://bucket/prefix, gs://…, az://…, https://…, oci://registry/namespace, file:///abs or a path (default: $ASSETKIT_STORE, assetkit.yml, .assetkit/store)",
    )
    .option("--config <file>", "config file (default: ./assetkit.yml when present)")
    .option("--lockfile <file>", "lockfile (default: assets.lock beside the config)")
    .option("--json", "print one JSON document on stdout")
    .option("--quiet", "no progress or informational messages")
    .option("--debug", "show stack traces on errors, and which hash implementation runs")
    .option(
      "--offline",
      "verify keyless signatures without network: trust root from the policy's trust-config, else the one shipped (default: $ASSETKIT_OFFLINE)",
    );
}
