import type { Context } from "./context.ts";
import type { AssetMetaDocument } from "../registry/manifest.ts";
import { parseSpec } from "../registry/spec.ts";

/** The meta of the version a spec resolves to: files (a sharded meta's shards, not its files), digest, provenance. */
export async function showCommand(ctx: Context, spec: string): Promise<{ name: string; version: string; meta: AssetMetaDocument }> {
  const { name, version, document } = await ctx.registry.resolveDocument(parseSpec(spec));
  return { name, version, meta: document };
}
