// Version schemes: how versions compare, which one a selector picks, and which one a publish takes next.
import semver from "semver";
import { AssetError, UsageError } from "../base/errors.ts";
import { isDateVersion, type VersionSelector } from "./spec.ts";

export type Bump = "major" | "minor" | "patch";
export type SchemeName = "semver" | "major-minor" | "simple-date";
type Numeric = Extract<VersionSelector, { kind: "numeric" }>;
type Picking = Exclude<VersionSelector, { kind: "alias" }>;

export interface Scheme {
  readonly name: SchemeName;
  isVersion(text: string): boolean;
  /** Ascending order. */
  compare(a: string, b: string): number;
  /**
   * The version a non-alias selector picks among `versions`, newest first as an index keeps them (sortNewestFirst),
   * or undefined when none matches.
   */
  pick(selector: Picking, versions: string[]): string | undefined;
  /** The version a publish takes next (`versions` newest first), inside `series` when given. */
  next(versions: string[], series: Numeric | undefined, bump: Bump | undefined): string;
  /** The version to try when `taken` was claimed by someone else meanwhile. */
  after(taken: string, series: Numeric | undefined, bump: Bump | undefined): string;
}

const semverScheme: Scheme = {
  name: "semver",
  // Fewer than two dots cannot be MAJOR.MINOR.PATCH: answered before semver, which throws (slowly) on each one.
  isVersion: (text) => releaseParts(text) !== undefined || (text.indexOf(".") !== text.lastIndexOf(".") && semver.valid(text) === text),
  compare(a, b) {
    const x = releaseParts(a);
    const y = x && releaseParts(b);
    return x && y ? compareRelease(x, y) : semver.compare(a, b);
  },
  pick(selector, versions) {
    if (selector.kind === "date") throw notThisScheme(selector.text, "semver");
    if (selector.kind === "range")
      return (
        semver.maxSatisfying(
          versions.filter((v) => this.isVersion(v)),
          selector.range,
        ) ?? undefined
      );
    if (selector.kind === "numeric" && selector.parts.length === 3)
      return this.isVersion(selector.text) && versions.includes(selector.text) ? selector.text : undefined;
    return latestRelease(versions, selector);
  },
  next(versions, series, bump) {
    const step = semverStep(series, bump);
    const base = latestRelease(versions, series);
    if (base) return semver.inc(base, step)!;
    const [major = 1, minor = 0] = series?.parts ?? [];
    return `${major}.${minor}.0`;
  },
  after: (taken, series, bump) => semver.inc(taken, semverStep(series, bump))!,
};

/** A release version (`MAJOR.MINOR.PATCH`, what semver.valid keeps as is and has no prerelease) as its numbers. */
function releaseParts(text: string): [number, number, number] | undefined {
  const parts: [number, number, number] = [0, 0, 0];
  return readRelease(text, parts) ? parts : undefined;
}

/**
 * Reads a release version's numbers into `parts` (false: not one; prereleases go to semver) by a character scan,
 * allocating nothing: an index of 10,000 versions is scanned in every resolve, where semver would parse each with
 * regexes, again in every comparison.
 */
function readRelease(text: string, parts: number[]): boolean {
  if (text.length > 50) return false; // three numbers of at most 16 digits and two dots
  parts[0] = parts[1] = parts[2] = 0;
  let part = 0;
  let digits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || ++part > 2) return false;
      digits = 0;
    } else if (c >= 48 && c <= 57 && !(digits === 1 && parts[part] === 0)) {
      parts[part] = parts[part]! * 10 + (c - 48);
      digits++;
    } else {
      return false; // a prerelease, build, another character, or a leading zero
    }
  }
  // semver refuses numbers above 2^53 - 1.
  return part === 2 && digits > 0 && parts[0]! <= Number.MAX_SAFE_INTEGER && parts[1]! <= Number.MAX_SAFE_INTEGER && parts[2]! <= Number.MAX_SAFE_INTEGER;
}

function compareRelease(x: readonly number[], y: readonly number[]): number {
  return x[0]! - y[0]! || x[1]! - y[1]! || x[2]! - y[2]!;
}

/**
 * The latest release (no prerelease) in `series` (any, without one) of versions newest first: the first that
 * matches. A series is matched on the text first (`1.` for x:1), so only its own versions are parsed.
 */
function latestRelease(versions: readonly string[], series: VersionSelector | undefined): string | undefined {
  const parts = series?.kind === "numeric" ? series.parts : [];
  const prefix = parts.map((n) => `${n}.`).join("");
  return versions.find((v) => v.startsWith(prefix) && releaseParts(v) !== undefined);
}

function semverStep(series: Numeric | undefined, bump: Bump | undefined): Bump {
  const depth = series?.parts.length ?? 0;
  if (depth === 3) throw new UsageError(`${series!.text} is a whole version, not a series: pass it as --version ${series!.text}`);
  if (series?.prerelease) throw new UsageError(`${series.text} is a prerelease, not a series`);
  const step = bump ?? (depth === 2 ? "patch" : "minor");
  if (depth === 1 && step === "major") throw new UsageError(`cannot bump the major version inside series ${series!.text}`);
  if (depth === 2 && step !== "patch") throw new UsageError(`only a patch bump stays inside series ${series!.text}`);
  return step;
}

// modelkit's default scheme: MAJOR.MINOR compared numerically; first version 0.0.
const majorMinorScheme: Scheme = {
  name: "major-minor",
  isVersion: (text) => parseMajorMinor(text) !== undefined,
  compare(a, b) {
    const [am, an] = parseMajorMinor(a)!;
    const [bm, bn] = parseMajorMinor(b)!;
    return am - bm || an - bn;
  },
  pick(selector, versions) {
    const valid = versions.filter((v) => parseMajorMinor(v));
    if (selector.kind === "range") throw new UsageError(`semver ranges need the semver scheme; this asset uses MAJOR.MINOR versions`);
    if (selector.kind === "date") throw notThisScheme(selector.text, "major-minor");
    if (selector.kind === "latest") return latest(this, valid);
    majorMinorSeries(selector);
    if (selector.parts.length === 2) return valid.includes(selector.text) ? selector.text : undefined;
    return latest(
      this,
      valid.filter((v) => parseMajorMinor(v)![0] === selector.parts[0]),
    );
  },
  next(versions, series, bump) {
    const valid = versions.filter((v) => parseMajorMinor(v));
    const step = majorMinorStep(series, bump);
    if (step === "major") {
      const top = latest(this, valid);
      return top ? `${parseMajorMinor(top)![0] + 1}.0` : "0.0";
    }
    const major = series?.parts[0];
    const top = latest(this, major === undefined ? valid : valid.filter((v) => parseMajorMinor(v)![0] === major));
    if (!top) return `${major ?? 0}.0`;
    const [m, n] = parseMajorMinor(top)!;
    return `${m}.${n + 1}`;
  },
  after(taken, series, bump) {
    const [m, n] = parseMajorMinor(taken)!;
    return majorMinorStep(series, bump) === "major" ? `${m + 1}.0` : `${m}.${n + 1}`;
  },
};

function majorMinorSeries(selector: Numeric): void {
  if (selector.parts.length > 2 || selector.prerelease) {
    throw new UsageError(`${selector.text} is not a MAJOR.MINOR version or a MAJOR series (this asset uses major-minor versions)`);
  }
}

function majorMinorStep(series: Numeric | undefined, bump: Bump | undefined): Bump {
  if (series) majorMinorSeries(series);
  if (series?.parts.length === 2) throw new UsageError(`${series.text} is a whole version, not a series: pass it as --version ${series.text}`);
  const step = bump ?? "minor";
  if (step === "patch") throw new UsageError("major-minor versions have no patch level: bump minor or major");
  if (series && step === "major") throw new UsageError(`cannot bump the major version inside series ${series.text}`);
  return step;
}

function notThisScheme(date: string, scheme: SchemeName): UsageError {
  return new UsageError(`${date} is a date version, and this asset uses ${scheme} versions`);
}

// modelkit's simple_date: each version is the UTC second of its push, YYYY-MM-DDTHH-MM-SSZ. Fixed width, so text
// order is time order (modelkit sorts them as text). No series, ranges or bumps: modelkit refuses partial dates.
const simpleDateScheme: Scheme = {
  name: "simple-date",
  isVersion: isDateVersion,
  compare: (a, b) => (a < b ? -1 : a > b ? 1 : 0),
  pick(selector, versions) {
    if (selector.kind === "latest") return latest(this, versions.filter(isDateVersion));
    if (selector.kind === "date") return versions.includes(selector.text) ? selector.text : undefined;
    const text = selector.kind === "range" ? selector.range : selector.text;
    throw new UsageError(
      `${text}: this asset uses date versions (like 2026-12-06T20-11-40Z), which have no series or ranges: name one whole, or none for the latest`,
    );
  },
  next(versions, series, bump) {
    if (series || bump) throw new UsageError("date versions have no series or bumps: the next version is the current UTC second");
    const now = dateVersion(new Date());
    const top = latest(this, versions.filter(isDateVersion));
    // As modelkit refuses to push a version that exists: a second version within one second is refused, not delayed.
    if (top !== undefined && now <= top) {
      throw new AssetError(
        `the latest version ${top} is not older than the current UTC second ${now}: date versions are one per second and must grow (publish again in a second; a later one means a clock ahead)`,
      );
    }
    return now;
  },
  after(taken) {
    throw new AssetError(`${taken} was taken by another publisher meanwhile: date versions are one per second (publish again in a second)`);
  },
};

/** The simple_date version of an instant: its UTC second, as modelkit writes it. */
export function dateVersion(at: Date): string {
  return `${at.toISOString().slice(0, 19).replaceAll(":", "-")}Z`;
}

// A character scan, not split + regex: it runs for every entry of an index, and again in every comparison.
function parseMajorMinor(text: string): [number, number] | undefined {
  const dot = text.indexOf(".");
  if (dot < 0 || text.indexOf(".", dot + 1) >= 0) return undefined;
  const major = numberPart(text, 0, dot);
  const minor = numberPart(text, dot + 1, text.length);
  return major === undefined || minor === undefined ? undefined : [major, minor];
}

/** text[start, end) as a number when it is `0` or 1 to 16 digits without a leading zero. */
function numberPart(text: string, start: number, end: number): number | undefined {
  const length = end - start;
  if (length < 1 || length > 16 || (length > 1 && text[start] === "0")) return undefined;
  for (let i = start; i < end; i++) if (text[i]! < "0" || text[i]! > "9") return undefined;
  return Number(text.slice(start, end));
}

function latest(scheme: Scheme, versions: string[]): string | undefined {
  let best: string | undefined;
  for (const v of versions) if (best === undefined || scheme.compare(v, best) > 0) best = v;
  return best;
}

/** Every scheme, in the order an asset's versions are matched against them. */
export const SCHEMES: readonly Scheme[] = [semverScheme, majorMinorScheme, simpleDateScheme];

/** A scheme by its name, or by modelkit's (major_minor, simple_date). */
export function schemeNamed(name: string): Scheme {
  const scheme = SCHEMES.find((s) => s.name === name || s.name === name.replace("_", "-"));
  if (!scheme) throw new UsageError(`unknown versioning ${JSON.stringify(name)}: use ${SCHEMES.map((s) => s.name).join(", ")}`);
  return scheme;
}

/**
 * An existing asset's scheme is read from its versions; a new asset takes the configured one, and so does one
 * whose versions are all in no scheme (it then lists none; the registry refuses to publish onto it).
 */
export function detectScheme(versions: string[], configured: SchemeName): Scheme {
  return SCHEMES.find((s) => versions.some((v) => s.isVersion(v))) ?? schemeNamed(configured);
}

/** Newest first, as modelkit's index keeps them; versions foreign to the scheme go last, in their order. */
export function sortNewestFirst(scheme: Scheme, versions: Iterable<string>): string[] {
  const { known, foreign } = orderVersions(scheme, versions);
  return [...known, ...foreign];
}

/** The scheme's versions, newest first and without repeats, and the others in their order. */
export function orderVersions(scheme: Scheme, versions: Iterable<string>): { known: string[]; foreign: string[] } {
  const all = [...versions];
  // Strictly decreasing: no repeats either.
  if (scheme.name === "semver" && releasesNewestFirst(all)) return { known: all, foreign: [] };
  const known: string[] = [];
  const foreign: string[] = [];
  for (const v of new Set(all)) (scheme.isVersion(v) ? known : foreign).push(v);
  // An index is kept newest first, so one pass usually shows there is nothing to sort.
  if (known.some((v, i) => i > 0 && scheme.compare(known[i - 1]!, v) < 0)) known.sort((a, b) => scheme.compare(b, a));
  return { known, foreign };
}

/**
 * Whether all are semver releases, strictly newest first (an index assetkit wrote): each parsed once, where the
 * general path parses each three times (validity, then both sides of a comparison).
 */
function releasesNewestFirst(versions: readonly string[]): boolean {
  const previous = [0, 0, 0];
  const current = [0, 0, 0];
  for (let i = 0; i < versions.length; i++) {
    if (!readRelease(versions[i]!, current) || (i > 0 && compareRelease(previous, current) <= 0)) return false;
    previous[0] = current[0]!;
    previous[1] = current[1]!;
    previous[2] = current[2]!;
  }
  return true;
}
