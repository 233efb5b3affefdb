import type { Context } from "./context.ts";
import type { AssetMetaDocument } from "../registry/manifest.ts";
import type { OciStorage } from "../registry/oci/oci-layout.ts";
import { isOciLayout } from "../registry/oci/kind.ts";
import { parseSpec } from "../registry/spec.ts";
import { signatureReport, type SignatureReport } from "../trust/signature-report.ts";

/**
 * The meta of the version a spec resolves to (files — a sharded meta's shards, not its files —, digest, provenance),
 * and who signed it (one more GET: its `.sig`; under a trust policy the whole file list too, as the check needs it).
 * On an OCI store also how the version is stored: its manifest reference and the files split into parts.
 */
export async function showCommand(
  ctx: Context,
  spec: string,
): Promise<{ name: string; version: string; meta: AssetMetaDocument; signature: SignatureReport; oci?: OciStorage }> {
  const policy = ctx.config.trust;
  const { name, version, document } = await ctx.registry.resolveDocument(parseSpec(spec));
  const checked = async () => ({ name, version, ...(await ctx.registry.meta(name, version)) });
  const where = ctx.registry.signatureWhere(name, version);
  const signature = await signatureReport(policy, { name, version }, checked, await ctx.registry.signature(name, version), where, ctx.trustedRoots);
  const oci = isOciLayout(ctx.registry) ? await ctx.registry.storage(name, version) : undefined;
  return { name, version, meta: document, signature, ...(oci ? { oci } : {}) };
}
