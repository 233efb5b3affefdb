// Two kinds of failure, mapped to exit codes by the faces: the user asked for something malformed (2),
// or the work could not be done: store, network, integrity (1).

/** A malformed request: bad spec, bad flag, bad config. Exit status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** A request that was well-formed but failed: conflict, missing version, integrity. Exit status 1. */
export class AssetError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AssetError";
  }
}

export function exitCodeOf(err: unknown): 1 | 2 {
  return err instanceof UsageError ? 2 : 1;
}
