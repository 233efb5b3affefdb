// Runs the shipped Action (dist/index.js) as the runner runs it: INPUT_* variables in, GITHUB_OUTPUT and
// GITHUB_STEP_SUMMARY files out.
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { cleanEnv } from "./cli.ts";

export interface ActionRun {
  code: number;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  summary: string;
}

/** Runs the Action in `cwd`; `env` may name another GITHUB_STEP_SUMMARY than the one it creates and returns. */
export async function runAction(cwd: string, inputs: Record<string, string>, env: NodeJS.ProcessEnv = {}): Promise<ActionRun> {
  const output = path.join(cwd, `output-${Math.random()}`);
  const summary = path.join(cwd, `summary-${Math.random()}`);
  await writeFile(output, "");
  await writeFile(summary, "");
  const inputEnv = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [`INPUT_${k.toUpperCase()}`, v]));
  const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [path.resolve("dist/index.js")],
      { cwd, env: { ...cleanEnv(), ...inputEnv, GITHUB_STEP_SUMMARY: summary, ...env, GITHUB_OUTPUT: output }, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
  return { ...result, outputs: parseOutputs(await readFile(output, "utf8")), summary: await readFile(summary, "utf8") };
}

/** GITHUB_OUTPUT's heredoc format: name<<DELIM\nvalue\nDELIM */
function parseOutputs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /^(.+?)<<(.+)\n([\s\S]*?)\n\2$/gm;
  for (const m of text.matchAll(re)) out[m[1]!] = m[3]!;
  return out;
}
