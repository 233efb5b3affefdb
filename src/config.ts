// assetkit.yml: optional project configuration (store, versioning, assets dir, the specs a project needs).
import { existsSync, promises as fs } from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { UsageError } from "./errors.ts";
import { schemeNamed, type SchemeName } from "./versioning.ts";

export interface Config {
  /** The config file read, if any. */
  file?: string;
  /** Relative paths in the config are relative to this folder (the config's, else the working dir). */
  dir: string;
  store?: string;
  versioning?: SchemeName;
  assetsDir?: string;
  assets: string[];
}

const DEFAULT_FILES = ["assetkit.yml", "assetkit.yaml"];
const KEYS = new Set(["store", "versioning", "assets-dir", "assets"]);

export async function loadConfig(explicit?: string): Promise<Config> {
  const file = explicit ? path.resolve(explicit) : DEFAULT_FILES.map((f) => path.resolve(f)).find((f) => existsSync(f));
  if (!file) return { dir: process.cwd(), assets: [] };
  const text = await fs.readFile(file, "utf8").catch(() => {
    throw new UsageError(`cannot read the config file ${file}`);
  });
  let doc: unknown;
  try {
    doc = YAML.parse(text) ?? {};
  } catch (err) {
    throw new UsageError(`${file} is not valid YAML: ${(err as Error).message.split("\n")[0]}`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw new UsageError(`${file} must be a mapping of keys (store, versioning, assets-dir, assets)`);
  const raw = doc as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!KEYS.has(key)) throw new UsageError(`${file}: unknown key ${JSON.stringify(key)} (known: ${[...KEYS].join(", ")})`);
  }
  const stringAt = (key: string): string | undefined => {
    const value = raw[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "string") throw new UsageError(`${file}: ${key} must be a string`);
    return value;
  };
  const assets = raw.assets ?? [];
  if (!Array.isArray(assets) || assets.some((a) => typeof a !== "string")) throw new UsageError(`${file}: assets must be a list of specs`);
  const versioning = stringAt("versioning");
  const config: Config = { file, dir: path.dirname(file), assets: assets as string[] };
  const store = stringAt("store");
  const assetsDir = stringAt("assets-dir");
  if (store !== undefined) config.store = store;
  if (assetsDir !== undefined) config.assetsDir = path.resolve(config.dir, assetsDir);
  if (versioning !== undefined) config.versioning = schemeNamed(versioning).name;
  return config;
}
