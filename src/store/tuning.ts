// Transfer tuning and time budgets, read once from the environment into the context and shared by the transfer
// engine, the store layers and the backends' multipart uploads: ASSETKIT_CONCURRENCY (requests in flight at once,
// across files and parts), ASSETKIT_PART_SIZE (bytes per ranged read or uploaded part: 8388608, 8MiB, 64M),
// ASSETKIT_RETRIES (tries after the first, for temporary failures), ASSETKIT_IDLE_TIMEOUT (seconds without a byte:
// no answer to a request, or a pause in a body), ASSETKIT_TIMEOUT (seconds a store operation keeps retrying) and
// ASSETKIT_NATIVE_HASH (0: BLAKE3 part hashes without the native addon, see src/part-hash.ts).
import { UsageError } from "../errors.ts";

const MiB = 1024 * 1024;

/** How persistent every store request is (src/store/layers): one policy for every backend. */
export interface TimeBudget {
  /** Tries after the first, for temporary failures (network, timeout, throttling, 5xx). */
  retries: number;
  /** A try that receives no byte for this long fails (temporary): no answer to a request, or a pause in a body. */
  idleTimeoutMs: number;
  /** No new try of an operation starts this long after its first began. */
  timeoutMs: number;
}

export interface Tuning extends TimeBudget {
  concurrency: number;
  partSize: number;
  /** Part hashes may use the native BLAKE3 addon (ASSETKIT_NATIVE_HASH, default 1). */
  nativeHash: boolean;
}

/** Defaults: transfer sizes measured against a local MinIO on 2 cores (README, "Transfers"); budgets in README, "Failures and time budgets". */
export const DEFAULT_TUNING: Tuning = { concurrency: 16, partSize: 16 * MiB, retries: 4, idleTimeoutMs: 30_000, timeoutMs: 300_000, nativeHash: true };

export function tuningFromEnv(env: NodeJS.ProcessEnv = process.env): Tuning {
  return {
    concurrency: env.ASSETKIT_CONCURRENCY ? parseCount(env.ASSETKIT_CONCURRENCY) : DEFAULT_TUNING.concurrency,
    partSize: env.ASSETKIT_PART_SIZE ? parseSize(env.ASSETKIT_PART_SIZE) : DEFAULT_TUNING.partSize,
    retries: env.ASSETKIT_RETRIES ? parseNumber("ASSETKIT_RETRIES", env.ASSETKIT_RETRIES, 0, 20, true) : DEFAULT_TUNING.retries,
    idleTimeoutMs: env.ASSETKIT_IDLE_TIMEOUT
      ? parseNumber("ASSETKIT_IDLE_TIMEOUT", env.ASSETKIT_IDLE_TIMEOUT, 0.05, 3600, false) * 1000
      : DEFAULT_TUNING.idleTimeoutMs,
    timeoutMs: env.ASSETKIT_TIMEOUT ? parseNumber("ASSETKIT_TIMEOUT", env.ASSETKIT_TIMEOUT, 0.05, 86_400, false) * 1000 : DEFAULT_TUNING.timeoutMs,
    nativeHash: env.ASSETKIT_NATIVE_HASH ? parseNumber("ASSETKIT_NATIVE_HASH", env.ASSETKIT_NATIVE_HASH, 0, 1, true) === 1 : DEFAULT_TUNING.nativeHash,
  };
}

function parseNumber(name: string, text: string, min: number, max: number, whole: boolean): number {
  const n = Number(text.trim());
  if (text.trim() === "" || !Number.isFinite(n) || n < min || n > max || (whole && !Number.isInteger(n))) {
    throw new UsageError(`${name}=${JSON.stringify(text)}: write a ${whole ? "whole number" : "number of seconds"} from ${min} to ${max}`);
  }
  return n;
}

function parseCount(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1 || n > 1024) {
    throw new UsageError(`ASSETKIT_CONCURRENCY=${JSON.stringify(text)}: write a whole number from 1 to 1024`);
  }
  return n;
}

/** A size as users write it: bytes, or with a binary unit (8388608, 8MiB, 64M, 2g); undefined when malformed. */
function parseByteSize(text: string): number | undefined {
  const match = /^\s*(\d+)\s*(|k|ki|kib|kb|m|mi|mib|mb|g|gi|gib|gb)\s*$/i.exec(text);
  const unit = match?.[2]?.[0]?.toLowerCase();
  return match ? Number(match[1]) * (unit === "k" ? 1024 : unit === "m" ? MiB : unit === "g" ? 1024 * MiB : 1) : undefined;
}

function parseSize(text: string): number {
  const bytes = parseByteSize(text) ?? NaN;
  // S3 refuses parts under 5 MiB (except the last) and over 5 GiB.
  if (!(bytes >= 5 * MiB && bytes <= 5 * 1024 * MiB)) {
    throw new UsageError(`ASSETKIT_PART_SIZE=${JSON.stringify(text)}: write a size from 5MiB to 5GiB (bytes, or with KiB/MiB/GiB)`);
  }
  return bytes;
}
