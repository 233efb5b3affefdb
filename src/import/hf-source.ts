// Importing from the Hugging Face Hub: hf://<org>/<repo>[@<revision>][/<sub/path>] (hf://datasets/<org>/<repo>
// for a dataset). The revision is resolved to its commit sha once, and everything is listed and downloaded at
// that sha, so the version pins exactly one commit. LFS files are checked against the sha256 the Hub lists,
// other files against their git blob id.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { AssetError, UsageError } from "../base/errors.ts";
import { relativePathProblem } from "../registry/paths.ts";
import { pathMatcher } from "./filter.ts";
import { HubClient, type HubEntry, type RepoType } from "./hf-hub.ts";
import { downloadAll, fingerprint, type ImportSettings, type ImportSource, type RemoteFile } from "./source.ts";

const DEFAULT_ENDPOINT = "https://huggingface.co";

export interface HfUri {
  type: RepoType;
  id: string;
  revision: string;
  /** "" for the whole repo. */
  subPath: string;
}

export function parseHfUri(uri: string): HfUri {
  const bad = (why: string): never => {
    throw new UsageError(`bad Hugging Face URI ${uri}: ${why} (write hf://org/repo[@revision][/sub/path], or hf://datasets/org/repo…)`);
  };
  const segments = uri.slice("hf://".length).split("/");
  let type: RepoType = "model";
  if (segments[0] === "datasets" || segments[0] === "models") type = segments.shift() === "datasets" ? "dataset" : "model";
  const [org, repoAt, ...rest] = segments;
  if (!org || !repoAt) return bad("no org/repo");
  const at = repoAt.indexOf("@");
  const repo = at < 0 ? repoAt : repoAt.slice(0, at);
  const revision = at < 0 ? "main" : decodeURIComponent(repoAt.slice(at + 1));
  if (!repo || !revision) return bad(at < 0 ? "no repo name" : "an empty @revision");
  for (const name of [org, repo]) if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) bad(`${JSON.stringify(name)} is not a Hub name`);
  const subPath = rest.join("/").replace(/\/+$/, "");
  const problem = subPath ? relativePathProblem(subPath) : undefined;
  if (problem) bad(`the sub-path ${JSON.stringify(subPath)}: ${problem}`);
  return { type, id: `${org}/${repo}`, revision, subPath };
}

export async function openHfSource(uri: string, settings: ImportSettings): Promise<ImportSource> {
  const parsed = parseHfUri(uri);
  const hub = new HubClient(
    settings.env.HF_ENDPOINT || DEFAULT_ENDPOINT,
    settings.env.HF_TOKEN,
    { type: parsed.type, id: parsed.id },
    settings.transfers.settings,
  );
  const commit = await hub.commit(parsed.revision);
  const shown = `hf://${parsed.type === "dataset" ? "datasets/" : ""}${parsed.id}@${parsed.revision}${parsed.subPath ? `/${parsed.subPath}` : ""}`;
  const at = `${parsed.id}@${commit.slice(0, 12)}`;

  let entries: HubEntry[];
  let isDirectory = true;
  const strip = (p: string): string => (parsed.subPath ? p.slice(parsed.subPath.length + 1) : p);
  if (parsed.subPath) {
    const info = await hub.pathInfo(commit, parsed.subPath);
    if (!info) throw new AssetError(`${parsed.id}@${parsed.revision} has no ${parsed.subPath}`);
    isDirectory = info.type === "directory";
    entries = isDirectory ? await hub.files(commit, parsed.subPath) : [info];
  } else {
    entries = await hub.files(commit, "");
  }
  const accept = pathMatcher(settings.filter);
  const selected = isDirectory ? entries.filter((e) => accept(strip(e.path))) : entries;
  if (selected.length === 0)
    throw new AssetError(
      `nothing to import at ${shown}: no file${settings.filter.include.length + settings.filter.exclude.length ? " that --include/--exclude keep" : ""}`,
    );

  const files: (RemoteFile & { entry: HubEntry })[] = selected.map((entry) => {
    const rel = isDirectory ? strip(entry.path) : "";
    const problem = isDirectory ? relativePathProblem(rel) : undefined;
    if (problem) throw new AssetError(`cannot import ${JSON.stringify(entry.path)} from ${shown}: ${problem}`);
    return {
      entry,
      path: rel,
      size: entry.lfs?.size ?? entry.size,
      ...(entry.lfs ? { sha256: entry.lfs.oid } : {}),
      open: (range) => hub.open(commit, entry.path, range),
      label: `${entry.path} of ${at}`,
    };
  });
  const pins = files.map((f) => [f.path, f.entry.lfs?.oid ?? f.entry.oid]);
  const origin = { uri: shown, revision: parsed.revision, commit, fingerprint: fingerprint(shown, [commit, pins], settings) };
  return {
    origin,
    async stage(dir) {
      const downloaded = await downloadAll(dir, files, settings);
      // The sha256 of LFS files was checked while downloading; the others are checked against their git blob id.
      const staged = new Map(downloaded.map((d) => [d.path, d]));
      for (const f of files.filter((x) => !x.entry.lfs)) {
        const { source, size } = staged.get(f.path)!;
        const oid = await gitBlobId(source, size);
        if (oid !== f.entry.oid)
          throw new AssetError(`integrity check failed for ${f.label}: the Hub lists git blob ${f.entry.oid}, got ${oid}; nothing was published`);
      }
      return { path: isDirectory ? dir : staged.get("")!.source, origin };
    },
  };
}

/** git's object id of a file's content: sha1 over "blob <size>\0" and the bytes. */
async function gitBlobId(file: string, size: number): Promise<string> {
  const hash = createHash("sha1").update(`blob ${size}\0`);
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}
