import type { Context } from "./context.ts";
import type { AssetMetaDocument } from "../registry/manifest.ts";
import { signatureKey } from "../registry/layout.ts";
import { parseSpec } from "../registry/spec.ts";
import { signatureReport, type SignatureReport } from "../trust/signature-report.ts";

/** The meta of the version a spec resolves to (files, digest, provenance), and who signed it (one more GET: its `.sig`). */
export async function showCommand(ctx: Context, spec: string): Promise<{ name: string; version: string; meta: AssetMetaDocument; signature: SignatureReport }> {
  const { name, version, meta } = await ctx.registry.resolve(parseSpec(spec));
  const where = `${signatureKey(name, version)} in ${ctx.registry.url}`;
  const signature = await signatureReport(ctx.config.trust, { name, version, ...meta }, await ctx.registry.signature(name, version), where, ctx.trustedRoots);
  return { name, version, meta: meta.document, signature };
}
