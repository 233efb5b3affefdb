// Transfer tuning shared by the transfer engine and the backends' multipart uploads, overridable from the
// environment: ASSETKIT_CONCURRENCY (requests in flight at once, across files and parts) and
// ASSETKIT_PART_SIZE (bytes per ranged read or uploaded part: 8388608, 8MiB, 64M).
import { UsageError } from "../errors.ts";

const MiB = 1024 * 1024;

export interface Tuning {
  concurrency: number;
  partSize: number;
}

/** Defaults measured against a local MinIO on 2 cores (README, "Transfers"). */
export const DEFAULT_TUNING: Tuning = { concurrency: 16, partSize: 16 * MiB };

export function tuningFromEnv(env: NodeJS.ProcessEnv = process.env): Tuning {
  return {
    concurrency: env.ASSETKIT_CONCURRENCY ? parseCount(env.ASSETKIT_CONCURRENCY) : DEFAULT_TUNING.concurrency,
    partSize: env.ASSETKIT_PART_SIZE ? parseSize(env.ASSETKIT_PART_SIZE) : DEFAULT_TUNING.partSize,
  };
}

function parseCount(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1 || n > 1024) {
    throw new UsageError(`ASSETKIT_CONCURRENCY=${JSON.stringify(text)}: write a whole number from 1 to 1024`);
  }
  return n;
}

/** A size as users write it: bytes, or with a binary unit (8388608, 8MiB, 64M, 2g); undefined when malformed. */
export function parseByteSize(text: string): number | undefined {
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
