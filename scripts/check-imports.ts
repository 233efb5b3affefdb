// Lint step, the import rules of src/: no module imports another in a cycle (type-only and lazy imports count too:
// a cycle of any kind means two modules that cannot be read, moved or tested apart), and a folder imports only from
// the folders below it in LAYERS (the README's tree). Imports are read with TypeScript's own pre-processor; the
// cycles are the strongly connected components of the graph (Tarjan). Written here because the lint plugins that
// do this need a resolver package for our `.ts` specifiers.
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import ts from "typescript";

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith(".ts") ? [full] : [];
  });
}

/** Each module → the modules of the tree it imports (relative specifiers only; packages are leaves). */
export function importGraph(root: string): Map<string, string[]> {
  const files = sourceFiles(root);
  const known = new Set(files);
  return new Map(
    files.map((file) => {
      const { importedFiles } = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
      const targets = importedFiles
        .map((i) => i.fileName)
        .filter((s) => s.startsWith("."))
        .map((s) => path.join(path.dirname(file), s))
        .filter((target) => known.has(target));
      return [file, targets];
    }),
  );
}

/** The groups of modules that import each other, directly or through others (components of more than one module, or a module importing itself). */
export function importCycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (module: string): void => {
    index.set(module, index.size);
    low.set(module, index.get(module)!);
    stack.push(module);
    onStack.add(module);
    for (const next of graph.get(module) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(module, Math.min(low.get(module)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(module, Math.min(low.get(module)!, index.get(next)!));
      }
    }
    if (low.get(module) !== index.get(module)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== module);
    if (component.length > 1 || graph.get(module)!.includes(module)) cycles.push(component.sort());
  };
  for (const module of graph.keys()) if (!index.has(module)) visit(module);
  return cycles;
}

/** src/'s folders, top down; folders on one row are peers and do not import each other. */
export const LAYERS: readonly (readonly string[])[] = [
  ["faces"],
  ["commands"],
  ["github", "import"],
  ["project"],
  ["local"],
  ["trust"],
  ["registry"],
  ["transfer"],
  ["hashing"],
  ["store"],
  ["base"],
];

/** Imports from a folder of `root` into a folder that is not below it in `layers`, as "from → to" lines. */
export function layerViolations(graph: Map<string, string[]>, root: string, layers: readonly (readonly string[])[]): string[] {
  const folderOf = (file: string): string => path.relative(root, file).split(path.sep)[0]!;
  const rank = new Map(layers.flatMap((row, i) => row.map((folder) => [folder, i] as const)));
  const violations: string[] = [];
  for (const [file, targets] of graph) {
    const from = folderOf(file);
    for (const target of targets) {
      const to = folderOf(target);
      if (to === from) continue;
      const [a, b] = [rank.get(from), rank.get(to)];
      if (a === undefined || b === undefined || b <= a) violations.push(`${file} → ${target} (${from} may import only from folders below it)`);
    }
  }
  return violations;
}

if (import.meta.main) {
  const root = process.argv[2] ?? "src";
  const graph = importGraph(root);
  const cycles = importCycles(graph);
  for (const cycle of cycles) console.error(`import cycle among: ${cycle.join(", ")}`);
  const violations = layerViolations(graph, root, LAYERS);
  for (const line of violations) console.error(`import against the layers: ${line}`);
  if (cycles.length > 0) console.error(`${cycles.length} import cycle(s): move what both sides need into a module of its own`);
  if (cycles.length + violations.length > 0) process.exit(1);
}
