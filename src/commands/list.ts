import type { Context } from "./context.ts";
import { AssetError, UsageError } from "../base/errors.ts";
import { checkAssetName } from "../registry/paths.ts";

export interface ListPage {
  /** At most this many entries: versions of the named asset, else assets. */
  limit?: number;
  /** Start after this entry: a version (older ones follow), else an asset name (later ones follow). */
  after?: string;
}

export interface ListResult {
  assets: { name: string; versions: string[] }[];
  /** The `after` of the next page, when this one stopped at the limit. */
  next?: string;
}

/**
 * The assets of the store, or the versions of one, newest first; a page of them with `limit` and `after`. The
 * versions of a page are cut from the one index read (a single request however many there are); a page of assets
 * reads only its own assets' indexes.
 */
export async function listCommand(ctx: Context, name?: string, page: ListPage = {}): Promise<ListResult> {
  if (name) {
    checkAssetName(name);
    const { versions, foreign, scheme } = await ctx.registry.versions(name);
    if (foreign) throw ctx.registry.foreignVersions(name, foreign, `list ${name}`);
    if (versions.length === 0) throw new AssetError(`no asset named ${name} in ${ctx.registry.url}`);
    const { after } = page;
    if (after !== undefined && !scheme.isVersion(after)) throw new UsageError(`--after ${after}: not a ${scheme.name} version, as ${name}'s are`);
    // By order, not position: a cursor version pruned since the last page still says where the next one starts.
    const start = after === undefined ? 0 : versions.findIndex((v) => scheme.compare(v, after) < 0);
    const { items, next } = cut(start < 0 ? [] : versions.slice(start), page.limit);
    return { assets: [{ name, versions: items }], ...(next ? { next } : {}) };
  }
  const { after } = page;
  const { items, next } = cut(
    (await ctx.registry.assets()).filter((n) => after === undefined || n > after),
    page.limit,
  );
  const assets = [];
  for (const n of items) assets.push({ name: n, versions: (await ctx.registry.versions(n)).versions });
  return { assets, ...(next ? { next } : {}) };
}

/** The first `limit` items, and the last of them when more follow (the next page's `after`). */
function cut(items: string[], limit: number | undefined): { items: string[]; next?: string } {
  if (limit === undefined || items.length <= limit) return { items };
  const page = items.slice(0, limit);
  return { items: page, next: page[page.length - 1] };
}
