import type { Context } from "./context.ts";
import { UsageError } from "../base/errors.ts";
import { DEFAULT_UNPACK_LIMITS, type UnpackLimits } from "../import/archive.ts";
import { openSource } from "../import/open-source.ts";
import type { ImportSource } from "../import/source.ts";
import { withStaging } from "../import/staging.ts";
import { startHashing, type ImportOrigin } from "../registry/manifest.ts";
import { formatSpec } from "../registry/spec.ts";
import { parsePublishTarget, publishPrepared, type PublishOptions, type PublishResult, type PublishTarget } from "./publish.ts";
import { parseSize, parseWholeNumber } from "../base/units.ts";

export interface ImportOptions extends Omit<PublishOptions, "path"> {
  /** Where the model lives: s3://, gs://, az://, azure://, https://, hf://, file:// or a path. */
  source: string;
  include?: string[];
  exclude?: string[];
  /** False: a single .tar/.tar.gz/.tgz/.zip is published as the file it is, not unpacked. */
  unpack?: boolean;
  /** Archive limits, as the user wrote them ("20GiB", "5000"). */
  maxUnpackedSize?: string;
  maxEntries?: string;
}

export interface ImportResult extends PublishResult {
  /** The source URI, credentials removed. */
  source: string;
}

/**
 * Publishes a model from where it already lives, by the publish protocol: the objects under a store prefix
 * straight from store to store, anything else from a private temporary folder that is removed afterwards. With --if-changed, a source whose pins (ETags, the Hub's commit) equal those recorded
 * in the latest version is not even downloaded; otherwise the content digest decides, as for publish.
 */
export async function importCommand(ctx: Context, options: ImportOptions, env: NodeJS.ProcessEnv = process.env): Promise<ImportResult> {
  const target = parsePublishTarget(options, ctx.config.trust?.trustConfig, env);
  const source = await openSource(options.source, {
    filter: { include: options.include ?? [], exclude: options.exclude ?? [] },
    unpack: options.unpack ?? true,
    limits: parseLimits(options),
    transfers: ctx.transfers,
    openStore: (uri) => ctx.openStore(uri),
    env,
    onProgress: (done, total) => ctx.reporter.progress?.(done, total, `importing ${target.name}`),
  });
  const unchanged = target.ifChanged ? await unchangedSince(ctx, target, source.origin) : undefined;
  if (unchanged) return { ...unchanged, source: source.origin.uri };
  // --if-changed compares the content digest before writing anything, so it needs the bytes hashed first: staged;
  // so does a layout that cannot copy from a store itself.
  const direct = target.ifChanged || !ctx.registry.storeCopies ? undefined : source.direct?.();
  if (direct) return { ...(await publishPrepared(ctx, target, direct, source.origin.uri, source.origin)), source: source.origin.uri };
  const result = await withStaging(async (dir) => {
    const staged = await source.stage(dir);
    return publishPrepared(ctx, target, await startHashing(staged.path), staged.origin.uri, staged.origin);
  });
  return { ...result, source: source.origin.uri };
}

/** The latest version of the series, when it was imported from a source with the same fingerprint. */
async function unchangedSince(ctx: Context, target: PublishTarget, origin: ImportSource["origin"]): Promise<PublishResult | undefined> {
  if (!origin.fingerprint) return undefined;
  const index = await ctx.registry.versions(target.name);
  const latest = index.scheme.pick(target.series ?? { kind: "latest" }, index.versions);
  if (!latest) return undefined;
  const meta = await ctx.registry.meta(target.name, latest);
  const recorded = meta.document.assetkit?.source.import as ImportOrigin | undefined;
  if (recorded?.fingerprint !== origin.fingerprint || !meta.digest) return undefined;
  ctx.reporter.info(`${origin.uri} is unchanged since ${target.name}:${latest} (same ${origin.commit ? "commit" : "ETags"}): nothing downloaded`);
  return {
    name: target.name,
    version: latest,
    spec: formatSpec({ name: target.name, version: latest }),
    digest: meta.digest,
    published: false,
    signed: false,
    signer: null,
    store: ctx.registry.url,
    size: meta.size ?? 0,
    files: meta.files.length,
  };
}

function parseLimits(options: ImportOptions): UnpackLimits {
  const limits = { ...DEFAULT_UNPACK_LIMITS };
  if (options.maxUnpackedSize !== undefined) {
    // The same size grammar as every other size flag (prune-local --max-size, cache-max-size).
    const bytes = parseSize(options.maxUnpackedSize, "--max-unpacked-size");
    if (bytes < 1) throw new UsageError(`bad --max-unpacked-size ${JSON.stringify(options.maxUnpackedSize)}: write a size of at least 1 byte`);
    limits.maxBytes = bytes;
  }
  if (options.maxEntries !== undefined) limits.maxEntries = parseWholeNumber(options.maxEntries, "--max-entries", 1);
  return limits;
}
