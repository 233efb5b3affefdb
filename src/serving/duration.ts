// Durations as people write them on a command line: 500ms, 30s, 5m, 1h, or a plain number of seconds.
import { UsageError } from "../errors.ts";

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(text: string, flag: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  const ms = match ? Number(match[1]) * UNITS[match[2] ?? "s"]! : NaN;
  if (!(ms >= 100)) throw new UsageError(`bad ${flag} ${JSON.stringify(text)}: expected a duration of at least 100ms, like 30s, 5m or 1h`);
  return ms;
}
