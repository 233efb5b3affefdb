// The test command: builds dist/, starts the test servers on free 127.0.0.1 ports, runs every test file
// against them (a server-backed suite that cannot reach its server fails here instead of skipping), stops them.
// The tests' temporary files go to one folder (TMPDIR), removed at the end: thousands of folders a run otherwise
// stayed behind in the system's temporary folder. The CLI's compile cache is one folder beside them, shared by every
// run (tests that give a CLI run a TMPDIR of its own check that nothing is left in it). A file that stays alive after
// its tests ended fails with what holds it (test/helpers/exit-guard.ts).
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { startServers } from "./test-servers.ts";

function testFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) return testFiles(full);
    return entry.endsWith(".test.ts") ? [full] : [];
  });
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: "inherit", env });
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

const only = process.argv.slice(2);
const buildCode = await run(process.execPath, ["scripts/build.ts"], process.env);
if (buildCode !== 0) process.exit(buildCode);

const servers = await startServers();
const scratch = mkdtempSync(path.join(tmpdir(), "assetkit-tests-"));
let code = 1;
try {
  const files = only.length > 0 ? only : testFiles("test").sort();
  const exitGuard = pathToFileURL(path.resolve("test/helpers/exit-guard.ts")).href;
  code = await run(process.execPath, ["--test", "--test-concurrency=3", "--import", exitGuard, ...files], {
    ...process.env,
    ...servers.env,
    ASSETKIT_TEST_ALL_STORES: "1",
    TMPDIR: scratch,
    NODE_COMPILE_CACHE: path.join(scratch, "node-compile-cache"),
  });
} finally {
  await servers.stop();
  rmSync(scratch, { recursive: true, force: true });
}
process.exit(code);
