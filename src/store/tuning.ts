// Transfer tuning and time budgets, read once from the environment into the context and shared by the transfer
// engine, the store layers and the backends' multipart uploads: ASSETKIT_CONCURRENCY (requests in flight at once,
// across files and parts), ASSETKIT_PART_SIZE (bytes per ranged read or uploaded part: 8388608, 8MiB, 64M),
// ASSETKIT_RETRIES (tries after the first, for temporary failures), ASSETKIT_IDLE_TIMEOUT (seconds without a byte:
// no answer to a request, or a pause in a body), ASSETKIT_TIMEOUT (seconds a store operation keeps retrying) and
// ASSETKIT_NATIVE_HASH (0: BLAKE3 part hashes without the native addon, see src/hashing/part-hash.ts). Read by the same
// grammar as the flags (src/base/units.ts); the timeouts also take a unit (30s, 5m).
import { UsageError } from "../base/errors.ts";
import { parseDuration, parseWholeNumber, sizeInBytes } from "../base/units.ts";

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
    concurrency: env.ASSETKIT_CONCURRENCY ? parseWholeNumber(env.ASSETKIT_CONCURRENCY, "ASSETKIT_CONCURRENCY", 1, 1024) : DEFAULT_TUNING.concurrency,
    partSize: env.ASSETKIT_PART_SIZE ? partSize(env.ASSETKIT_PART_SIZE) : DEFAULT_TUNING.partSize,
    retries: env.ASSETKIT_RETRIES ? parseWholeNumber(env.ASSETKIT_RETRIES, "ASSETKIT_RETRIES", 0, 20) : DEFAULT_TUNING.retries,
    idleTimeoutMs: env.ASSETKIT_IDLE_TIMEOUT ? duration(env.ASSETKIT_IDLE_TIMEOUT, "ASSETKIT_IDLE_TIMEOUT", 50, 3_600_000) : DEFAULT_TUNING.idleTimeoutMs,
    timeoutMs: env.ASSETKIT_TIMEOUT ? duration(env.ASSETKIT_TIMEOUT, "ASSETKIT_TIMEOUT", 50, 86_400_000) : DEFAULT_TUNING.timeoutMs,
    nativeHash: env.ASSETKIT_NATIVE_HASH ? parseWholeNumber(env.ASSETKIT_NATIVE_HASH, "ASSETKIT_NATIVE_HASH", 0, 1) === 1 : DEFAULT_TUNING.nativeHash,
  };
}

/** Seconds (a plain number) or a duration with its unit (30s, 5m), from `minMs` to `maxMs`. */
function duration(text: string, name: string, minMs: number, maxMs: number): number {
  const ms = parseDuration(text, name, minMs);
  if (ms > maxMs) throw new UsageError(`bad ${name} ${JSON.stringify(text)}: at most ${maxMs / 1000} seconds`);
  return ms;
}

function partSize(text: string): number {
  // This variable read KB, MB and GB as binary units before the grammar was shared with the size flags: it still
  // does, so a part size that was valid (5MB) stays valid and the same.
  const bytes = sizeInBytes(text.replace(/([kmgt])b\s*$/i, "$1iB")) ?? NaN;
  // S3 refuses parts under 5 MiB (except the last) and over 5 GiB.
  if (!(bytes >= 5 * MiB && bytes <= 5 * 1024 * MiB)) {
    throw new UsageError(`bad ASSETKIT_PART_SIZE ${JSON.stringify(text)}: write a size from 5MiB to 5GiB (like 8MiB, 64M or 8388608)`);
  }
  return bytes;
}
