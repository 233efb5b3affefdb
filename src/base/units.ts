// The one grammar for durations (`24h`, `90d`), sizes (`20GiB`, `500MB`, `64M`) and whole numbers, for flags,
// Action inputs and environment settings alike. Written here: the transitive packages that parse them (ms, bytes)
// disagree with these units (bytes reads GB as GiB).
import { UsageError } from "./errors.ts";

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
/** KB, MB, GB and TB are powers of 1000; KiB, MiB… and the bare letters K, M, G, T (as dd and sort read them) of 1024. */
const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  ...Object.fromEntries(["k", "m", "g", "t"].flatMap((letter, i) => [letter, `${letter}i`, `${letter}ib`].map((unit) => [unit, 2 ** (10 * (i + 1))]))),
};

/** `90d`, `24h`, `30m`, `0s`, `2w`, `500ms`, or a plain number of seconds → milliseconds, at least `minMs`. */
export function parseDuration(text: string, flag: string, minMs = 0): number {
  const m = /^(\d+(?:\.\d+)?)(ms|[smhdw])?$/.exec(text.trim());
  const ms = m ? Number(m[1]) * DURATION_UNITS[m[2] ?? "s"]! : NaN;
  if (!(ms >= minMs)) {
    const least = minMs > 0 ? `at least ${minMs}ms, ` : "";
    throw new UsageError(`bad ${flag} ${JSON.stringify(text)}: write a duration, ${least}as a number and a unit ms s m h d or w (like 30s, 24h, 90d)`);
  }
  return ms;
}

/** `20GiB`, `500MB`, `64M`, `1.5TiB`, `1024` (bytes) → bytes (case-insensitive); undefined when it is not a size. */
export function sizeInBytes(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  return m && unit !== undefined ? Math.floor(Number(m[1]) * unit) : undefined;
}

/** A size flag or input (sizeInBytes), or a usage error naming it. */
export function parseSize(text: string, flag: string): number {
  const bytes = sizeInBytes(text);
  if (bytes === undefined) throw new UsageError(`bad ${flag} ${JSON.stringify(text)}: write a size like 20GiB, 500MB or 1024 (bytes)`);
  return bytes;
}

/** A whole number from `min` to `max` (digits only), or a usage error naming the flag or variable it came from. */
export function parseWholeNumber(text: string, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!(Number.isSafeInteger(n) && n >= min && n <= max)) {
    const range = max < Number.MAX_SAFE_INTEGER ? `from ${min} to ${max}` : `of at least ${min}`;
    throw new UsageError(`bad ${what} ${JSON.stringify(text)}: write a whole number ${range}`);
  }
  return n;
}

/** A byte count as people read it (binary units), for messages and progress. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}
