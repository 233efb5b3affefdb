// The Action's interface in one place: its commands, the inputs action.ts reads and the outputs it sets. A test
// checks these tables against action.yml, the README and what action.ts does, so they cannot drift apart.

/** The values of the `command` input. */
export const ACTION_COMMANDS = ["publish", "import", "fetch", "resolve", "lock", "promote", "verify", "comment", "history", "gc", "prune"] as const;

export type ActionCommand = (typeof ACTION_COMMANDS)[number];

/** action.ts reads only these names. */
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
  "sign-key",
  "versioning",
  "layout",
  "source",
  "include",
  "exclude",
  "unpack",
  "max-unpacked-size",
  "max-entries",
  "assets-dir",
  "lockfile",
  "frozen",
  "update",
  "cache",
  "cache-save-branches",
  "cache-max-size",
  "older-than",
  "dry-run",
  "remove-unlisted",
  "keep-last",
  "per-series",
  "keep-within",
  "keep-history",
  "keep-locked",
  "notify",
  "github-token",
  "comment-author",
  "channel",
  "to",
  "rollback",
  "allow-unverified",
  "sign",
  "sigstore",
  "attest",
  "offline",
] as const;

export type ActionInput = (typeof ACTION_INPUTS)[number];

/**
 * The outputs: the commands that set each (`all`: every command, after it ran) and what it holds, which is also its
 * description in action.yml. action.ts sets only these names, through its typed setOutput.
 */
export const ACTION_OUTPUTS = {
  version: {
    setBy: ["publish", "import", "promote"],
    value: "publish/import: the version published (or the unchanged latest, with if-changed); promote: the version the channel now points to",
  },
  spec: { setBy: ["publish", "import", "promote"], value: "publish/import: name:version; promote: name:channel (name:version with to and no channel)" },
  digest: {
    setBy: ["publish", "import", "promote"],
    value: "publish/import/promote: the asset digest, sha256:… (promote: empty for a version without checksums, written by modelkit)",
  },
  published: { setBy: ["publish", "import"], value: "publish/import: true when a new version was written" },
  resolved: { setBy: ["fetch", "resolve", "lock"], value: "fetch/resolve/lock: JSON object spec → {name, version, digest, path and signer (fetch only)}" },
  paths: { setBy: ["fetch"], value: "fetch: local paths, one per line, in the order of the specs" },
  path: { setBy: ["fetch"], value: "fetch: the local path of the first spec" },
  "cache-hit": {
    setBy: ["fetch"],
    value: "fetch: true when every asset came from the local assets dir or the Actions cache (nothing downloaded from the store)",
  },
  lockfile: { setBy: ["lock"], value: "lock: the lockfile written" },
  removed: { setBy: ["gc", "prune"], value: "gc/prune: JSON counts of what was removed (or, in a dry run, would be)" },
  "comment-url": {
    setBy: ["comment"],
    value: "comment: the URL of the PR comment (empty when the token may not write, or outside a pull request)",
  },
  copied: {
    setBy: ["promote"],
    value: "promote with to: true when the version was copied, false when the destination already held it with the same digest",
  },
  markdown: {
    setBy: "all",
    value: "every command: the step's summary table as Markdown (for gh release create --notes); unset when the step fails, but for a failed verify",
  },
  history: { setBy: ["history"], value: "history: JSON {name, store, channels: [{channel, version, history (newest first), dropped}]}" },
} as const satisfies Record<string, { setBy: readonly ActionCommand[] | "all"; value: string }>;

export type ActionOutput = keyof typeof ACTION_OUTPUTS;
