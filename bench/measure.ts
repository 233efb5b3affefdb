// Runs one command as a child process and measures it from the outside: wall time, and by GNU time the peak RSS
// (`%M`: the largest resident set of the process and of the children it waited for) and the CPU it used (`%U`
// user + `%S` system seconds, of every thread: robust to a busy machine, where wall time is not). Children
// are always spawned asynchronously: the request counter's proxy lives in this process and must keep answering.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

const GNU_TIME = "/usr/bin/time";
/** How much of a failed command's output a report keeps. */
const OUTPUT_TAIL = 4000;

export interface Command {
  file: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
}

export interface Outcome {
  code: number;
  /** performance.now() when the command was spawned: what the request counter's times are compared with. */
  startedAt: number;
  seconds: number;
  peakRssMiB: number;
  /** User + system CPU seconds of the command and the children it waited for. */
  cpuSeconds: number;
  /** The system part of `cpuSeconds`: the kernel's work (copies into the page cache, sockets, locks). */
  systemSeconds: number;
  stdout: string;
  stderr: string;
}

/** Process groups of the commands running now: killed if the benchmark exits (Ctrl-C) while one runs. */
const runningGroups = new Set<number>();
process.on("exit", () => {
  for (const pgid of runningGroups) killGroup(pgid);
});

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, "SIGKILL");
  } catch {
    // already gone
  }
}

export function assertGnuTime(): void {
  if (!existsSync(GNU_TIME)) throw new Error(`${GNU_TIME} (GNU time) is missing: the benchmark reads peak RSS from it (apt-get install time)`);
}

/** Runs `command` to its end (killing its process group after `timeoutMs`); never throws for a failing command. */
export async function measure(command: Command, timeoutMs: number): Promise<Outcome> {
  const scratch = await mkdtemp(path.join(tmpdir(), "assetkit-bench-time-"));
  const rssFile = path.join(scratch, "rss");
  try {
    const started = performance.now();
    const child = spawn(GNU_TIME, ["-f", "%M %U %S", "-o", rssFile, command.file, ...command.args], {
      cwd: command.cwd,
      env: command.env,
      detached: true, // its own process group: a timeout kills the tool and whatever it started
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr = (stderr + d).slice(-OUTPUT_TAIL)));
    if (child.pid !== undefined) runningGroups.add(child.pid);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) killGroup(child.pid);
    }, timeoutMs);
    const code = await new Promise<number>((resolve) => {
      child.once("error", (err) => {
        stderr += err.message;
        resolve(127);
      });
      child.once("close", (exitCode) => resolve(exitCode ?? 1));
    });
    const seconds = (performance.now() - started) / 1000;
    clearTimeout(timer);
    if (child.pid !== undefined) runningGroups.delete(child.pid);
    if (timedOut) stderr += `\n(killed after ${timeoutMs / 1000} s)`;
    // The last line (GNU time puts "Command exited with non-zero status" before it).
    const [peakRssKiB, user, system] = ((await readFile(rssFile, "utf8").catch(() => "")).trim().split("\n").pop() ?? "").split(" ").map(Number);
    const peakRssMiB = Number.isFinite(peakRssKiB) ? peakRssKiB! / 1024 : NaN;
    return {
      code: timedOut ? 124 : code,
      startedAt: started,
      seconds,
      peakRssMiB,
      cpuSeconds: (user ?? NaN) + (system ?? NaN),
      systemSeconds: system ?? NaN,
      stdout,
      stderr,
    };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Like measure(), but a non-zero exit is an error naming the command and the end of its output. */
export async function runOrThrow(what: string, command: Command, timeoutMs: number): Promise<Outcome> {
  const outcome = await measure(command, timeoutMs);
  if (outcome.code !== 0) throw new Error(`${what} failed (exit ${outcome.code}): ${outcome.stderr.trim().slice(-OUTPUT_TAIL)}`);
  return outcome;
}

export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
