// Everything a command needs, resolved once from flags, environment and config, in the documented order.
import path from "node:path";
import { AssetsDir } from "../local/assets-dir.ts";
import { loadConfig, loadTrustPolicyFile, type Config } from "../project/config.ts";
import type { CrossRunCache } from "../local/cross-run-cache.ts";
import { UsageError } from "../base/errors.ts";
import { readLockfile, type Lockfile } from "../project/lockfile.ts";
import { Registry } from "../registry/registry.ts";
import type { AssetRegistry } from "../registry/asset-registry.ts";
import { allowNativeHash } from "../hashing/part-hash.ts";
import { isOciUri, localStoreRoot, openStore } from "../store/uri.ts";
import type { Store } from "../store/store.ts";
import { tuningFromEnv, type Tuning } from "../store/tuning.ts";
import { Transfers, transferSettings } from "../transfer/engine.ts";
import { schemeNamed } from "../registry/versioning.ts";
import { layoutNamed } from "../registry/layout.ts";
import { trustedRootSource, type TrustedRootSource } from "../trust/keyless.ts";

export interface Reporter {
  info(message: string): void;
  warn(message: string): void;
  /** Progress of a long transfer under `label` (bytes, and files when known); faces decide how (and whether) to show it. */
  progress?(done: number, total: number, label: string, files?: { done: number; total: number }): void;
}

export interface GlobalOptions {
  store?: string;
  config?: string;
  lockfile?: string;
  assetsDir?: string;
  versioning?: string;
  /** The layout versions are written in (--layout, the Action's layout input); else assetkit.yml's. */
  layout?: string;
  unsafePublish?: boolean;
  /** Verify keyless signatures without network: the trust-config's root, else the one Sigstore's TUF client ships. */
  offline?: boolean;
  /** Lists GitHub attestations (a rule with require-attestation) and records them (publish --attest); default GITHUB_TOKEN. */
  githubToken?: string;
}

export interface Context {
  config: Config;
  /** The assets of the command's store, whatever its layout. */
  registry: AssetRegistry;
  assetsDir: AssetsDir;
  lockfilePath: string;
  reporter: Reporter;
  /** Transfer sizes, time budgets and the hash switch (ASSETKIT_CONCURRENCY, _PART_SIZE, _RETRIES, _IDLE_TIMEOUT, _TIMEOUT, _NATIVE_HASH), read once. */
  tuning: Tuning;
  /** The one pool of download requests (ASSETKIT_CONCURRENCY) every local copy of this run shares. */
  transfers: Transfers;
  /** Opens another store (promote --to, an import source) with this context's tuning; a relative path is relative to `baseDir` (default the working directory). */
  openStore(uri: string, baseDir?: string): Promise<Store>;
  /** The assets of another store (promote --to), whatever its layout, with this context's settings; `baseDir` as for openStore. */
  openRegistry(uri: string, baseDir?: string): Promise<AssetRegistry>;
  /** An assets dir at `root` (sync's dir, a download's staging folder) on this context's transfers. */
  assetsDirAt(root: string): AssetsDir;
  readLock(): Promise<Lockfile | undefined>;
  /** The folder of a local or mounted store (file:// or a path), where its objects can be read in place; undefined for a remote one. */
  storeRoot?: string;
  /** Asset versions kept between CI runs (the Action's Actions cache); fetch restores from it before downloading. */
  crossRunCache?: CrossRunCache;
  /** The Sigstore trusted root keyless signatures are checked against (asked only when one is). */
  trustedRoots: TrustedRootSource;
  /** --offline: nothing but store requests (keyless roots from files; attestations cannot be checked). */
  offline: boolean;
  /** For GitHub's attestations API: listing (require-attestation) and recording (--attest). */
  githubToken?: string;
}

const DEFAULT_STORE = ".assetkit/store";
const DEFAULT_ASSETS_DIR = ".assetkit/assets";

export async function createContext(options: GlobalOptions, reporter: Reporter, env: NodeJS.ProcessEnv = process.env): Promise<Context> {
  const config = await loadConfig(options.config);
  // A policy file given to the process (the storage initializer's ConfigMap) takes the place of the config's.
  if (env.ASSETKIT_TRUST_POLICY) config.trust = await loadTrustPolicyFile(env.ASSETKIT_TRUST_POLICY);
  const storeUri = options.store ?? env.ASSETKIT_STORE ?? config.store ?? modelkitStore(env) ?? DEFAULT_STORE;
  // A relative store path in the config file is relative to the config file.
  const storeBase = options.store === undefined && env.ASSETKIT_STORE === undefined && config.store !== undefined ? config.dir : process.cwd();
  const tuning = tuningFromEnv(env);
  allowNativeHash(tuning.nativeHash); // the hash pool and the hashers are the process's: the switch is too
  const settings = transferSettings(tuning);
  const transfers = new Transfers(settings);
  // The Action's input is checked here (the CLI's flag by its choices, the config's when read).
  const versioning = schemeNamed(options.versioning ?? config.versioning ?? "semver").name;
  const layout = layoutNamed(options.layout ?? config.layout);
  const layoutOptions = { versioning, unsafePublish: options.unsafePublish ?? false, settings, ...(layout ? { layout } : {}) };
  const githubToken = options.githubToken ?? env.GITHUB_TOKEN;
  const openRegistry = async (uri: string, baseDir: string): Promise<AssetRegistry> => {
    if (!isOciUri(uri)) return new Registry(await openStore(uri, baseDir, tuning), { ...layoutOptions, warn: (m) => reporter.warn(m) });
    // Loaded for an oci:// store only, as each backend is (store/uri.ts): the layout and its client would cost the
    // start-up of every command on another store.
    const [{ OciLayout }, { openGitHubPackages, openOciClient, parseOciUri }] = await Promise.all([
      import("../registry/oci/oci-layout.ts"),
      import("../store/oci/open.ts"),
    ]);
    const location = parseOciUri(uri);
    // The Action's github-token counts as GITHUB_TOKEN (ghcr.io's credentials in Actions, docs/oci.md §7).
    const ociEnv = githubToken ? { ...env, GITHUB_TOKEN: githubToken } : env;
    const packages = openGitHubPackages(location, tuning, ociEnv);
    return new OciLayout(openOciClient(location, tuning, ociEnv), location, {
      ...layoutOptions,
      warn: (m) => reporter.warn(m),
      ...(packages ? { packages } : {}),
    });
  };
  const registry = await openRegistry(storeUri, storeBase);
  const assetsDir = new AssetsDir(options.assetsDir ?? env.ASSETKIT_ASSETS_DIR ?? env.MODELKIT_ASSETS_DIR ?? config.assetsDir ?? DEFAULT_ASSETS_DIR, transfers);
  const lockfilePath = path.resolve(options.lockfile ?? path.join(config.dir, "assets.lock"));
  const storeRoot = localStoreRoot(storeUri, storeBase);
  const offline = options.offline ?? (env.ASSETKIT_OFFLINE === "1" || env.ASSETKIT_OFFLINE === "true");
  return {
    config,
    registry,
    assetsDir,
    lockfilePath,
    reporter,
    tuning,
    transfers,
    openStore: (uri, baseDir = process.cwd()) => openStore(uri, baseDir, tuning),
    openRegistry: (uri, baseDir = process.cwd()) => openRegistry(uri, baseDir),
    assetsDirAt: (root) => new AssetsDir(root, transfers),
    readLock: () => readLockfile(lockfilePath),
    trustedRoots: trustedRootSource({ offline, cacheDir: path.join(assetsDir.root, ".assetkit", "tuf") }),
    offline,
    ...(githubToken ? { githubToken } : {}),
    ...(storeRoot ? { storeRoot } : {}),
  };
}

/** modelkit's MODELKIT_STORAGE_PROVIDER / _BUCKET / _PREFIX (default prefix modelkit-assets) as a store URI. */
function modelkitStore(env: NodeJS.ProcessEnv): string | undefined {
  const provider = env.MODELKIT_STORAGE_PROVIDER;
  if (!provider) return undefined;
  const bucket = env.MODELKIT_STORAGE_BUCKET;
  if (!bucket) throw new UsageError("MODELKIT_STORAGE_PROVIDER is set but MODELKIT_STORAGE_BUCKET is not");
  const prefix = env.MODELKIT_STORAGE_PREFIX ?? "modelkit-assets";
  const scheme = { s3: "s3", gcs: "gs", az: "az", local: "" }[provider];
  if (scheme === undefined) throw new UsageError(`unsupported MODELKIT_STORAGE_PROVIDER ${JSON.stringify(provider)} (use s3, gcs, az or local)`);
  return scheme ? `${scheme}://${bucket}/${prefix}` : path.join(bucket, prefix);
}
