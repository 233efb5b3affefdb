// The Action's inputs in one table: action.ts reads only these names, and a test checks the table against
// action.yml and the README's inputs table, so the three cannot drift apart.
export const ACTION_INPUTS = [
  "command",
  "store",
  "config",
  "specs",
  "path",
  "name",
  "bump",
  "version",
  "if-changed",
  "metadata",
  "versioning",
  "assets-dir",
  "lockfile",
  "frozen",
  "update",
  "cache",
  "notify",
  "github-token",
  "comment-author",
  "channel",
  "to",
  "rollback",
  "allow-unverified",
] as const;

export type ActionInput = (typeof ACTION_INPUTS)[number];
