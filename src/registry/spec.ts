// The spec grammar (contract): name[:version-or-range-or-alias][[sub/path]], as modelkit writes it.
// Parsed by hand in one pass over the input, never with a backtracking regex, so a hostile spec costs
// linear time; every refusal names the part that is wrong.
import semver from "semver";
import { UsageError } from "../base/errors.ts";
import { assetNameProblem, relativePathProblem } from "./paths.ts";

export type VersionSelector =
  | { kind: "latest" }
  /** Digits and dots (1, 1.2, 1.2.3, 1.2.3-rc.1): a series or one version, as the asset's scheme reads it. */
  | { kind: "numeric"; text: string; parts: number[]; prerelease: boolean }
  /** A whole date version (modelkit's simple_date, 2026-12-06T20-11-40Z): exactly that version. */
  | { kind: "date"; text: string }
  | { kind: "range"; range: string }
  | { kind: "alias"; alias: string };

export interface AssetSpec {
  name: string;
  selector: VersionSelector;
  subPath?: string;
}

const MAX_SPEC_LENGTH = 2048;
const MAX_SELECTOR_LENGTH = 256;

export function parseSpec(input: string): AssetSpec {
  const fail = (why: string): never => {
    throw new UsageError(`bad spec ${JSON.stringify(shorten(input))}: ${why}`);
  };
  const spec = input.trim();
  if (spec === "") fail("it is empty");
  if (spec.length > MAX_SPEC_LENGTH) fail(`it is longer than ${MAX_SPEC_LENGTH} characters`);

  let head = spec;
  let subPath: string | undefined;
  const open = spec.indexOf("[");
  if (open >= 0 || spec.endsWith("]")) {
    if (open < 0 || !spec.endsWith("]")) fail("a sub-path must be written [like/this] at the end");
    subPath = spec.slice(open + 1, -1);
    if (subPath.includes("[") || subPath.includes("]")) fail(`the sub-path ${JSON.stringify(subPath)} contains a bracket`);
    const problem = relativePathProblem(subPath);
    if (problem) fail(`bad sub-path ${JSON.stringify(subPath)}: ${problem}`);
    head = spec.slice(0, open);
  }

  const colon = head.indexOf(":");
  const name = colon < 0 ? head : head.slice(0, colon);
  const nameProblem = assetNameProblem(name);
  if (nameProblem) fail(`bad asset name ${JSON.stringify(shorten(name))}: ${nameProblem}`);

  const selector: VersionSelector = colon < 0 ? { kind: "latest" } : parseSelector(head.slice(colon + 1), fail);
  return subPath === undefined ? { name, selector } : { name, selector, subPath };
}

function parseSelector(text: string, fail: (why: string) => never): VersionSelector {
  if (text === "") fail("nothing after ':' (write name:1, name:1.2.3, name:^1.2 or name:alias)");
  if (text.length > MAX_SELECTOR_LENGTH) fail(`the version part is longer than ${MAX_SELECTOR_LENGTH} characters`);
  if (isAlias(text)) return { kind: "alias", alias: text };
  if (isDateVersion(text)) return { kind: "date", text };
  const numeric = parseNumeric(text);
  if (numeric) {
    if (numeric.parts.length > 3) fail(`bad version ${JSON.stringify(text)}: more than three numbers`);
    return numeric;
  }
  // semver's own range grammar; its regexes are ReDoS-hardened and the input is bounded above.
  if (semver.validRange(text) !== null) return { kind: "range", range: text };
  return fail(
    `bad version ${JSON.stringify(shorten(text))}: not a version (1.2.3), a series (1, 1.2), a semver range (^1.2), a whole date version (2026-12-06T20-11-40Z) or an alias (lowercase, like production)`,
  );
}

/** An alias: [a-z][a-z0-9-]*. Never a valid version, since it starts with a letter. */
function isAlias(text: string): boolean {
  if (!(text[0]! >= "a" && text[0]! <= "z")) return false;
  for (const c of text) if (!((c >= "a" && c <= "z") || (c >= "0" && c <= "9") || c === "-")) return false;
  return true;
}

/** A date version's shape: 9 for a digit, any other character for itself. */
const DATE_SHAPE = "9999-99-99T99-99-99Z";

/**
 * modelkit's simple_date version, YYYY-MM-DDTHH-MM-SSZ (its regex, ASCII digits): the UTC second of the push.
 * Fixed width, so text order is time order. Like modelkit, the date itself is not checked (month 13 passes).
 */
export function isDateVersion(text: string): boolean {
  if (text.length !== DATE_SHAPE.length) return false;
  for (let i = 0; i < DATE_SHAPE.length; i++) {
    const c = text[i]!;
    if (DATE_SHAPE[i] === "9" ? !(c >= "0" && c <= "9") : c !== DATE_SHAPE[i]) return false;
  }
  return true;
}

/** 1 | 1.2 | 1.2.3 | 1.2.3-pre.release(+build): digits and dots, then an optional semver tail. */
function parseNumeric(text: string): Extract<VersionSelector, { kind: "numeric" }> | undefined {
  const dash = text.search(/[-+]/);
  const core = dash < 0 ? text : text.slice(0, dash);
  const parts = core.split(".");
  if (parts.some((p) => p === "" || !/^\d+$/.test(p) || (p.length > 1 && p.startsWith("0")))) return undefined;
  if (dash >= 0 && (parts.length !== 3 || semver.valid(text) === null)) return undefined;
  return { kind: "numeric", text, parts: parts.map(Number), prerelease: dash >= 0 && text[dash] === "-" };
}

export function formatSpec(spec: { name: string; version?: string; subPath?: string | undefined }): string {
  return `${spec.name}${spec.version ? `:${spec.version}` : ""}${spec.subPath ? `[${spec.subPath}]` : ""}`;
}

/** The spec as the user wrote its version part, for messages and lockfile keys. */
export function selectorText(selector: VersionSelector): string | undefined {
  switch (selector.kind) {
    case "latest":
      return undefined;
    case "numeric":
    case "date":
      return selector.text;
    case "range":
      return selector.range;
    case "alias":
      return selector.alias;
  }
}

function shorten(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
