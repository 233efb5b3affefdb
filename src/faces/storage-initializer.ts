// The KServe storage-initializer face: `assetkit-storage-initializer <src-uri> <dest-path>`, KServe's contract
// for a ClusterStorageContainer. <src-uri> is assetkit://<scheme>/<bucket-or-host>/<prefix>[?query]#<spec> (the
// store URI with "://" written "/"), or assetkit://#<spec> for the store configured in the environment. Exit
// status as the CLI's: 0 done, 1 operational failure, 2 usage error.
import { downloadTo } from "../commands/download-to.ts";
import { createContext } from "../commands/context.ts";
import { UsageError, exitCodeOf } from "../base/errors.ts";
import { createProgress } from "./progress.ts";
import { scrub } from "../store/redact.ts";

const FORM =
  "assetkit://<scheme>/<bucket-or-host>/<prefix>#<spec> (scheme s3, gs, az, http, https, file or oci), e.g. assetkit://s3/ml-assets/prod#models/sentiment:production";
const USAGE = `usage: assetkit-storage-initializer <src-uri> <dest-path>\n  <src-uri>: ${FORM}, or assetkit://#<spec> for $ASSETKIT_STORE\n`;
const SCHEMES = new Set(["s3", "gs", "az", "http", "https", "file", "oci"]);

/** assetkit://… → the store URI (undefined: the environment's) and the spec. */
export function parseSourceUri(uri: string): { store?: string; spec: string } {
  const bad = (why: string): never => {
    // Shown without its query or user:pass (they may hold credentials).
    throw new UsageError(`bad source URI ${JSON.stringify(uri.replace(/\?.*?(#|$)/, "?…$1").replace(/\/[^/@?#]*@/, "/"))}: ${why}; expected ${FORM}`);
  };
  if (!uri.startsWith("assetkit://")) bad("it does not start with assetkit://");
  const rest = uri.slice("assetkit://".length);
  const hash = rest.indexOf("#");
  if (hash < 0) bad("no #<spec>");
  let spec = "";
  try {
    spec = decodeURIComponent(rest.slice(hash + 1));
  } catch {
    bad("the spec is not valid percent-encoding");
  }
  if (!spec) bad("the spec after # is empty");
  const location = rest.slice(0, hash);
  if (!location) return { spec };
  const slash = location.indexOf("/");
  const scheme = location.slice(0, slash < 0 ? location.length : slash);
  if (!SCHEMES.has(scheme)) bad(`unknown store scheme ${JSON.stringify(scheme)}`);
  const path = slash < 0 ? "" : location.slice(slash + 1);
  if (!path) bad("no bucket, container, host or path after the scheme");
  return { store: scheme === "file" ? `file:///${path.replace(/^\/+/, "")}` : `${scheme}://${path}`, spec };
}

export async function runStorageInitializer(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (argv.length === 1 && (argv[0] === "--help" || argv[0] === "-h")) {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    if (argv.length !== 2) throw new UsageError(`expected 2 arguments, got ${argv.length}\n${USAGE.trimEnd()}`);
    const [source, dest] = argv as [string, string];
    const { store, spec } = parseSourceUri(source);
    const progress = createProgress(process.stderr, { live: false });
    const ctx = await createContext(
      store ? { store } : {},
      {
        info: (m) => process.stderr.write(`${m}\n`),
        warn: (m) => process.stderr.write(`warning: ${m}\n`),
        progress: (done, total, label, files) => progress.update(done, total, label, files),
      },
      env,
    );
    const r = await downloadTo(ctx, spec, dest);
    progress.clear();
    process.stderr.write(`${r.name}:${r.version} (${r.digest ?? "no digest"}): ${r.files.length} file(s) into ${dest}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`error: ${scrub((err as Error).message)}\n`);
    if (env.ASSETKIT_DEBUG && err instanceof Error && err.stack) process.stderr.write(`${scrub(err.stack)}\n`);
    return exitCodeOf(err);
  }
}
