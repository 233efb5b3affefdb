// Durations (`24h`, `90d`) and sizes (`20GiB`) as flags take them. Written here: two small grammars, and the
// transitive packages that parse them (ms, bytes) disagree with these units (bytes reads GB as GiB).
import { UsageError } from "./errors.ts";

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
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

/** `20GiB`, `500MB`, `1.5TiB`, `1024` (bytes) → bytes. */
export function parseSize(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = SIZE_UNITS[(m?.[2] || "b").toLowerCase()];
  if (!m || unit === undefined) throw new UsageError(`bad ${flag} ${JSON.stringify(text)}: write a size like 20GiB, 500MB or 1024 (bytes)`);
  return Math.floor(Number(m[1]) * unit);
}
