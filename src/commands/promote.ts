// Moves a channel (an alias such as production) to the exact version a spec resolves to.
import type { Context } from "../context.ts";
import { UsageError } from "../errors.ts";
import { provenanceFromEnv } from "../provenance.ts";
import { formatSpec, parseSpec } from "../spec.ts";
import { CREATED_BY } from "../version.ts";
import { loadLock, parseSpecs, resolveInStore } from "./resolution.ts";

export interface PromoteResult {
  name: string;
  alias: string;
  /** `name:alias`, the spec that now resolves to `version`. */
  spec: string;
  version: string;
  digest: string | null;
  /** The version the alias pointed to before; null when the alias is new. */
  previous: string | null;
  changed: boolean;
  store: string;
}

export async function promoteCommand(ctx: Context, spec: string, alias: string): Promise<PromoteResult> {
  const [wanted] = parseSpecs([spec]);
  const { parsed } = wanted!;
  if (parsed.subPath) throw new UsageError(`promote takes a version, not a sub-path ([${parsed.subPath}])`);
  const target = parseSpec(`${parsed.name}:${alias}`);
  if (target.selector.kind !== "alias") {
    throw new UsageError(`${JSON.stringify(alias)} is not an alias name: lowercase letters, digits and '-', starting with a letter (like production)`);
  }
  const r = await resolveInStore(ctx, wanted!.spec, parsed, await loadLock(ctx), false);
  const outcome = await ctx.registry.promote(r.name, alias, r.version, {
    promoted_at: new Date().toISOString(),
    promoted_by: CREATED_BY,
    source: provenanceFromEnv(),
  });
  const previous = outcome.previous ?? null;
  ctx.reporter.info(
    outcome.changed
      ? `${r.name}:${alias} -> ${r.version}${previous ? ` (was ${previous})` : " (new alias)"}`
      : `${r.name}:${alias} already points to ${r.version}`,
  );
  return { name: r.name, alias, spec: formatSpec({ name: r.name, version: alias }), version: r.version, digest: r.digest, previous, changed: outcome.changed, store: ctx.store.url };
}
