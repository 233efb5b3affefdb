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
  /** The version a non-alias selector picks among `versions`, or undefined when none matches. */
  pick(selector: Picking, versions: string[]): string | undefined;
  /** The version a publish takes next, inside `series` when given. */
  next(versions: string[], series: Numeric | undefined, bump: Bump | undefined): string;
  /** The version to try when `taken` was claimed by someone else meanwhile. */
  after(taken: string, series: Numeric | undefined, bump: Bump | undefined): string;
}

const semverScheme: Scheme = {
  name: "semver",
  // Fewer than two dots cannot be MAJOR.MINOR.PATCH: answered before semver, which throws (slowly) on each one.
  isVersion: (text) => text.indexOf(".") !== text.lastIndexOf(".") && semver.valid(text) === text,
  compare: (a, b) => semver.compare(a, b),
  pick(selector, versions) {
    if (selector.kind === "date") throw notThisScheme(selector.text, "semver");
    const valid = versions.filter((v) => semver.valid(v) === v);
    if (selector.kind === "range") return semver.maxSatisfying(valid, selector.range) ?? undefined;
    if (selector.kind === "numeric" && selector.parts.length === 3) return valid.includes(selector.text) ? selector.text : undefined;
    return latest(
      this,
      valid.filter((v) => !semver.prerelease(v) && inSeries(v, selector)),
    );
  },
  next(versions, series, bump) {
    const step = semverStep(series, bump);
    const base = latest(
      this,
      versions.filter((v) => semver.valid(v) === v && !semver.prerelease(v) && inSeries(v, series)),
    );
    if (base) return semver.inc(base, step)!;
    const [major = 1, minor = 0] = series?.parts ?? [];
    return `${major}.${minor}.0`;
  },
  after: (taken, series, bump) => semver.inc(taken, semverStep(series, bump))!,
};

function semverStep(series: Numeric | undefined, bump: Bump | undefined): Bump {
  const depth = series?.parts.length ?? 0;
  if (depth === 3) throw new UsageError(`${series!.text} is a whole version, not a series: pass it as --version ${series!.text}`);
  if (series?.prerelease) throw new UsageError(`${series.text} is a prerelease, not a series`);
  const step = bump ?? (depth === 2 ? "patch" : "minor");
  if (depth === 1 && step === "major") throw new UsageError(`cannot bump the major version inside series ${series!.text}`);
  if (depth === 2 && step !== "patch") throw new UsageError(`only a patch bump stays inside series ${series!.text}`);
  return step;
}

function inSeries(version: string, series: VersionSelector | undefined): boolean {
  if (!series || series.kind !== "numeric") return true;
  const parsed = semver.parse(version);
  if (!parsed) return false;
  const [major, minor] = series.parts;
  return parsed.major === major && (minor === undefined || parsed.minor === minor);
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
  const unique = [...new Set(versions)];
  const known = unique.filter((v) => scheme.isVersion(v));
  // An index is kept newest first, so one pass usually shows there is nothing to sort.
  if (known.some((v, i) => i > 0 && scheme.compare(known[i - 1]!, v) < 0)) known.sort((a, b) => scheme.compare(b, a));
  return [...known, ...unique.filter((v) => !scheme.isVersion(v))];
}
