// Below the supported Node.js, the CLI and the storage initializer say which version they need, in one line,
// before loading a bundle that would fail with a stack trace.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import semver from "semver";
import { MINIMUM_NODE } from "../../src/faces/supported-node.ts";
import { runCli, scratch } from "../helpers/cli.ts";

/** A Node.js on this machine older than MINIMUM_NODE (the system's own, or one on PATH), and its version. */
function olderNode(): { node: string; version: string } | undefined {
  const candidates = ["/usr/bin/node", "/usr/local/bin/node", ...(process.env.PATH ?? "").split(path.delimiter).map((dir) => path.join(dir, "node"))];
  for (const node of candidates.filter((file) => existsSync(file))) {
    const version = execFileSync(node, ["-p", "process.versions.node"], { encoding: "utf8" }).trim();
    if (semver.lt(version, MINIMUM_NODE)) return { node, version };
  }
  return undefined;
}

const older = olderNode();

describe(`below Node.js ${MINIMUM_NODE}`, { skip: older ? false : `no Node.js older than ${MINIMUM_NODE} on this machine` }, () => {
  for (const [program, bin, args] of [
    ["assetkit", "dist/cli.js", ["--help"]],
    ["assetkit-storage-initializer", "dist/storage-initializer.js", ["assetkit://#models/x:1", "out"]],
  ] as const) {
    it(`${program} names the version it needs and the one found, and exits 2`, async () => {
      const r = await runCli([...args], { cwd: await scratch(), cli: path.resolve(bin), node: older!.node });
      assert.equal(r.stderr, `error: ${program} needs Node.js ${MINIMUM_NODE} or later; this is Node.js ${older!.version}\n`);
      assert.equal(r.stdout, "");
      assert.equal(r.code, 2);
    });
  }
});
