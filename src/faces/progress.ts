// Transfer progress (bytes, files, rate, ETA): a live line on a terminal, a line every few seconds in logs
// (Actions), nothing when quiet; always on stderr (the CLI) or the log, never mixed into --json output.
import { formatBytes } from "../base/units.ts";

export interface ProgressSink {
  /** The state of one transfer, named by `label`; several transfers at once are shown as one total. */
  update(done: number, total: number, label: string, files?: { done: number; total: number }): void;
  /** Clears the live line, if any, before other output. */
  clear(): void;
}

const LOG_INTERVAL_MS = 5_000;
const TTY_INTERVAL_MS = 100;

interface Transfer {
  done: number;
  total: number;
  files: { done: number; total: number } | undefined;
}

function isFinished(x: Transfer): boolean {
  return x.total > 0 && x.done >= x.total && (!x.files || x.files.done >= x.files.total);
}

export function createProgress(stream: NodeJS.WriteStream, options: { live: boolean; now?: () => number }): ProgressSink {
  const now = options.now ?? Date.now;
  const transfers = new Map<string, Transfer>();
  let start: number | undefined; // the first byte, not the process start: resolving is not transferring
  let last = 0;
  let shown = false;
  return {
    update(done, total, label, files) {
      const t = now();
      start ??= t;
      // Called per file (100,000 times in a publish of as many): what is not shown is only recorded, nothing summed.
      let transfer = transfers.get(label);
      if (!transfer) transfers.set(label, (transfer = { done, total, files }));
      transfer.done = done;
      transfer.total = total;
      transfer.files = files;
      const due = t - last >= (options.live ? TTY_INTERVAL_MS : LOG_INTERVAL_MS);
      // A live line shows the end of a transfer at once; only the update finishing its own transfer may end them all.
      if (!due && !(options.live && isFinished(transfer) && [...transfers.values()].every(isFinished))) return;
      if (!options.live && t - start < LOG_INTERVAL_MS) return; // short transfers need no log lines
      const all = [...transfers.values()];
      const sum = (pick: (x: Transfer) => number): number => all.reduce((n, x) => n + pick(x), 0);
      const [bytes, totalBytes] = [sum((x) => x.done), sum((x) => x.total)];
      last = t;
      const rate = bytes / Math.max((t - start) / 1000, 0.001);
      const counted = all.filter((x) => x.files);
      const fileCount = counted.length ? `, ${sum((x) => x.files?.done ?? 0)}/${sum((x) => x.files?.total ?? 0)} files` : "";
      const eta = totalBytes > bytes && rate > 0 ? `, ETA ${formatDuration((totalBytes - bytes) / rate)}` : "";
      const what = transfers.size === 1 ? label : `${transfers.size} assets`;
      const line = `${what}: ${formatBytes(bytes)}${totalBytes ? ` / ${formatBytes(totalBytes)}` : ""}${fileCount}, ${formatBytes(rate)}/s${eta}`;
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

function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  return `${Math.floor(seconds / 60)}m${String(Math.ceil(seconds % 60)).padStart(2, "0")}s`;
}
