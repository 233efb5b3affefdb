// assetkit.yml: optional project configuration (store, versioning, assets dir, the specs a project needs).
import { existsSync, promises as fs } from "node:fs";
import path from "node:path";
import { UsageError } from "../base/errors.ts";
import { schemeNamed, type SchemeName } from "../registry/versioning.ts";
import { layoutNamed, type LayoutName } from "../registry/layout.ts";
import { parseTrustPolicy, type TrustPolicy } from "../trust/policy.ts";

export interface Config {
  /** The config file read, if any. */
  file?: string;
  /** Relative paths in the config are relative to this folder (the config's, else the working dir). */
  dir: string;
  store?: string;
  versioning?: SchemeName;
  /** The layout versions are written in (content-addressed or modelkit); unset: each follows its previous version's. */
  layout?: LayoutName;
  assetsDir?: string;
  assets: string[];
  /** Protected channels: who may move them (by GITHUB_REF) and what they may point at. */
  channels: Record<string, ChannelPolicy>;
  /** Which assets must be signed, and by whom (docs/trust.md); absent: signatures are not checked. */
  trust?: TrustPolicy;
}

export interface ChannelPolicy {
  /** Globs of GITHUB_REF allowed to move the channel (refs/tags/v*); absent: any ref. */
  refs?: string[];
  /** Refuse versions without checksums (written by modelkit). */
  requireVerified: boolean;
}

const DEFAULT_FILES = ["assetkit.yml", "assetkit.yaml"];
const KEYS = new Set(["store", "versioning", "layout", "assets-dir", "assets", "channels", "trust"]);

export async function loadConfig(explicit?: string): Promise<Config> {
  const file = explicit ? path.resolve(explicit) : DEFAULT_FILES.map((f) => path.resolve(f)).find((f) => existsSync(f));
  if (!file) return { dir: process.cwd(), assets: [], channels: {} };
  const raw = await readMapping(file, "config file", KEYS);
  const stringAt = (key: string): string | undefined => {
    const value = raw[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "string") throw new UsageError(`${file}: ${key} must be a string`);
    return value;
  };
  const assets = raw.assets ?? [];
  if (!Array.isArray(assets) || assets.some((a) => typeof a !== "string")) throw new UsageError(`${file}: assets must be a list of specs`);
  const versioning = stringAt("versioning");
  const config: Config = { file, dir: path.dirname(file), assets: assets as string[], channels: parseChannels(raw.channels, file) };
  const store = stringAt("store");
  const assetsDir = stringAt("assets-dir");
  if (store !== undefined) config.store = store;
  if (assetsDir !== undefined) config.assetsDir = path.resolve(config.dir, assetsDir);
  if (versioning !== undefined) config.versioning = schemeNamed(versioning).name;
  const layout = layoutNamed(stringAt("layout"));
  if (layout !== undefined) config.layout = layout;
  if (raw.trust !== undefined) config.trust = await parseTrustPolicy(raw.trust, file, config.dir);
  return config;
}

/**
 * The trust policy of a file holding only a `trust:` block (ASSETKIT_TRUST_POLICY: the storage initializer's,
 * mounted from a ConfigMap); key paths in it are relative to it.
 */
export async function loadTrustPolicyFile(file: string): Promise<TrustPolicy> {
  const full = path.resolve(file);
  const raw = await readMapping(full, "trust policy file", new Set(["trust"]));
  if (raw.trust === undefined) throw new UsageError(`${full} has no trust: block`);
  return parseTrustPolicy(raw.trust, full, path.dirname(full));
}

/** A YAML file holding a mapping of `keys` (any other key is a usage error). */
async function readMapping(file: string, what: string, keys: ReadonlySet<string>): Promise<Record<string, unknown>> {
  const text = await fs.readFile(file, "utf8").catch(() => {
    throw new UsageError(`cannot read the ${what} ${file}`);
  });
  const { default: YAML } = await import("yaml"); // only where there is a config file: ~5 ms of every start-up
  let doc: unknown;
  try {
    doc = YAML.parse(text) ?? {};
  } catch (err) {
    throw new UsageError(`${file} is not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw new UsageError(`${file} must be a mapping of keys (${[...keys].join(", ")})`);
  const raw = doc as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!keys.has(key)) throw new UsageError(`${file}: unknown key ${JSON.stringify(key)} (known: ${[...keys].join(", ")})`);
  }
  return raw;
}

/** `channels: {production: {refs: ["refs/tags/v*"], require-verified: true}}`. */
function parseChannels(value: unknown, file: string): Record<string, ChannelPolicy> {
  if (value === undefined || value === null) return {};
  const bad = (what: string): never => {
    throw new UsageError(`${file}: channels${what}`);
  };
  if (typeof value !== "object" || Array.isArray(value)) bad(" must map channel names to {refs, require-verified}");
  const out: Record<string, ChannelPolicy> = {};
  for (const [channel, policy] of Object.entries(value as Record<string, unknown>)) {
    if (typeof policy !== "object" || policy === null || Array.isArray(policy)) bad(`.${channel} must be a mapping (refs, require-verified)`);
    const { refs, "require-verified": requireVerified, ...unknown } = policy as Record<string, unknown>;
    const extra = Object.keys(unknown)[0];
    if (extra !== undefined) bad(`.${channel}: unknown key ${JSON.stringify(extra)} (known: refs, require-verified)`);
    if (refs !== undefined && (!Array.isArray(refs) || refs.some((r) => typeof r !== "string"))) bad(`.${channel}.refs must be a list of ref patterns`);
    if (requireVerified !== undefined && typeof requireVerified !== "boolean") bad(`.${channel}.require-verified must be true or false`);
    out[channel] = { ...(refs ? { refs: refs as string[] } : {}), requireVerified: requireVerified === true };
  }
  return out;
}
