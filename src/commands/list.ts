import type { Context } from "./context.ts";
import { AssetError } from "../base/errors.ts";
import { checkAssetName } from "../registry/paths.ts";

export async function listCommand(ctx: Context, name?: string): Promise<{ assets: { name: string; versions: string[] }[] }> {
  const names = name ? [checkAssetName(name)] : await ctx.registry.assets();
  const assets = [];
  for (const n of names) {
    const { versions, foreign } = await ctx.registry.versions(n);
    if (name && foreign) throw ctx.registry.foreignVersions(name, foreign, `list ${name}`);
    if (name && versions.length === 0) throw new AssetError(`no asset named ${name} in ${ctx.registry.url}`);
    assets.push({ name: n, versions });
  }
  return { assets };
}
