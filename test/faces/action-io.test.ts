// The Action's interface: one table in the code (src/faces/action-io.ts) of its inputs and one of its outputs, the same
// as action.yml declares and as the README documents (its inputs table, its list of boolean inputs and its outputs
// table), and the same commands reading each input and setting each output as src/faces/action.ts does.
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";
import { marked, type Tokens } from "marked";
import { parse } from "yaml";
import { ACTION_COMMANDS, ACTION_INPUTS, ACTION_OUTPUTS } from "../../src/faces/action-io.ts";

const README = await readFile("README.md", "utf8");

const ACTION_YML = parse(await readFile("action.yml", "utf8")) as { inputs: Record<string, unknown>; outputs: Record<string, { description: string }> };
const ACTION_SOURCE = await readFile("src/faces/action.ts", "utf8");

/** The README's table with this header: each row's names (first column, in backquotes) and the text of its second column. */
function readmeRows(header: string): { names: string[]; commands: string }[] {
  const table = marked.lexer(README).find((t): t is Tokens.Table => t.type === "table" && t.header.map((h: Tokens.TableCell) => h.text).join(" | ") === header);
  assert.ok(table, `the README has a | ${header} | table`);
  return table.rows.map(([names, commands]) => ({ names: [...names!.text.matchAll(/`([a-z-]+)`/g)].map((m) => m[1]!), commands: commands!.text }));
}

/** Per name, the commands a README table's second column gives it (`all` or `every command`: all of them). */
function readmeCommands(header: string): Map<string, Set<string>> {
  const forCommands = (text: string): string[] =>
    /\b(?:all|every command)\b/.test(text) ? [...ACTION_COMMANDS] : ACTION_COMMANDS.filter((c) => new RegExp(`\\b${c}\\b`).test(text));
  const documented = new Map<string, Set<string>>();
  for (const row of readmeRows(header)) {
    for (const name of row.names) documented.set(name, new Set([...(documented.get(name) ?? []), ...forCommands(row.commands)]));
  }
  return documented;
}

/**
 * The names src/faces/action.ts passes to one of `calls` (input, setOutput…): those used for every command (in
 * runAction, before or after its command runs) and per command those its `case` in run() uses (also through the
 * functions of the file it calls).
 */
function namesUsed(calls: string[]): { every: Set<string>; byCommand: Map<string, Set<string>> } {
  const functions = new Map(ACTION_SOURCE.split(/^(?=(?:export )?(?:async )?function )/m).map((body) => [/function (\w+)/.exec(body)?.[1] ?? "", body]));
  const run = functions.get("run")!;
  functions.delete("run"); // runAction calls it: what it uses is per command
  const call = new RegExp(`\\b(?:${calls.join("|")})\\("([a-z-]+)"`, "g");
  const used = (body: string, seen: Set<string> = new Set()): Set<string> => {
    const names = new Set([...body.matchAll(call)].map((m) => m[1]!));
    for (const [, callee] of body.matchAll(/\b(\w+)\(/g)) {
      if (!functions.has(callee!) || seen.has(callee!)) continue;
      seen.add(callee!);
      for (const name of used(functions.get(callee!)!, seen)) names.add(name);
    }
    return names;
  };
  const byCommand = new Map(
    run
      .split(/\bcase "/)
      .slice(1)
      .map((block) => [block.slice(0, block.indexOf('"')), used(block)]),
  );
  return { every: used(functions.get("runAction")!), byCommand };
}

/** Per name, the commands that use it, leaving out `except` (sorted, to compare). */
function byName(byCommand: Map<string, Set<string>>, except: Set<string> = new Set()): Record<string, string[]> {
  const commands = new Map<string, Set<string>>();
  for (const [command, names] of byCommand) for (const name of names) commands.set(name, new Set([...(commands.get(name) ?? []), command]));
  return sorted(new Map([...commands].filter(([name]) => !except.has(name))));
}

function sorted(m: Map<string, Iterable<string>>): Record<string, string[]> {
  return Object.fromEntries([...m].map(([name, cs]) => [name, [...cs].sort()]).sort(([a], [b]) => (a! < b! ? -1 : 1)));
}

// run() in src/faces/action.ts switches over ActionCommand, so tsc checks it has a case for each command.
describe("Action commands", () => {
  it("are the README's `command:` line", () => {
    const listed = /^\s*command: ((?:[a-z]+ \| )+[a-z]+)$/m.exec(README);
    assert.ok(listed, "the README's Action example lists the commands: command: publish | …");
    assert.deepEqual(listed[1]!.split(" | ").sort(), [...ACTION_COMMANDS].sort());
  });
});

describe("Action inputs", () => {
  const INPUT_TABLE = "input | for | meaning";

  it("are the same in src/faces/action-io.ts, action.yml and the README", () => {
    assert.deepEqual([...ACTION_INPUTS].sort(), Object.keys(ACTION_YML.inputs).sort(), "src/faces/action-io.ts and action.yml");

    const documented = readmeRows(INPUT_TABLE).flatMap((row) => row.names);
    const expected = ACTION_INPUTS.filter((name) => name !== "command"); // the README introduces `command` above the table
    assert.deepEqual([...new Set(documented)].sort(), [...expected].sort(), "the README's inputs table");
  });

  it("are documented for the commands that read them", () => {
    const { every, byCommand } = namesUsed(["input", "booleanInput", "lines"]);
    // Inputs every command reads (store, config…) are documented for the commands where they matter.
    assert.deepEqual(
      sorted(new Map([...readmeCommands(INPUT_TABLE)].filter(([name]) => !every.has(name)))),
      byName(byCommand, every),
      "the README's `for` column and the commands src/faces/action.ts reads each input for",
    );
  });

  it("that are boolean are the README's boolean inputs", () => {
    const listed = /Boolean inputs \(([^)]*)\)/.exec(README.replace(/\s+/g, " "));
    assert.ok(listed, "the README lists the boolean inputs: Boolean inputs (…)");
    const documented = [...listed[1]!.matchAll(/`([a-z-]+)`/g)].map((m) => m[1]!);
    const booleans = new Set([...ACTION_SOURCE.matchAll(/\bbooleanInput\("([a-z-]+)"/g)].map((m) => m[1]!));
    assert.deepEqual(documented.sort(), [...booleans].sort());
  });
});

describe("Action outputs", () => {
  const OUTPUT_TABLE = "output | set by | value";
  const setBy = new Map(Object.entries(ACTION_OUTPUTS).map(([name, o]) => [name, o.setBy === "all" ? ACTION_COMMANDS : o.setBy]));

  it("are the same in src/faces/action-io.ts, action.yml (with the same descriptions) and the README", () => {
    const declared = Object.fromEntries(Object.entries(ACTION_YML.outputs).map(([name, o]) => [name, o.description]));
    const table = Object.fromEntries(Object.entries(ACTION_OUTPUTS).map(([name, o]) => [name, o.value]));
    assert.deepEqual(declared, table, "src/faces/action-io.ts and action.yml");

    const documented = readmeRows(OUTPUT_TABLE).flatMap((row) => row.names);
    assert.deepEqual([...new Set(documented)].sort(), Object.keys(ACTION_OUTPUTS).sort(), "the README's outputs table");
  });

  it("are set by the commands the table and the README give", () => {
    const { every, byCommand } = namesUsed(["setOutput"]);
    const set = byName(byCommand);
    for (const name of every) set[name] = [...ACTION_COMMANDS].sort();
    assert.deepEqual(sorted(setBy), set, "ACTION_OUTPUTS' setBy and the commands src/faces/action.ts sets each output for");
    assert.deepEqual(sorted(readmeCommands(OUTPUT_TABLE)), set, "the README's `set by` column and the commands src/faces/action.ts sets each output for");
  });

  it("are set only through the typed setOutput of src/faces/action.ts", async () => {
    const direct = [...ACTION_SOURCE.matchAll(/\bcore\.setOutput\(/g)];
    assert.equal(direct.length, 1, "src/faces/action.ts calls core.setOutput once, in setOutput(name: ActionOutput, …)");
    const files = (await readdir("src", { recursive: true })).filter((f) => f.endsWith(".ts") && f !== path.join("faces", "action.ts"));
    for (const file of files) assert.doesNotMatch(await readFile(path.join("src", file), "utf8"), /\bsetOutput\(/, `src/${file} sets no output`);
  });
});
