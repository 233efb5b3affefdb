// The oldest Node.js that runs the CLI and the storage initializer: node:module's enableCompileCache (the CLI's
// entry) arrived in 22.8.0, Promise.withResolvers (imports) in 22.0.0. The entries check it before they load the
// bundle, which on an older Node.js fails with a stack trace (Node 20: an export of node:module that it lacks).
export const MINIMUM_NODE = "22.8.0";

/** Exits with status 2 and one line naming both versions when this Node.js is older than MINIMUM_NODE. */
export function exitUnlessSupportedNode(program: string): void {
  const found = process.versions.node.split(".").map(Number);
  const needed = MINIMUM_NODE.split(".").map(Number);
  const difference = found.map((part, i) => part - needed[i]!).find((d) => d !== 0) ?? 0;
  if (difference >= 0) return;
  process.stderr.write(`error: ${program} needs Node.js ${MINIMUM_NODE} or later; this is Node.js ${process.versions.node}\n`);
  process.exit(2);
}
