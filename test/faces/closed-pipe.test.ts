// A reader that closes its pipe early (`assetkit --help | head -1`) ends neither bin with a stack trace: what it
// did not read is dropped, and the command's own exit code stands.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import path from "node:path";
import { describe, it } from "node:test";
import { cleanEnv, scratch } from "../helpers/cli.ts";

/** Runs `bin` with its stdout's reading end closed before it writes, and returns its exit code and stderr. */
async function withStdoutClosed(bin: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [path.resolve(bin), ...args], { cwd: await scratch(), env: cleanEnv() });
  child.stdout.destroy();
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  return { code, stderr };
}

describe("a closed stdout pipe", () => {
  for (const [program, bin] of [
    ["assetkit", "dist/cli.js"],
    ["assetkit-storage-initializer", "dist/storage-initializer.js"],
  ] as const) {
    it(`${program} --help exits 0 with nothing on stderr`, async () => {
      const r = await withStdoutClosed(bin, ["--help"]);
      assert.equal(r.stderr, "");
      assert.equal(r.code, 0);
    });
  }
});
