// The registry cases (issue 24): assetkit's publish and fetch on `oci://` against `oras push`/`oras pull`, on one
// CNCF distribution registry (filesystem storage, scripts/test-servers.ts's registry A) and the same data: wall time,
// peak RSS, and the requests of one more run of each tool, made through the counting proxy.
//
// Every upload goes to a fresh repository (`upload/<tool>/<round>/bench/<dataset>`): a registry links a blob to a
// repository only once its bytes came, so no run skips a blob that an earlier one sent (the registry keeps one copy).
import { mkdtemp, readdir, rm } from "node:fs/promises";
import path from "node:path";
import { startRequestCounter } from "../scripts/request-counter.ts";
import { startServers } from "../scripts/test-servers.ts";
import type { Dataset } from "./datasets.ts";
import { measure, runOrThrow } from "./measure.ts";
import { runCase, type CaseResult, type Direction } from "./throughput.ts";
import { makeRegistryTools, type Place, type PublishedAsset, type Tool, type ToolPaths } from "./tools.ts";

const MANIFEST_TYPES = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

export interface RegistryCase {
  direction: Direction;
  dataset: Dataset;
}

export interface RegistryContext {
  paths: ToolPaths;
  place: Place;
  /** Where the registry keeps its data (the MinIO cases' choice: tmpfs when it has room). */
  storeDir: string;
  scratch: string;
  repeat: number;
  timeoutMs: number;
  log(line: string): void;
}

export async function registryCases(cases: RegistryCase[], ctx: RegistryContext): Promise<CaseResult[]> {
  ctx.log("starting a distribution registry");
  const servers = await startServers(["oci"], ctx.storeDir);
  const url = servers.env.ASSETKIT_TEST_OCI_A!;
  const root = servers.env.ASSETKIT_TEST_OCI_A_ROOT!;
  try {
    const tools = makeRegistryTools(ctx.paths, ctx.place, new URL(url).host);
    const bucket = registryUploads(url, root);
    const results: CaseResult[] = [];
    for (const { direction, dataset } of cases) {
      let published: PublishedAsset | undefined;
      if (direction === "fetch") {
        ctx.log(`publishing ${dataset.id} once on the registry for the fetch case`);
        const outcome = await runOrThrow(`assetkit publish ${dataset.id} (oci)`, tools.assetkit.upload(dataset, "fetch"), ctx.timeoutMs);
        const { name, version } = JSON.parse(outcome.stdout) as { name: string; version: string };
        published = { prefix: "fetch", name, version, dataset };
      }
      const caseResults = await runCase(direction, dataset, published, { ...ctx, tools: [tools.assetkit, tools.oras], bucket, store: "oci" });
      for (const result of caseResults) {
        result.requests = await countedRun(url, direction === "fetch" ? { published: published! } : { dataset }, result.tool, ctx);
        ctx.log(`oci-${direction}-${dataset.id} ${result.tool}: ${result.requests} requests`);
      }
      await bucket.deleteUnder("upload");
      results.push(...caseResults);
    }
    return results;
  } finally {
    await servers.stop();
  }
}

/** One more run of `tool` through a counting proxy in front of the registry: how many requests it made. */
async function countedRun(url: string, what: { published: PublishedAsset } | { dataset: Dataset }, toolName: string, ctx: RegistryContext): Promise<number> {
  const counter = await startRequestCounter(url);
  const dest = await mkdtemp(path.join(ctx.scratch, "counted-"));
  try {
    const tools = makeRegistryTools(ctx.paths, ctx.place, new URL(counter.url).host);
    const tool: Tool = toolName === "oras" ? tools.oras : tools.assetkit;
    const command = "published" in what ? tool.download(what.published, dest) : tool.upload(what.dataset, `upload/counted/${tool.name}`);
    const outcome = await measure(command, ctx.timeoutMs);
    if (outcome.code !== 0) throw new Error(`counted ${tool.name} run failed (exit ${outcome.code}): ${outcome.stderr.trim().slice(-500)}`);
    return counter.requests().length;
  } finally {
    await counter.stop();
    await rm(dest, { recursive: true, force: true });
  }
}

/**
 * What the uploads stored, read through the registry's API: per repository under a prefix, the layers of its largest
 * tagged manifest (assetkit's claim tag names the version's manifest too); emptied by deleting the repositories'
 * folders in the filesystem storage (no blob descriptor cache is configured, so the registry forgets them at once).
 */
function registryUploads(url: string, root: string): { bytesUnder(prefix: string): Promise<number>; deleteUnder(prefix: string): Promise<void> } {
  const repositoriesDir = path.join(root, "docker/registry/v2/repositories");
  const json = async <T>(pathAndQuery: string, accept = "application/json"): Promise<T> => {
    const res = await fetch(`${url}${pathAndQuery}`, { headers: { accept } });
    if (!res.ok) throw new Error(`registry ${pathAndQuery}: HTTP ${res.status}`);
    return (await res.json()) as T;
  };
  return {
    async bytesUnder(prefix) {
      // The repositories are the storage's folders holding `_manifests` (the catalog API pages by 1,000 at most).
      const under = path.join(repositoriesDir, prefix);
      const entries = await readdir(under, { recursive: true, withFileTypes: true }).catch(() => []);
      const repositories = entries.filter((e) => e.name === "_manifests").map((e) => path.relative(repositoriesDir, e.parentPath));
      let total = 0;
      for (const repo of repositories) {
        const { tags } = await json<{ tags: string[] | null }>(`/v2/${repo}/tags/list`);
        let largest = 0;
        for (const tag of tags ?? []) {
          const manifest = await json<{ layers?: { size: number }[] }>(`/v2/${repo}/manifests/${tag}`, MANIFEST_TYPES);
          largest = Math.max(
            largest,
            (manifest.layers ?? []).reduce((sum, l) => sum + l.size, 0),
          );
        }
        total += largest;
      }
      return total;
    },
    async deleteUnder(prefix) {
      await rm(path.join(repositoriesDir, prefix), { recursive: true, force: true });
    },
  };
}
