// Moves a channel (an alias such as production) to the exact version a spec resolves to, optionally after
// copying that version into another store (--to), or back to its previous version (--rollback).
import path from "node:path";
import type { ChannelPolicy } from "../project/config.ts";
import type { Context } from "./context.ts";
import { AssetError, UsageError } from "../base/errors.ts";
import { provenanceFromEnv } from "../github/provenance.ts";
import { LATEST } from "../registry/channels.ts";
import type { AssetRegistry } from "../registry/asset-registry.ts";
import { formatSpec, parseSpec } from "../registry/spec.ts";
import { CREATED_BY } from "../base/version.ts";
import { checkTrusted, loadLock, parseSpecs, resolveInStore } from "./resolution.ts";

export interface PromoteOptions {
  /** The channel to move; for --rollback, the spec's own name:channel. */
  channel?: string | undefined;
  /** Another store to copy the version into first (the channel then moves there). */
  to?: string | undefined;
  rollback?: boolean | undefined;
  /** Copy a version whose meta has no checksums (modelkit's). */
  allowUnverified?: boolean | undefined;
  /** GITHUB_REF and the provenance variables (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface PromoteResult {
  name: string;
  /** The channel moved, or null for a copy without a channel. */
  alias: string | null;
  /** `name:alias`, the spec that now resolves to `version` (name:version without a channel). */
  spec: string;
  version: string;
  digest: string | null;
  /** The version the alias pointed to before; null when the alias is new (or none was moved). */
  previous: string | null;
  /** Whether the channel moved. */
  changed: boolean;
  /** The store the channel lives in: the destination of --to. */
  store: string;
  /** --to only: the source store, and whether the version was copied (false: the destination had it already). */
  from?: string;
  copied?: boolean;
  rollback?: boolean;
}

export async function promoteCommand(ctx: Context, spec: string, options: PromoteOptions = {}): Promise<PromoteResult> {
  const env = options.env ?? process.env;
  const [wanted] = parseSpecs([spec]);
  const { parsed } = wanted!;
  if (parsed.subPath) throw new UsageError(`promote takes a version, not a sub-path ([${parsed.subPath}])`);
  const target = options.to ? await destination(ctx, options.to) : ctx.registry;
  const promotion = { promoted_at: new Date().toISOString(), promoted_by: CREATED_BY, source: provenanceFromEnv(env) };

  if (options.rollback) {
    const channel = options.channel ?? (parsed.selector.kind === "alias" ? parsed.selector.alias : undefined);
    if (!channel) throw new UsageError(`--rollback moves a channel back: write name:channel (like ${parsed.name}:production)`);
    checkChannelName(channel);
    checkRef(channel, ctx.config.channels[channel], env);
    // A rollback moves the channel too: under a policy, the version it goes back to is checked first (in this
    // store; with --to, the destination's signatures are not checked here).
    const back = ctx.config.trust && !options.to ? (await target.aliases(parsed.name)).table[channel]?.previous : undefined;
    if (back) await checkTrusted(ctx, parsed.name, back, await target.meta(parsed.name, back), `${parsed.name}:${channel} not rolled back`);
    const moved = await target.rollback(parsed.name, channel, promotion, back);
    ctx.reporter.info(`${parsed.name}:${channel} -> ${moved.version} (rolled back from ${moved.previous})`);
    const digest = await target.digestOf(parsed.name, moved.version);
    return result(parsed.name, channel, moved.version, digest, moved.previous ?? null, moved.changed, target, { rollback: true });
  }

  const channel = options.channel;
  if (channel === undefined && !options.to) throw new UsageError("promote needs a channel (promote <spec> <channel>), --to <store>, or both");
  const policy = channel === undefined ? undefined : ctx.config.channels[channel];
  if (channel !== undefined) {
    checkChannelName(channel);
    checkRef(channel, policy, env); // before any copy
  }
  const entry = (await loadLock(ctx))?.assets[wanted!.spec];
  const r = await resolveInStore(ctx, wanted!.spec, parsed, entry);
  if (policy?.requireVerified && r.digest === null) {
    throw new AssetError(`${channel} is protected (require-verified in ${ctx.config.file}): ${r.name}:${r.version} has no checksums (written by modelkit?)`);
  }
  let copied: boolean | undefined;
  if (options.to) {
    await checkTrusted(ctx, r.name, r.version, r.meta!, `nothing copied to ${target.url}`, entry);
    const outcome = await target.copyVersion(ctx.registry, r.name, r.version, {
      at: promotion.promoted_at,
      by: promotion.source.actor ?? CREATED_BY,
      ...(promotion.source.run_url ? { run_url: promotion.source.run_url } : {}),
      allowUnverified: options.allowUnverified ?? false,
      onProgress: (p) => ctx.reporter.progress?.(p.bytes, p.totalBytes, `copying ${r.name}:${r.version}`, { done: p.files, total: p.totalFiles }),
    });
    copied = outcome.copied;
    const how = outcome.copied
      ? `copied ${outcome.serverSide.files + outcome.streamed.files} file(s) (${outcome.serverSide.files} server-side, ${outcome.streamed.files} streamed and verified)`
      : "already there with the same digest";
    ctx.reporter.info(`${r.name}:${r.version} -> ${target.url}: ${how}`);
  } else {
    // A channel never points at a version its readers would refuse: checked under the policy before it moves.
    await checkTrusted(ctx, r.name, r.version, r.meta!, `${r.name}:${channel} not moved`, entry);
  }
  const extra = options.to ? { from: ctx.registry.url, copied: copied! } : {};
  if (channel === undefined) return result(r.name, null, r.version, r.digest, null, false, target, extra);
  const outcome = await target.promote(r.name, channel, r.version, promotion);
  const previous = outcome.previous ?? null;
  ctx.reporter.info(
    outcome.changed
      ? `${r.name}:${channel} -> ${r.version}${previous ? ` (was ${previous})` : " (new channel)"}`
      : `${r.name}:${channel} already points to ${r.version}`,
  );
  return result(r.name, channel, r.version, r.digest, previous, outcome.changed, target, extra);
}

function result(
  name: string,
  alias: string | null,
  version: string,
  digest: string | null,
  previous: string | null,
  changed: boolean,
  target: AssetRegistry,
  extra: Partial<PromoteResult>,
): PromoteResult {
  const spec = formatSpec({ name, version: alias ?? version });
  return { name, alias, spec, version, digest, previous, changed, store: target.url, ...extra };
}

/** The registry of the --to store (any layout), with the same settings as the source's. */
async function destination(ctx: Context, uri: string): Promise<AssetRegistry> {
  const target = await ctx.openRegistry(uri, ctx.config.dir);
  if (target.url === ctx.registry.url) throw new UsageError(`--to ${target.url} is the store the version comes from: name another store`);
  return target;
}

function checkChannelName(channel: string): void {
  const target = parseSpec(`x:${channel}`);
  if (target.selector.kind !== "alias") {
    throw new UsageError(`${JSON.stringify(channel)} is not a channel name: lowercase letters, digits and '-', starting with a letter (like production)`);
  }
  if (channel === LATEST) throw new UsageError(`"${LATEST}" always means the latest version: it cannot be a channel`);
}

/** A protected channel moves only from the refs its policy names (a guard against mistakes; IAM is the boundary). */
function checkRef(channel: string, policy: ChannelPolicy | undefined, env: NodeJS.ProcessEnv): void {
  if (!policy?.refs) return;
  const ref = env.GITHUB_REF ?? "";
  if (policy.refs.some((pattern) => path.posix.matchesGlob(ref, pattern))) return;
  throw new AssetError(
    `${channel} is a protected channel: it moves only from ${policy.refs.join(", ")}, not from ${ref || "outside a workflow (GITHUB_REF is not set)"}`,
  );
}
