// Runs the shipped CLI (dist/cli.js) as a user would, in a scratch folder.
import { execFile, spawn } from "node:child_process";
import { mkdtemp, mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

export const CLI = path.resolve("dist/cli.js");

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI (`cli`: another copy of the bundle than dist/cli.js, or another bin; `node`: another Node.js). */
export function runCli(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; cli?: string; node?: string }): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      options.node ?? process.execPath,
      [options.cli ?? CLI, ...args],
      { cwd: options.cwd, env: { ...cleanEnv(), ...options.env }, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

/** Starts a CLI process without waiting, for races between processes. */
export function startCli(args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env: { ...cleanEnv(), ...options.env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** The environment without any ASSETKIT_/MODELKIT_/GITHUB_ variable the test runner may carry. */
export function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(ASSETKIT_|MODELKIT_|GITHUB_|INPUT_)/.test(k)));
}

export async function scratch(): Promise<string> {
  return mkdtemp(path.join(tmpdir(), "assetkit-test-"));
}

/** Writes a tree of files: { "a.txt": "x", "sub/b.bin": "y" }. */
export async function writeTree(root: string, files: Record<string, string | Buffer>): Promise<string> {
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, rel)), { recursive: true });
    await writeFile(path.join(root, rel), content);
  }
  return root;
}
