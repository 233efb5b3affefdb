// The tools the benchmark compares, and the command each one runs to upload a dataset to, or download it from,
// the same MinIO. Every tool runs with its own defaults (concurrency, part sizes), configured through env and
// flags only: the comparison is what a user gets out of the box. Installed by bench/install-tools.sh.
import { execFile } from "node:child_process";
import { accessSync, constants, existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import type { Dataset } from "./datasets.ts";
import type { Command } from "./measure.ts";

const run = promisify(execFile);

export type ToolName = "assetkit" | "assetkit-1cpu" | "assetkit-2cpu" | "s5cmd" | "aws" | "rclone" | "modelkit" | "oras";
/** The tools of the MinIO cases (oras is the registry cases' peer alone: makeRegistryTools). */
export type S3ToolName = Exclude<ToolName, "oras">;
export const TOOL_NAMES: readonly S3ToolName[] = ["assetkit", "assetkit-1cpu", "assetkit-2cpu", "s5cmd", "aws", "rclone", "modelkit"];
/** assetkit pinned to 1 and to 2 cores (taskset; MinIO is not pinned): how it scales with cores. */
export const PINNED: readonly S3ToolName[] = ["assetkit-1cpu", "assetkit-2cpu"];

/** The MinIO every tool talks to (directly: the request counter is only for the request-count scenarios). */
export interface S3Target {
  endpoint: string;
  bucket: string;
  accessKey: string;
  secretKey: string;
}

/** A version that assetkit published (major-minor, so modelkit reads it too) and that every tool downloads. */
export interface PublishedAsset {
  prefix: string;
  name: string;
  version: string;
  dataset: Dataset;
}

export interface ToolPaths {
  /** The assetkit CLI (a snapshot of dist/, run with this Node). */
  cli: string;
  s5cmd: string;
  aws: string;
  rclone: string;
  /** The python of the test servers' virtualenv, which has modelkit. */
  python: string;
  /** Fetches with modelkit's AssetsManager (the interop tests' script). */
  modelkitFetch: string;
  /** Pushes with modelkit's StorageProvider. */
  modelkitPush: string;
  /** The ORAS CLI: the registry cases' peer. */
  oras: string;
}

export interface Tool {
  name: ToolName;
  upload(dataset: Dataset, prefix: string): Command;
  download(asset: PublishedAsset, dest: string): Command;
}

/** Where the tools are; throws one message naming every missing tool and how to install it. */
export function locateTools(root: string, gobin: string, assetkitCli: string): ToolPaths {
  const paths: ToolPaths = {
    cli: assetkitCli,
    s5cmd: path.join(gobin, "s5cmd"),
    aws: path.join(root, ".test-servers/bench-venv/bin/aws"),
    rclone: onPath("rclone") ?? "(not on PATH)",
    python: path.join(root, ".test-servers/venv/bin/python"),
    modelkitFetch: path.join(root, "test/interop/modelkit_fetch.py"),
    modelkitPush: path.join(root, "bench/modelkit_push.py"),
    oras: path.join(gobin, "oras"),
  };
  const missing = Object.entries(paths)
    .filter(([, file]) => !existsSync(file))
    .map(([name, file]) => `${name}: ${file}`);
  if (missing.length) throw new Error(`benchmark tools missing: ${missing.join(", ")}; run 'bash bench/install-tools.sh' (npm run bench does)`);
  return paths;
}

function onPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    const file = path.join(dir, command);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Where a tool runs: `cwd`, with HOME `home` (so no user config leaks in) and the target's credentials. */
export interface Place {
  target: S3Target;
  home: string;
  cwd: string;
}

function commandIn(place: Place, file: string, args: string[], extraEnv: Record<string, string> = {}): Command {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: place.home,
    LANG: "C.UTF-8",
    AWS_ACCESS_KEY_ID: place.target.accessKey,
    AWS_SECRET_ACCESS_KEY: place.target.secretKey,
    AWS_REGION: "us-east-1",
    AWS_DEFAULT_REGION: "us-east-1",
    AWS_EC2_METADATA_DISABLED: "true",
  };
  return { file, args, env: { ...env, ...extraEnv }, cwd: place.cwd };
}

/** An assetkit CLI command on the store `prefix` of the place's bucket, with --json and no progress output. */
export function assetkitCommand(cli: string, place: Place, prefix: string, args: string[]): Command {
  return assetkitOn(cli, place, `s3://${place.target.bucket}/${prefix}?endpoint=${place.target.endpoint}`, args);
}

function assetkitOn(cli: string, place: Place, store: string, args: string[]): Command {
  return commandIn(place, process.execPath, [cli, ...args, "--store", store, "--quiet", "--json"]);
}

const assetName = (dataset: Dataset): string => `bench/${dataset.id}`;
const publishArgs = (dataset: Dataset): string[] => ["publish", dataset.path, assetName(dataset), "--versioning", "major-minor"];
const fetchArgs = (asset: PublishedAsset, dest: string): string[] => ["fetch", `${asset.name}:${asset.version}`, "--assets-dir", dest];

/**
 * The registry cases' tools on the registry at `registry` (host:port, loopback: plain HTTP): assetkit on
 * `oci://<registry>/<prefix>` (repository `<prefix>/bench/<dataset>`), and `oras push`/`oras pull` on the same
 * repositories and tags. oras pushes the same files as separate layers, titled with the same relative paths (the
 * folder's files named one by one: a folder argument would become one tar+gzip layer, another artifact).
 */
export function makeRegistryTools(paths: ToolPaths, place: Place, registry: string): { assetkit: Tool; oras: Tool } {
  const oci = (prefix: string): string => `oci://${registry}/${prefix}`;
  return {
    assetkit: {
      name: "assetkit",
      upload: (dataset, prefix) => assetkitOn(paths.cli, place, oci(prefix), publishArgs(dataset)),
      download: (asset, dest) => assetkitOn(paths.cli, place, oci(asset.prefix), fetchArgs(asset, dest)),
    },
    oras: {
      name: "oras",
      upload: (dataset, prefix) => ({
        ...commandIn(place, paths.oras, [
          "push",
          "--plain-http",
          "--no-tty",
          `${registry}/${prefix}/${assetName(dataset)}:1.0`,
          ...(dataset.isFile ? [path.basename(dataset.path)] : relativeFiles(dataset.path)),
        ]),
        cwd: dataset.isFile ? path.dirname(dataset.path) : dataset.path,
      }),
      download: (asset, dest) =>
        commandIn(place, paths.oras, ["pull", "--plain-http", "--no-tty", `${registry}/${asset.prefix}/${asset.name}:${asset.version}`, "--output", dest]),
    },
  };
}

/** The regular files under `dir`, relative to it, sorted. */
function relativeFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

/** The tools, each building its commands for the place's MinIO. */
export function makeTools(paths: ToolPaths, place: Place): Record<S3ToolName, Tool> {
  const { target, home } = place;
  const command = (file: string, args: string[], extraEnv: Record<string, string> = {}): Command => commandIn(place, file, args, extraEnv);
  const s3 = (key: string): string => `s3://${target.bucket}/${key}`;
  const keyOf = (asset: PublishedAsset): string => `${asset.prefix}/${asset.name}/${asset.version}`;
  const fileName = (dataset: Dataset): string => path.basename(dataset.path);

  // rclone: a remote defined by environment variables alone (RCLONE_CONFIG names a file that does not exist).
  const rcloneEnv = {
    RCLONE_CONFIG: path.join(home, "rclone.conf"),
    RCLONE_CONFIG_BENCH_TYPE: "s3",
    RCLONE_CONFIG_BENCH_PROVIDER: "Minio",
    RCLONE_CONFIG_BENCH_ENDPOINT: target.endpoint,
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: target.accessKey,
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: target.secretKey,
    RCLONE_CONFIG_BENCH_REGION: "us-east-1",
  };
  const rclone = (key: string): string => `bench:${target.bucket}/${key}`;

  const modelkitEnv = (prefix: string): Record<string, string> => ({
    MODELKIT_STORAGE_PROVIDER: "s3",
    MODELKIT_STORAGE_BUCKET: target.bucket,
    MODELKIT_STORAGE_PREFIX: prefix,
    MODELKIT_ASSETS_VERSIONING_SYSTEM: "major_minor",
    S3_ENDPOINT: target.endpoint,
    PYTHONDONTWRITEBYTECODE: "1",
  });

  const assetkit: Tool = {
    name: "assetkit",
    upload: (dataset, prefix) => assetkitCommand(paths.cli, place, prefix, publishArgs(dataset)),
    download: (asset, dest) => assetkitCommand(paths.cli, place, asset.prefix, fetchArgs(asset, dest)),
  };
  const pinned = (name: ToolName, cpus: string): Tool => {
    const wrap = (c: Command): Command => ({ ...c, file: "taskset", args: ["-c", cpus, c.file, ...c.args] });
    return { name, upload: (dataset, prefix) => wrap(assetkit.upload(dataset, prefix)), download: (asset, dest) => wrap(assetkit.download(asset, dest)) };
  };

  return {
    assetkit,
    "assetkit-1cpu": pinned("assetkit-1cpu", "0"),
    "assetkit-2cpu": pinned("assetkit-2cpu", "0,1"),
    s5cmd: {
      name: "s5cmd",
      // --log error: no line per object on stdout (the other tools print no progress either).
      upload: (dataset, prefix) =>
        command(paths.s5cmd, [
          "--endpoint-url",
          target.endpoint,
          "--log",
          "error",
          "cp",
          dataset.isFile ? dataset.path : `${dataset.path}/*`,
          `${s3(prefix)}/`,
        ]),
      download: (asset, dest) =>
        command(paths.s5cmd, [
          "--endpoint-url",
          target.endpoint,
          "--log",
          "error",
          "cp",
          asset.dataset.isFile ? s3(keyOf(asset)) : `${s3(keyOf(asset))}/*`,
          asset.dataset.isFile ? path.join(dest, fileName(asset.dataset)) : `${dest}/`,
        ]),
    },
    aws: {
      name: "aws",
      upload: (dataset, prefix) =>
        command(paths.aws, [
          "--endpoint-url",
          target.endpoint,
          "s3",
          "cp",
          "--only-show-errors",
          ...(dataset.isFile ? [dataset.path, `${s3(prefix)}/${fileName(dataset)}`] : ["--recursive", dataset.path, `${s3(prefix)}/`]),
        ]),
      download: (asset, dest) =>
        command(paths.aws, [
          "--endpoint-url",
          target.endpoint,
          "s3",
          "cp",
          "--only-show-errors",
          ...(asset.dataset.isFile ? [s3(keyOf(asset)), path.join(dest, fileName(asset.dataset))] : ["--recursive", `${s3(keyOf(asset))}/`, dest]),
        ]),
    },
    rclone: {
      name: "rclone",
      upload: (dataset, prefix) =>
        command(
          paths.rclone,
          dataset.isFile ? ["copyto", dataset.path, rclone(`${prefix}/${fileName(dataset)}`)] : ["copy", dataset.path, rclone(prefix)],
          rcloneEnv,
        ),
      download: (asset, dest) =>
        command(
          paths.rclone,
          asset.dataset.isFile ? ["copyto", rclone(keyOf(asset)), path.join(dest, fileName(asset.dataset))] : ["copy", rclone(keyOf(asset)), dest],
          rcloneEnv,
        ),
    },
    modelkit: {
      name: "modelkit",
      upload: (dataset, prefix) => command(paths.python, [paths.modelkitPush, dataset.path, assetName(dataset)], modelkitEnv(prefix)),
      download: (asset, dest) => command(paths.python, [paths.modelkitFetch, dest, `${asset.name}:${asset.version}`], modelkitEnv(asset.prefix)),
    },
  };
}

/** Each tool's version as it reports it (a tool that cannot say is "unknown", never a failure). */
export async function toolVersions(paths: ToolPaths): Promise<Record<ToolName, string>> {
  const first = async (file: string, args: string[], pick: (out: string) => string | undefined): Promise<string> => {
    try {
      const { stdout, stderr } = await run(file, args, { encoding: "utf8" });
      return pick(`${stdout}\n${stderr}`.trim()) ?? "unknown";
    } catch {
      return "unknown";
    }
  };
  const [assetkit, s5cmd, aws, rclone, modelkit, oras] = await Promise.all([
    first(process.execPath, [paths.cli, "--version"], (out) => out.split("\n")[0]),
    // s5cmd built from its module reports v0.0.0-dev: its module version is in the binary's build info.
    first("go", ["version", "-m", paths.s5cmd], (out) => /\bmod\s+github\.com\/peak\/s5cmd\/v2\s+(\S+)/.exec(out)?.[1]),
    first(paths.aws, ["--version"], (out) => /aws-cli\/(\S+)/.exec(out)?.[1]),
    first(paths.rclone, ["version"], (out) => /rclone (v\S+)/.exec(out)?.[1]),
    first(paths.python, ["-c", "import importlib.metadata as m; print(m.version('modelkit'))"], (out) => out.split("\n")[0]),
    first(paths.oras, ["version"], (out) => /Version:\s+(\S+)/.exec(out)?.[1]),
  ]);
  return { assetkit, "assetkit-1cpu": assetkit, "assetkit-2cpu": assetkit, s5cmd, aws, rclone, modelkit, oras };
}

/** The tool as the table names it. */
export function toolLabel(name: ToolName, version: string): string {
  switch (name) {
    case "aws":
      return `aws CLI ${version} (v1)`;
    case "rclone":
      return `rclone ${version} (Debian)`;
    case "assetkit-1cpu":
      return `assetkit ${version}, taskset 1 core`;
    case "assetkit-2cpu":
      return `assetkit ${version}, taskset 2 cores`;
    default:
      return `${name} ${version}`;
  }
}
