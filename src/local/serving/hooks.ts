// What a sync tells the server after a swap: a command run with the new version in its environment, and/or a
// signal sent to a process (a server that reloads on SIGHUP).
import { constants } from "node:os";
import { UsageError } from "../../base/errors.ts";

export interface SignalTarget {
  pid: number;
  signal: NodeJS.Signals;
}

/** `PID` or `PID:SIGNAL` (SIGHUP by default; `HUP` and `SIGHUP` both accepted). */
export function parseSignalTarget(text: string): SignalTarget {
  const [pidText = "", signalText = "SIGHUP"] = text.split(":");
  const pid = Number(pidText);
  const signal = (signalText.toUpperCase().startsWith("SIG") ? signalText.toUpperCase() : `SIG${signalText.toUpperCase()}`) as NodeJS.Signals;
  if (!/^[1-9][0-9]*$/.test(pidText) || !(signal in constants.signals)) {
    throw new UsageError(`bad --signal-pid ${JSON.stringify(text)}: expected PID or PID:SIGNAL, e.g. 1234:SIGHUP`);
  }
  return { pid, signal };
}

/** Runs `command` through the shell with `env` added; its output goes to stderr (stdout is the sync's). Resolves to a problem, or undefined. */
export function runOnChange(command: string, env: Record<string, string>): Promise<string | undefined> {
  return new Promise((resolve) => {
    // child_process is loaded here, not at every start-up (~5 ms of CPU): the CLI imports this file for its flags.
    const child = process
      .getBuiltinModule("node:child_process")
      .spawn(command, { shell: true, stdio: ["ignore", process.stderr, process.stderr], env: { ...process.env, ...env } });
    child.once("error", (err) => resolve(`--on-change could not start: ${err.message}`));
    child.once("exit", (code, signal) => resolve(code === 0 ? undefined : `--on-change exited with ${signal ?? `status ${code}`}`));
  });
}

/** Sends the signal; a problem (no such process, not allowed) is returned, not thrown: serving goes on. */
export function sendSignal(target: SignalTarget): string | undefined {
  try {
    process.kill(target.pid, target.signal);
    return undefined;
  } catch (err) {
    return `cannot send ${target.signal} to process ${target.pid}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
  }
}
