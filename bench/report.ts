// The benchmark's outputs: a Markdown table (README's Performance section), the request counts, the issue's
// targets checked against the medians, and the JSON document written to bench/results.json.
import { FILE_COUNT_DATASETS, formatBytes } from "./datasets.ts";
import type { RequestCounts } from "./requests.ts";
import { scaleLines, type ScaleResult, type WatchResult } from "./scale.ts";
import type { CaseId, CaseResult } from "./throughput.ts";
import { median } from "./measure.ts";
import { toolLabel, type ToolName } from "./tools.ts";
import { VERIFY_TARGET_MS, type VerifyCost } from "./verify.ts";

const MiB = 1024 * 1024;

export interface BenchResults {
  quick: boolean;
  startedAt: string;
  finishedAt: string;
  options: { repeat: number; cases: string[]; tools: ToolName[] };
  /** `storeData`: where MinIO kept its data (absent in results from before it was recorded: disk). */
  machine: { cpus: number; cpuModel: string; memoryGiB: number; os: string; node: string; storeData?: "tmpfs" | "disk" };
  versions: Record<ToolName, string>;
  cases: CaseResult[];
  requests?: RequestCounts;
  /** The cost of checking a signed version's signature (absent in results from before it was measured). */
  verify?: VerifyCost;
  scale?: ScaleResult[];
  watch?: WatchResult;
}

/** The targets of issue #15: assetkit's rate over a peer's, at least `min`. */
const RATIO_TARGETS: { case: CaseId; peer: ToolName; min: number }[] = [
  { case: "fetch-large", peer: "aws", min: 1.5 },
  { case: "fetch-large", peer: "modelkit", min: 1.5 },
  { case: "fetch-large", peer: "s5cmd", min: 0.6 },
  { case: "publish-large", peer: "s5cmd", min: 0.9 },
  { case: "fetch-small", peer: "s5cmd", min: 1 },
  { case: "publish-small", peer: "s5cmd", min: 1 },
  // Issue 24: on a registry, at least as fast as oras.
  { case: "oci-fetch-large", peer: "oras", min: 1 },
  { case: "oci-publish-large", peer: "oras", min: 1 },
  { case: "oci-fetch-small", peer: "oras", min: 1 },
  { case: "oci-publish-small", peer: "oras", min: 1 },
];
const PEAK_RSS_TARGET_MIB = 200;

/** Issue 26's targets, stricter and at scale: checked beside the ones above, each line saying which issue it is. */
const SCALE_RATIO_TARGETS: { case: CaseId; peer: ToolName; min: number }[] = [
  { case: "fetch-large", peer: "s5cmd", min: 1 },
  { case: "fetch-mixed", peer: "s5cmd", min: 1 },
  { case: "fetch-many", peer: "s5cmd", min: 1 },
  { case: "publish-many", peer: "s5cmd", min: 1 },
  { case: "fetch-huge", peer: "s5cmd", min: 0.9 },
  { case: "publish-huge", peer: "s5cmd", min: 0.9 },
];
/** Issue 26's peak RSS by dataset: the first issues' cases, 100,000 files, 20 GiB. */
const SCALE_RSS_TARGETS_MIB: Partial<Record<CaseResult["dataset"]["id"], number>> = { large: 100, small: 100, mixed: 100, many: 250, huge: 200 };
const SCALE_TARGETS = {
  republishSeconds: 2,
  republishBytesShare: 0.01,
  ifChangedSeconds: 1.5,
  resolveRequests: 1,
  resolveCpuMs: 100,
  firstRequestMs: 50,
};
/** "Uploads about 1 MiB": the changed file plus metadata, with room for request overhead. */
const REPUBLISH_SLACK = 2;

/** Files per second for the many-small-files dataset, MB/s (10^6 bytes) for the others. */
function rate(result: CaseResult): number | undefined {
  if (!result.median) return undefined;
  return FILE_COUNT_DATASETS.includes(result.dataset.id) ? result.median.filesPerSec : result.median.mbPerSec;
}

function formatRate(result: CaseResult): string {
  const value = rate(result);
  if (value === undefined) return `failed (${result.runs.length} runs)`;
  return FILE_COUNT_DATASETS.includes(result.dataset.id) ? `${value.toFixed(0)} files/s` : `${value.toFixed(0)} MB/s`;
}

function ratio(results: CaseResult[], id: CaseId, peer: ToolName): number | undefined {
  const own = results.find((r) => r.case === id && r.tool === "assetkit");
  const other = results.find((r) => r.case === id && r.tool === peer);
  const a = own && rate(own);
  const b = other && rate(other);
  return a !== undefined && b !== undefined ? a / b : undefined;
}

export function markdownTable(results: BenchResults): string {
  const lines = ["| Case | Tool | Throughput | CPU s/GiB | Peak RSS | assetkit/peer |", "|---|---|---:|---:|---:|---:|"];
  for (const r of results.cases) {
    const own = r.tool.startsWith("assetkit");
    const x = own ? undefined : ratio(results.cases, r.case, r.tool);
    const rss = r.median ? `${r.median.peakRssMiB.toFixed(0)} MiB` : "–";
    // 4 KiB files: CPU per file says more than per GiB (and results from before it have none).
    const perFile = r.dataset.id === "many" && r.median?.cpuMsPerFile !== undefined;
    const cpu = r.median ? (perFile ? `${r.median.cpuMsPerFile.toFixed(3)} ms/file` : r.median.cpuSecondsPerGiB.toFixed(2)) : "–";
    const relative = own ? "–" : x === undefined ? "n/a" : `${x.toFixed(2)}×`;
    const where = r.case.startsWith("oci-") ? ", registry" : "";
    lines.push(
      `| ${r.direction} ${r.dataset.title}${where} | ${toolLabel(r.tool, results.versions[r.tool])} | ${formatRate(r)} | ${cpu} | ${rss} | ${relative} |`,
    );
  }
  return lines.join("\n");
}

export function requestLines(requests: RequestCounts): string[] {
  const { warmLockedFetch: warm, resolve, republish } = requests;
  return [
    `- Warm, locked fetch: ${warm.requests} store requests (expected ${warm.expected}).`,
    `- Resolving ${resolve.specs} partial specs over ${resolve.assets} assets: ${resolve.requests} store requests, ${resolve.objectReads} object reads (target ${resolve.expected}).`,
    `- Republishing the mixed dataset (${formatBytes(republish.datasetBytes)}) with one ${formatBytes(republish.changedBytes)} file changed: ${(republish.bytesSent / MiB).toFixed(2)} MiB sent in ${republish.requests} requests.`,
  ];
}

export function verifyLine(v: VerifyCost): string {
  return `- Checking the signature of a signed ${v.files}-file version (a .sig of ${(v.signatureBytes / 1024).toFixed(0)} KiB, P-256 key): median ${v.medianMs.toFixed(1)} ms, ${v.minMs.toFixed(1)}–${v.maxMs.toFixed(1)} ms over ${v.rounds} rounds, the first ${v.firstMs.toFixed(1)} ms; plus one GET of the .sig.`;
}

/** One line per target of the issue that this run measured: the value, the target, met or not. */
export function targetLines(results: BenchResults): string[] {
  const lines: string[] = [];
  const verdict = (met: boolean): string => (met ? "met" : "NOT met");
  for (const t of RATIO_TARGETS) {
    const x = ratio(results.cases, t.case, t.peer);
    if (x !== undefined) lines.push(`- ${t.case} vs ${t.peer}: ${x.toFixed(2)}× (target ≥ ${t.min}×): ${verdict(x >= t.min)}`);
  }
  for (const r of results.cases.filter((c) => c.tool === "assetkit" && c.median)) {
    lines.push(
      `- ${r.case} peak RSS: ${r.median!.peakRssMiB.toFixed(0)} MiB (target ≤ ${PEAK_RSS_TARGET_MIB} MiB): ${verdict(r.median!.peakRssMiB <= PEAK_RSS_TARGET_MIB)}`,
    );
  }
  const r = results.requests;
  if (r) {
    lines.push(`- warm locked fetch: ${r.warmLockedFetch.requests} requests (target 0): ${verdict(r.warmLockedFetch.requests === 0)}`);
    lines.push(
      `- resolve ${r.resolve.specs} specs: ${r.resolve.requests} requests (target ${r.resolve.expected}): ${verdict(r.resolve.requests <= r.resolve.expected)}`,
    );
    const sent = r.republish.bytesSent;
    lines.push(
      `- republish with one file changed: ${(sent / MiB).toFixed(2)} MiB sent (target about ${formatBytes(r.republish.changedBytes)}): ${verdict(sent <= REPUBLISH_SLACK * r.republish.changedBytes)}`,
    );
  }
  lines.push(...scaleTargetLines(results));
  const v = results.verify;
  if (v)
    lines.push(
      `- verification of a signed ${v.files}-file version: ${v.firstMs.toFixed(1)} ms first, ${v.medianMs.toFixed(1)} ms median (target ≤ ${VERIFY_TARGET_MS} ms): ${verdict(Math.max(v.firstMs, v.medianMs) <= VERIFY_TARGET_MS)}`,
    );
  return lines;
}

/** Issue 26's targets that this run measured (see SCALE_*), one line each. */
function scaleTargetLines(results: BenchResults): string[] {
  const lines: string[] = [];
  const verdict = (met: boolean): string => (met ? "met" : "NOT met");
  for (const t of SCALE_RATIO_TARGETS) {
    const x = ratio(results.cases, t.case, t.peer);
    if (x !== undefined) lines.push(`- (issue 26) ${t.case} vs ${t.peer}: ${x.toFixed(2)}× (target ≥ ${t.min}×): ${verdict(x >= t.min)}`);
  }
  for (const r of results.cases.filter((c) => c.tool === "assetkit" && c.median && !c.case.startsWith("oci-"))) {
    const most = SCALE_RSS_TARGETS_MIB[r.dataset.id];
    const rss = r.median!.peakRssMiB;
    if (most !== undefined) lines.push(`- (issue 26) ${r.case} peak RSS: ${rss.toFixed(0)} MiB (target ≤ ${most} MiB): ${verdict(rss <= most)}`);
  }
  const scale = results.scale ?? [];
  const find = (command: string, on?: string) => scale.find((r) => r.command === command && (on === undefined || r.on === on));
  const many = results.cases.find((c) => c.dataset.id === "many")?.dataset;
  const republish = find("republish, 10 files changed, content-addressed");
  if (republish) {
    const { seconds, bytesSent } = republish.median;
    lines.push(
      `- (issue 26) content-addressed republish, 10 files changed: ${seconds.toFixed(2)} s (target ≤ ${SCALE_TARGETS.republishSeconds} s): ${verdict(seconds <= SCALE_TARGETS.republishSeconds)}`,
    );
    if (many) {
      const share = bytesSent / many.bytes;
      lines.push(
        `- (issue 26) its bytes sent: ${(100 * share).toFixed(2)} % of the asset's (target ≤ ${100 * SCALE_TARGETS.republishBytesShare} %): ${verdict(share <= SCALE_TARGETS.republishBytesShare)}`,
      );
    }
  }
  const ifChanged = find("publish --if-changed, none changed");
  if (ifChanged) {
    const { seconds } = ifChanged.median;
    lines.push(
      `- (issue 26) publish --if-changed, none changed: ${seconds.toFixed(2)} s (target ≤ ${SCALE_TARGETS.ifChangedSeconds} s): ${verdict(seconds <= SCALE_TARGETS.ifChangedSeconds)}`,
    );
  }
  const resolve = find("resolve name:1", "10,000 versions");
  if (resolve) {
    const { requests, cpuSeconds } = resolve.median;
    const cpuMs = 1000 * cpuSeconds;
    lines.push(
      `- (issue 26) resolve name:1 over 10,000 versions: ${requests} request(s), ${cpuMs.toFixed(0)} ms of CPU (target ${SCALE_TARGETS.resolveRequests}, ≤ ${SCALE_TARGETS.resolveCpuMs} ms): ${verdict(requests <= SCALE_TARGETS.resolveRequests && cpuMs <= SCALE_TARGETS.resolveCpuMs)}`,
    );
  }
  const versions = scale.filter((r) => r.case === "versions");
  if (versions.length) {
    const first = median(versions.map((r) => r.median.firstRequestMs));
    lines.push(
      `- (issue 26) time to the first request (versions cases): ${first.toFixed(0)} ms (target ≤ ${SCALE_TARGETS.firstRequestMs} ms): ${verdict(first <= SCALE_TARGETS.firstRequestMs)}`,
    );
  }
  return lines;
}

export function renderReport(results: BenchResults): string {
  const v = results.versions;
  const header = results.quick
    ? "QUICK RUN (--quick: small datasets, not representative; do not publish these numbers)"
    : `Medians of ${results.options.repeat} interleaved round${results.options.repeat === 1 ? "" : "s"}`;
  const registry = results.cases.some((c) => c.case.startsWith("oci-"))
    ? `, the registry cases' CNCF distribution registry (filesystem storage) beside it, with oras ${v.oras}`
    : "";
  const parts = [
    `${header}; ${results.machine.cpus} × ${results.machine.cpuModel}, ${results.machine.memoryGiB} GiB RAM, Node ${results.machine.node}, MinIO on 127.0.0.1 with its data on ${results.machine.storeData ?? "disk"}${registry}; assetkit ${v.assetkit}.`,
  ];
  if (results.cases.length) parts.push("", markdownTable(results));
  const registryRequests = results.cases.filter((r) => r.requests !== undefined);
  if (registryRequests.length) {
    parts.push(
      "",
      "Registry requests (one more run of each tool through a counting proxy):",
      "",
      ...registryRequests.map((r) => `- ${r.direction} ${r.dataset.title}: ${toolLabel(r.tool, results.versions[r.tool])}, ${r.requests} requests`),
    );
  }
  if (results.requests) parts.push("", "Store requests (counted by a proxy in front of MinIO):", "", ...requestLines(results.requests));
  if (results.verify) parts.push("", "Signed versions:", "", verifyLine(results.verify));
  if (results.scale || results.watch) {
    parts.push(
      "",
      "At scale (medians, with the range over the rounds when it varied; requests counted by the proxy):",
      "",
      ...scaleLines(results.scale ?? [], results.watch),
    );
  }
  const targets = targetLines(results);
  if (targets.length) parts.push("", "Targets:", "", ...targets);
  return parts.join("\n") + "\n";
}
