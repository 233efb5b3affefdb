// Transfer progress: a live line on a terminal, a line every few seconds in logs (Actions), nothing when quiet.

export interface ProgressSink {
  update(done: number, total: number, label: string): void;
  /** Clears the live line, if any, before other output. */
  clear(): void;
}

const LOG_INTERVAL_MS = 5_000;
const TTY_INTERVAL_MS = 100;

export function createProgress(stream: NodeJS.WriteStream, options: { live: boolean; now?: () => number }): ProgressSink {
  const now = options.now ?? Date.now;
  const start = now();
  let last = 0;
  let shown = false;
  return {
    update(done, total, label) {
      const t = now();
      const finished = total > 0 && done >= total;
      if (t - last < (options.live ? TTY_INTERVAL_MS : LOG_INTERVAL_MS) && !(options.live && finished)) return;
      if (!options.live && t - start < LOG_INTERVAL_MS) return; // short transfers need no log lines
      last = t;
      const rate = done / Math.max((t - start) / 1000, 0.001);
      const eta = total > done && rate > 0 ? ` ETA ${formatDuration((total - done) / rate)}` : "";
      const line = `${label}: ${formatBytes(done)}${total ? ` / ${formatBytes(total)}` : ""} at ${formatBytes(rate)}/s${eta}`;
      if (options.live) {
        stream.write(`\r\x1b[2K${line}`);
        shown = true;
      } else stream.write(`${line}\n`);
    },
    clear() {
      if (shown) stream.write("\r\x1b[2K");
      shown = false;
    },
  };
}

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  return `${Math.floor(seconds / 60)}m${String(Math.ceil(seconds % 60)).padStart(2, "0")}s`;
}
