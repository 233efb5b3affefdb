// The Action's input names: one table in the code (src/action-inputs.ts), the same as action.yml declares and as
// the README's inputs table documents.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { ACTION_INPUTS } from "../src/action-inputs.ts";

describe("Action inputs", () => {
  it("are the same in src/action-inputs.ts, action.yml and the README", async () => {
    const declared = Object.keys((parse(await readFile("action.yml", "utf8")) as { inputs: Record<string, unknown> }).inputs);
    assert.deepEqual([...ACTION_INPUTS].sort(), declared.sort(), "src/action-inputs.ts and action.yml");

    const readme = await readFile("README.md", "utf8");
    const table = readme.slice(readme.indexOf("| input | for | meaning |"));
    const rows = table.slice(0, table.indexOf("\n\n")).split("\n").slice(2);
    const documented = rows.flatMap((row) => [...(row.split("|")[1] ?? "").matchAll(/`([a-z-]+)`/g)].map((m) => m[1]!));
    const expected = ACTION_INPUTS.filter((name) => name !== "command"); // the README introduces `command` above the table
    assert.deepEqual([...new Set(documented)].sort(), [...expected].sort(), "the README's inputs table");
  });
});
