import type { Context } from "./context.ts";
import type { AssetMetaDocument } from "../registry/manifest.ts";
import { parseSpec } from "../registry/spec.ts";

/** The meta of the version a spec resolves to: files, digest, provenance. */
export async function showCommand(ctx: Context, spec: string): Promise<{ name: string; version: string; meta: AssetMetaDocument }> {
  const { name, version, meta } = await ctx.registry.resolve(parseSpec(spec));
  return { name, version, meta: meta.document };
}
