// The Action's inputs: one table in the code (src/faces/action-inputs.ts), the same as action.yml declares and as the
// README documents: its inputs table (each input under the commands src/faces/action.ts reads it for) and its list of
// boolean inputs.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { marked, type Tokens } from "marked";
import { parse } from "yaml";
import { ACTION_INPUTS } from "../../src/faces/action-inputs.ts";

const README = await readFile("README.md", "utf8");

/** The README's inputs table: each row's input names (first column) and the text of its `for` column. */
function readmeInputRows(): { inputs: string[]; commands: string }[] {
  const table = marked
    .lexer(README)
    .find((t): t is Tokens.Table => t.type === "table" && t.header.map((h: Tokens.TableCell) => h.text).join() === "input,for,meaning");
  assert.ok(table, "the README has a | input | for | meaning | table");
  return table.rows.map(([names, commands]) => ({ inputs: [...names!.text.matchAll(/`([a-z-]+)`/g)].map((m) => m[1]!), commands: commands!.text }));
}

/**
 * What src/faces/action.ts reads: the inputs every command reads (in runAction, before its command runs), per command
 * the inputs its `case` in run() reads (also through the functions of the file it calls), and the boolean inputs.
 */
async function inputsRead(): Promise<{ every: Set<string>; byCommand: Map<string, Set<string>>; booleans: Set<string> }> {
  const source = await readFile("src/faces/action.ts", "utf8");
  const functions = new Map(source.split(/^(?=(?:export )?(?:async )?function )/m).map((body) => [/function (\w+)/.exec(body)?.[1] ?? "", body]));
  const run = functions.get("run")!;
  functions.delete("run"); // runAction calls it: what it reads is per command
  const reads = (body: string, seen: Set<string> = new Set()): Set<string> => {
    const names = new Set([...body.matchAll(/\b(?:input|booleanInput|lines)\("([a-z-]+)"/g)].map((m) => m[1]!));
    for (const [, callee] of body.matchAll(/\b(\w+)\(/g)) {
      if (!functions.has(callee!) || seen.has(callee!)) continue;
      seen.add(callee!);
      for (const name of reads(functions.get(callee!)!, seen)) names.add(name);
    }
    return names;
  };
  const byCommand = new Map(
    run
      .split(/\bcase "/)
      .slice(1)
      .map((block) => [block.slice(0, block.indexOf('"')), reads(block)]),
  );
  const booleans = new Set([...source.matchAll(/\bbooleanInput\("([a-z-]+)"/g)].map((m) => m[1]!));
  return { every: reads(functions.get("runAction")!), byCommand, booleans };
}

describe("Action inputs", () => {
  it("are the same in src/faces/action-inputs.ts, action.yml and the README", async () => {
    const declared = Object.keys((parse(await readFile("action.yml", "utf8")) as { inputs: Record<string, unknown> }).inputs);
    assert.deepEqual([...ACTION_INPUTS].sort(), declared.sort(), "src/faces/action-inputs.ts and action.yml");

    const documented = readmeInputRows().flatMap((row) => row.inputs);
    const expected = ACTION_INPUTS.filter((name) => name !== "command"); // the README introduces `command` above the table
    assert.deepEqual([...new Set(documented)].sort(), [...expected].sort(), "the README's inputs table");
  });

  it("are documented for the commands that read them", async () => {
    const { every, byCommand } = await inputsRead();
    const commands = [...byCommand.keys()];
    const forCommands = (commandsText: string): string[] =>
      /\ball\b/.test(commandsText) ? commands : commands.filter((c) => new RegExp(`\\b${c}\\b`).test(commandsText));
    const documented = new Map<string, Set<string>>();
    for (const row of readmeInputRows()) {
      for (const name of row.inputs) documented.set(name, new Set([...(documented.get(name) ?? []), ...forCommands(row.commands)]));
    }
    const readFor = new Map<string, Set<string>>();
    for (const [command, names] of byCommand) for (const name of names) readFor.set(name, new Set([...(readFor.get(name) ?? []), command]));
    // Inputs every command reads (store, config…) are documented for the commands where they matter.
    const table = (m: Map<string, Set<string>>) =>
      Object.fromEntries(
        [...m]
          .filter(([name]) => !every.has(name))
          .map(([name, cs]) => [name, [...cs].sort()])
          .sort(),
      );
    assert.deepEqual(table(documented), table(readFor), "the README's `for` column and the commands src/faces/action.ts reads each input for");
  });

  it("that are boolean are the README's boolean inputs", async () => {
    const listed = /Boolean inputs \(([^)]*)\)/.exec(README.replace(/\s+/g, " "));
    assert.ok(listed, "the README lists the boolean inputs: Boolean inputs (…)");
    const documented = [...listed[1]!.matchAll(/`([a-z-]+)`/g)].map((m) => m[1]!);
    assert.deepEqual(documented.sort(), [...(await inputsRead()).booleans].sort());
  });
});
