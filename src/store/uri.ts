// Store URI → Store. The only place that knows which backend serves which URI.
import path from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError } from "../errors.ts";
import { FsStore } from "./fs.ts";
import type { Store } from "./store.ts";

/** Opens the store at `uri`: file:///abs, a plain path (relative to `baseDir`). */
export function openStore(uri: string, baseDir: string = process.cwd()): Store {
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(uri)?.[1]?.toLowerCase();
  if (scheme === undefined) return new FsStore(path.resolve(baseDir, uri), uri);
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new UsageError(`bad store URI ${JSON.stringify(uri)}`);
  }
  switch (scheme) {
    case "file":
      return new FsStore(fileURLToPath(url), uri);
    default:
      throw new UsageError(`unsupported store URI scheme ${scheme}:// (use a local path or file://)`);
  }
}
