import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { importCycles, importGraph, layerViolations } from "../../scripts/check-imports.ts";

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(tmpdir(), "cycles-"));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    writeFileSync(path.join(root, name), text);
  }
  return root;
}

describe("the import rules lint step", () => {
  it("finds a cycle through a type-only import and a lazy import, and names its modules", () => {
    const root = tree({
      "a.ts": 'import type { B } from "./sub/b.ts";\nexport type A = B;\n',
      "sub/b.ts": 'export type B = number;\nexport const c = () => import("../c.ts");\n',
      "c.ts": 'import type { A } from "./a.ts";\nexport type C = A;\n',
      "leaf.ts": 'import { readFileSync } from "node:fs";\nimport type { A } from "./a.ts";\nexport const x: A | typeof readFileSync = 1;\n',
    });
    const cycles = importCycles(importGraph(root));
    assert.deepEqual(
      cycles.map((c) => c.map((f) => path.relative(root, f))),
      [["a.ts", "c.ts", "sub/b.ts"]],
    );
  });

  it("names an import into a peer or a higher folder, and allows one into a lower folder", () => {
    const root = tree({
      "low/a.ts": "export const a = 1;\n",
      "mid/b.ts": 'import { a } from "../low/a.ts";\nexport const b = a;\n',
      "mid/c.ts": 'import type { P } from "../peer/p.ts";\nexport type C = P;\n',
      "peer/p.ts": 'export type P = number;\nexport const up = () => import("../mid/b.ts");\n',
    });
    const lines = layerViolations(importGraph(root), root, [["mid", "peer"], ["low"]]).map((l) => l.replaceAll(root + path.sep, ""));
    assert.deepEqual(lines.sort(), [
      "mid/c.ts → peer/p.ts (mid may import only from folders below it)",
      "peer/p.ts → mid/b.ts (peer may import only from folders below it)",
    ]);
  });

  it("exits 1 on a tree with a cycle and 0 on src/ as it is", () => {
    const cyclic = tree({ "x.ts": 'import "./y.ts";\n', "y.ts": 'import "./x.ts";\n' });
    const bad = spawnSync(process.execPath, ["scripts/check-imports.ts", cyclic], { encoding: "utf8" });
    assert.equal(bad.status, 1, bad.stderr);
    assert.match(bad.stderr, /import cycle among: .*x\.ts, .*y\.ts/);
    const good = spawnSync(process.execPath, ["scripts/check-imports.ts", "src"], { encoding: "utf8" });
    assert.equal(good.status, 0, good.stderr);
  });
});
