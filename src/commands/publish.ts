import { reservedPathProblem } from "../local/assets-dir.ts";
import type { Context } from "./context.ts";
import { UsageError } from "../base/errors.ts";
import { startHashing, type HashingInput, type ImportOrigin } from "../registry/manifest.ts";
import { formatBytes } from "../base/units.ts";
import { provenanceFromEnv } from "../github/provenance.ts";
import { formatSpec, parseSpec, type VersionSelector } from "../registry/spec.ts";
import type { Bump } from "../registry/versioning.ts";
import { CREATED_BY } from "../base/version.ts";
import { readFileSync } from "node:fs";
import { signingKeyFromPem, type SigningKey } from "../trust/keys.ts";
import { signVersion } from "../trust/oms.ts";

export interface PublishOptions {
  /** The file or folder to publish. */
  path: string;
  /** name, or name:series (name:1 publishes the next 1.x). */
  target: string;
  bump?: string;
  version?: string;
  ifChanged?: boolean;
  /** key=value pairs kept in the meta. */
  metadata?: string[];
  /** A PEM private key file to sign the version with (else the PEM in ASSETKIT_SIGNING_KEY, if set). */
  signKey?: string;
}

export interface PublishResult {
  name: string;
  version: string;
  spec: string;
  digest: string;
  published: boolean;
  store: string;
  size: number;
  files: number;
}

export async function publishCommand(ctx: Context, options: PublishOptions): Promise<PublishResult> {
  const target = parsePublishTarget(options);
  return publishPrepared(ctx, target, await startHashing(options.path), options.path);
}

/** A publish's target and settings, checked before any byte is read. */
export interface PublishTarget {
  name: string;
  series?: Extract<VersionSelector, { kind: "numeric" }>;
  bump?: Bump;
  version?: string;
  ifChanged: boolean;
  metadata: Record<string, string>;
  /** Signs the version (its `.sig`, written before its meta): from --sign-key or ASSETKIT_SIGNING_KEY. */
  signingKey?: SigningKey;
}

export function parsePublishTarget(options: Omit<PublishOptions, "path">, env: NodeJS.ProcessEnv = process.env): PublishTarget {
  const target = parseSpec(options.target);
  if (target.subPath) throw new UsageError(`publish takes a name or name:series, not a sub-path ([${target.subPath}])`);
  if (target.selector.kind === "date") throw new UsageError(`publish takes a name or name:series, not a version: pass --version ${target.selector.text}`);
  if (target.selector.kind === "range" || target.selector.kind === "alias") {
    throw new UsageError(`publish takes a name or name:series (like ${target.name}:1), not ${options.target}`);
  }
  const series = target.selector.kind === "numeric" ? target.selector : undefined;
  const bump = parseBump(options.bump);
  if (options.version !== undefined && (series || bump)) throw new UsageError("--version names the version itself: drop the :series and --bump");
  const signingKey = signingKeyOf(options.signKey, env);
  return {
    name: target.name,
    ...(series ? { series } : {}),
    ...(bump ? { bump } : {}),
    ...(options.version !== undefined ? { version: withoutVPrefix(options.version) } : {}),
    ifChanged: options.ifChanged ?? false,
    metadata: parseMetadata(options.metadata ?? []),
    ...(signingKey ? { signingKey } : {}),
  };
}

/** The key a publish signs with: the file --sign-key names, else the PEM ASSETKIT_SIGNING_KEY holds (CI secrets). */
function signingKeyOf(file: string | undefined, env: NodeJS.ProcessEnv): SigningKey | undefined {
  if (file !== undefined) {
    let pem: Buffer;
    try {
      pem = readFileSync(file);
    } catch (err) {
      throw new UsageError(`cannot read the --sign-key file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return signingKeyFromPem(pem, `--sign-key ${file}`);
  }
  return env.ASSETKIT_SIGNING_KEY ? signingKeyFromPem(env.ASSETKIT_SIGNING_KEY, "ASSETKIT_SIGNING_KEY") : undefined;
}

/**
 * Publishes an input by the registry's protocol. `what` names the input in errors; `origin` records where an
 * import came from.
 */
export async function publishPrepared(ctx: Context, target: PublishTarget, input: HashingInput, what: string, origin?: ImportOrigin): Promise<PublishResult> {
  const reserved = reservedPathProblem(
    input.files.map((f) => f.path),
    input.isDirectory,
  );
  if (reserved) throw new UsageError(`cannot publish ${what}: ${reserved}`);
  const { signingKey, ...request } = target;
  const outcome = await ctx.registry.publish({
    ...request,
    input,
    ...(signingKey ? { sign: (v) => signVersion(v, v, signingKey) } : {}),
    createdBy: CREATED_BY,
    source: { ...provenanceFromEnv(), ...(origin ? { import: origin } : {}) },
    onProgress: (p) => ctx.reporter.progress?.(p.bytes, p.totalBytes, `publishing ${target.name}`, { done: p.files, total: p.totalFiles }),
  });
  const spec = formatSpec({ name: target.name, version: outcome.version });
  if (outcome.published) {
    const { uploaded, copied } = outcome;
    const unchanged = copied.files ? `; ${copied.files} unchanged file(s), ${formatBytes(copied.bytes)}, copied inside the store` : "";
    const signed = signingKey ? ", signed" : "";
    ctx.reporter.info(`published ${spec}${signed}: uploaded ${uploaded.files} file(s), ${formatBytes(uploaded.bytes)}${unchanged}`);
  }
  return {
    name: target.name,
    version: outcome.version,
    spec,
    digest: outcome.digest,
    published: outcome.published,
    store: ctx.registry.url,
    size: input.size,
    files: input.files.length,
  };
}

function parseBump(bump: string | undefined): Bump | undefined {
  if (bump === undefined || bump === "") return undefined;
  if (bump === "major" || bump === "minor" || bump === "patch") return bump;
  throw new UsageError(`bad --bump ${JSON.stringify(bump)}: use major, minor or patch`);
}

export function parseMetadata(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`bad metadata ${JSON.stringify(pair)}: write key=value`);
    out[pair.slice(0, eq).trim()] = pair.slice(eq + 1);
  }
  return out;
}

/** A release tag's version (v1.4.0, as in github.ref_name) is the version 1.4.0; anything else is kept as given. */
export function withoutVPrefix(version: string): string {
  return /^v\d/.test(version) ? version.slice(1) : version;
}
