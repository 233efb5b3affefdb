// What a repository's tag list says (docs/oci.md §3, §5): version tags (a digit first), assetkit's own tags (`_`
// first): claims `_c.<t>.<cid>.<V>`, withdrawal markers `_w.<cid>` (where tags cannot be deleted) and publish holds
// `_h.<t>.<pid>` (`t` as in claims, so gc can tell their age), signatures `_s.<V>`. Channels (a letter first) are not read yet. Pure functions of the listing.
import { randomBytes } from "node:crypto";

/** A claim older than this by its tag's clock is abandoned: its slot is skipped, never reused (docs/oci.md §5.1). */
export const ABANDONED_AFTER_MS = 15 * 60 * 1000;
/** Tag grammar of the distribution spec. */
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** The longest version that still fits a claim tag (`_c.` + 7 + `.` + 12 + `.` = 24 characters). */
export const MAX_VERSION_TAG = 104;

export interface Claim {
  tag: string;
  cid: string;
  /** When its publisher wrote it, by that publisher's clock (seconds): for abandonment only. */
  atMs: number;
  version: string;
}

export interface TagState {
  tags: Set<string>;
  /** Tags that may be versions (a digit first). */
  versions: string[];
  claims: Claim[];
  /** Claim ids withdrawn by a marker. */
  withdrawn: Set<string>;
  /** Publish holds, by the publisher's clock (holds of builds before holds had a time are not listed: never collected). */
  holds: { tag: string; atMs: number }[];
}

/** Why `version` cannot be a tag, or undefined. */
export function versionTagProblem(version: string): string | undefined {
  if (version.includes("+")) return "build metadata ('+') cannot be part of an OCI tag";
  if (version.length > MAX_VERSION_TAG) return `it is longer than ${MAX_VERSION_TAG} characters`;
  if (!TAG.test(version)) return "it is not a valid OCI tag";
  return undefined;
}

export function readTags(tags: Iterable<string>): TagState {
  const state: TagState = { tags: new Set(), versions: [], claims: [], withdrawn: new Set(), holds: [] };
  for (const tag of tags) {
    state.tags.add(tag);
    if (/^[0-9]/.test(tag)) state.versions.push(tag);
    else if (tag.startsWith("_w.")) state.withdrawn.add(tag.slice(3));
    else if (tag.startsWith("_c.")) {
      const [, t, cid, ...rest] = tag.split(".");
      const atMs = tagTime(t);
      if (cid && rest.length > 0 && atMs !== undefined) state.claims.push({ tag, cid, atMs, version: rest.join(".") });
    } else if (tag.startsWith("_h.")) {
      const [, t, pid] = tag.split(".");
      const atMs = pid === undefined ? undefined : tagTime(t);
      if (atMs !== undefined) state.holds.push({ tag, atMs });
    }
  }
  return state;
}

/** The writer's clock in a tag: 7 base-36 characters of seconds. */
function tagTime(t: string | undefined): number | undefined {
  if (t === undefined || !/^[0-9a-z]{7}$/.test(t)) return undefined;
  return parseInt(t, 36) * 1000;
}

function timeText(nowMs: number): string {
  return Math.floor(nowMs / 1000)
    .toString(36)
    .padStart(7, "0");
}

/** The claims for `version` not withdrawn, but for the one of id `own`. */
export function rivalClaims(state: TagState, version: string, own?: string): Claim[] {
  return state.claims.filter((c) => c.version === version && c.cid !== own && !state.withdrawn.has(c.cid));
}

export function isAbandoned(claim: Claim, nowMs: number): boolean {
  return nowMs - claim.atMs > ABANDONED_AFTER_MS;
}

/** A new claim's tag and id: the claimer's clock in base-36 seconds, then 12 random hex characters. */
export function newClaim(version: string, nowMs: number): { tag: string; cid: string } {
  const cid = randomBytes(6).toString("hex");
  return { tag: `_c.${timeText(nowMs)}.${cid}.${version}`, cid };
}

export function holdTag(nowMs: number): string {
  return `_h.${timeText(nowMs)}.${randomBytes(6).toString("hex")}`;
}

/** The tag of a version's signature manifest (artifact.ts): written after the version is claimed, before it is committed. */
export function signatureTag(version: string): string {
  return `_s.${version}`;
}

export function withdrawalMarker(cid: string): string {
  return `_w.${cid}`;
}

/** The tag of a channel's move record number `n` (docs/oci.md §5.4). */
export function moveTag(channel: string, n: number): string {
  return `_m.${channel}.${n}`;
}

/** The claim slot of a channel's move `n`: its claim is `_c.<t>.<cid>.m.<channel>.<n>`. */
export function moveSlot(channel: string, n: number): string {
  return `m.${channel}.${n}`;
}

/** The channels that have move records, each with its record numbers, ascending. */
export function channelMoves(state: TagState): Map<string, number[]> {
  const moves = new Map<string, number[]>();
  for (const tag of state.tags) {
    const m = /^_m\.([a-z][a-z0-9-]*)\.([1-9][0-9]*)$/.exec(tag);
    if (m) moves.set(m[1]!, [...(moves.get(m[1]!) ?? []), Number(m[2])]);
  }
  for (const numbers of moves.values()) numbers.sort((a, b) => a - b);
  return moves;
}
