// The reproducibility check: every spec is locked, the store still holds the locked content, and local copies
// are intact. Reports every spec before failing, so one run shows everything to fix.
import { access } from "node:fs/promises";
import type { Context } from "./context.ts";
import { AssetError, UsageError } from "../base/errors.ts";
import { changedFiles, type VersionMeta } from "../registry/manifest.ts";
import { checkPinnedSigner, checkStoredSignature, loadLock, parseSpecs, policyChange, specsOrDefaults } from "./resolution.ts";
import { TrustError, type TrustFailure } from "../trust/policy.ts";

export type VerifyStatus = "ok" | "not-locked" | "digest-mismatch" | "missing" | "local-altered" | TrustFailure;

export interface VerifiedAsset {
  spec: string;
  name: string | null;
  version: string | null;
  digest: string | null;
  status: VerifyStatus;
  /** "verified" when a local copy exists and matches the meta, "absent" when there is none. */
  local: "verified" | "altered" | "absent" | "unchecked";
  /** The version the spec would resolve to without the lockfile, when it differs from the locked one. */
  newer: string | null;
  detail: string | null;
}

export async function verifyCommand(ctx: Context, specs: string[]): Promise<{ verified: VerifiedAsset[]; failed: AssetError | undefined }> {
  const lock = await loadLock(ctx);
  const wanted = parseSpecs(specsOrDefaults(ctx, specs, lock));
  if (wanted.length === 0) throw new UsageError("nothing to verify: give specs, list them under assets: in assetkit.yml, or lock some");
  const changed = policyChange(ctx, lock);
  const verified: VerifiedAsset[] = [];
  for (const { spec, parsed } of wanted) {
    const entry = lock?.assets[spec];
    if (!entry) {
      verified.push({
        spec,
        name: parsed.name,
        version: null,
        digest: null,
        status: "not-locked",
        local: "unchecked",
        newer: null,
        detail: `not in ${ctx.lockfilePath}`,
      });
      continue;
    }
    const row: VerifiedAsset = {
      spec,
      name: entry.name,
      version: entry.version,
      digest: entry.digest,
      status: "ok",
      local: "unchecked",
      newer: null,
      detail: null,
    };
    verified.push(row);
    if (changed) {
      Object.assign(row, { status: "policy-changed", detail: changed });
      continue;
    }
    let meta: VersionMeta;
    try {
      meta = await ctx.registry.meta(entry.name, entry.version);
    } catch (err) {
      if (!(err instanceof AssetError)) throw err;
      Object.assign(row, { status: "missing", detail: err.message });
      continue;
    }
    if (entry.digest !== null && meta.digest !== entry.digest) {
      Object.assign(row, { status: "digest-mismatch", detail: `the store has ${meta.digest ?? "no digest"}, the lockfile ${entry.digest}` });
      continue;
    }
    if (ctx.config.trust) {
      try {
        checkPinnedSigner(await checkStoredSignature(ctx, ctx.config.trust, entry.name, entry.version, meta), entry, ctx.lockfilePath);
      } catch (err) {
        if (!(err instanceof TrustError)) throw err;
        Object.assign(row, { status: err.failure, detail: err.message });
        continue;
      }
    }
    const local = ctx.assetsDir.pathOf(entry.name, entry.version);
    if (
      await access(local).then(
        () => true,
        () => false,
      )
    ) {
      const altered = await changedFiles(local, meta);
      row.local = altered.length === 0 ? "verified" : "altered";
      if (altered.length > 0) Object.assign(row, { status: "local-altered", detail: `changed or missing: ${altered.map((p) => p || local).join(", ")}` });
    } else row.local = "absent";
    // Only the version is needed: resolveDigest reads no meta when the index records the digest.
    const latest = await ctx.registry.resolveDigest(parsed).then(
      (r) => r.version,
      () => null,
    );
    if (latest && latest !== entry.version) row.newer = latest;
  }
  const bad = verified.filter((v) => v.status !== "ok");
  const failed =
    bad.length > 0
      ? new AssetError(`${bad.length} of ${verified.length} spec(s) failed verification: ${bad.map((b) => `${b.spec} (${b.status})`).join(", ")}`)
      : undefined;
  return { verified, failed };
}
