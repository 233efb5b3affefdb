// What a sync reports about each asset it serves: for readiness probes (the status file) and for humans.
import { writeAtomically } from "../../base/temp-path.ts";

export interface ServedStatus {
  spec: string;
  name: string;
  /** The version `current` points at (null before the first swap). */
  version: string | null;
  digest: string | null;
  /** The version's own local path (what `current` resolves to). */
  path: string | null;
  /** The `current` link. */
  current: string;
  /** When `current` last changed. */
  swappedAt: string | null;
  /** When the store last confirmed that the served version is the one the spec names. */
  lastSuccess: string | null;
  /** Every completed or failed check. */
  lastCheck: string | null;
  /** The latest failure, kept until the spec's version is served again. */
  lastError: { at: string; message: string } | null;
  /** Serving the version the spec names, with no failure since. */
  ok: boolean;
}

/** `{"updated", "ok", "assets": [...]}`, replaced atomically so a probe never reads half of it. */
export async function writeStatusFile(file: string, assets: readonly ServedStatus[]): Promise<void> {
  const doc = { updated: new Date().toISOString(), ok: assets.every((a) => a.ok), assets };
  await writeAtomically(file, JSON.stringify(doc, null, 2) + "\n");
}
