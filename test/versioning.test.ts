import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UsageError } from "../src/errors.ts";
import { parseSpec } from "../src/spec.ts";
import { detectScheme, schemeNamed, sortNewestFirst } from "../src/versioning.ts";

const semver = schemeNamed("semver");
const majorMinor = schemeNamed("major-minor");
const pick = (scheme: typeof semver, spec: string, versions: string[]) => {
  const { selector } = parseSpec(spec);
  assert.notEqual(selector.kind, "alias");
  return scheme.pick(selector as Exclude<typeof selector, { kind: "alias" }>, versions);
};
const series = (text: string) => parseSpec(`x:${text}`).selector as Extract<ReturnType<typeof parseSpec>["selector"], { kind: "numeric" }>;

describe("semver scheme", () => {
  const versions = ["10.0.0", "1.2.0", "1.10.1", "1.2.5", "2.0.0-rc.1", "1.0.0"];
  it("x:1 picks the latest 1.x and never 10.x", () => assert.equal(pick(semver, "x:1", versions), "1.10.1"));
  it("x:1.2 picks the latest 1.2.x", () => assert.equal(pick(semver, "x:1.2", versions), "1.2.5"));
  it("x picks the latest release, never a prerelease", () => assert.equal(pick(semver, "x", ["1.0.0", "2.0.0-rc.1"]), "1.0.0"));
  it("a full version picks exactly that one", () => {
    assert.equal(pick(semver, "x:1.2.0", versions), "1.2.0");
    assert.equal(pick(semver, "x:1.2.1", versions), undefined);
    assert.equal(pick(semver, "x:2.0.0-rc.1", versions), "2.0.0-rc.1");
  });
  it("ranges use maxSatisfying", () => {
    assert.equal(pick(semver, "x:^1.2", versions), "1.10.1");
    assert.equal(pick(semver, "x:~1.2.0", versions), "1.2.5");
    assert.equal(pick(semver, "x:>=1 <1.5", versions), "1.2.5");
  });
  it("bumps: first 1.0.0, default minor, inside a series", () => {
    assert.equal(semver.next([], undefined, undefined), "1.0.0");
    assert.equal(semver.next(["1.0.0"], undefined, "minor"), "1.1.0");
    assert.equal(semver.next(["1.1.0", "1.0.0"], undefined, "major"), "2.0.0");
    assert.equal(semver.next(["2.0.0", "1.1.0"], series("1"), "minor"), "1.2.0");
    assert.equal(semver.next(["2.0.0", "1.1.0"], series("1.1"), undefined), "1.1.1");
    assert.equal(semver.next(["2.0.0"], series("3"), undefined), "3.0.0");
    assert.equal(semver.after("1.2.0", series("1"), "minor"), "1.3.0");
  });
  it("refuses bumps that leave the series", () => {
    assert.throws(() => semver.next([], series("1"), "major"), UsageError);
    assert.throws(() => semver.next([], series("1.2"), "minor"), UsageError);
    assert.throws(() => semver.next([], series("1.2.3"), undefined), /--version 1.2.3/);
  });
  it("sorts newest first", () => assert.deepEqual(sortNewestFirst(semver, ["1.0.0", "10.0.0", "2.0.0", "1.0.0"]), ["10.0.0", "2.0.0", "1.0.0"]));
});

describe("major-minor scheme (modelkit's)", () => {
  const versions = ["0.0", "0.1", "1.0", "1.9", "1.10", "10.0"];
  it("compares numerically: 1 → 1.10, never 10.x", () => assert.equal(pick(majorMinor, "x:1", versions), "1.10"));
  it("1.2 is one exact version", () => {
    assert.equal(pick(majorMinor, "x:1.9", versions), "1.9");
    assert.equal(pick(majorMinor, "x:1.2", versions), undefined);
  });
  it("bumps like modelkit: first 0.0, minor inside the latest or named major, major to max+1", () => {
    assert.equal(majorMinor.next([], undefined, undefined), "0.0");
    assert.equal(majorMinor.next(versions, undefined, undefined), "10.1");
    assert.equal(majorMinor.next(versions, series("1"), undefined), "1.11");
    assert.equal(majorMinor.next(versions, undefined, "major"), "11.0");
    assert.throws(() => majorMinor.next(versions, undefined, "patch"), UsageError);
  });
  it("refuses semver ranges", () => assert.throws(() => pick(majorMinor, "x:^1", versions), /semver/));
  it("is detected from an asset's versions", () => {
    assert.equal(detectScheme(["0.1", "0.0"], "semver").name, "major-minor");
    assert.equal(detectScheme(["1.0.0"], "major-minor").name, "semver");
    assert.equal(detectScheme([], "major-minor").name, "major-minor");
  });
});

describe("telling versions apart (run for every entry of an index)", () => {
  it("major-minor: numeric MAJOR.MINOR without leading zeros, at most 16 digits each", () => {
    for (const v of ["0.0", "1.10", "9999999999999999.0"]) assert.equal(majorMinor.isVersion(v), true, v);
    for (const v of ["", "1", "1.", ".1", "01.2", "1.02", "1..2", "1.2.3", "a.b", "1.2a", "-1.2", "10000000000000000.0"]) {
      assert.equal(majorMinor.isVersion(v), false, v);
    }
  });
  it("semver: whole MAJOR.MINOR.PATCH versions only", () => {
    for (const v of ["1.2.3", "1.0.0-rc.1"]) assert.equal(semver.isVersion(v), true, v);
    for (const v of ["1.2", "1", "v1.2.3", "1.2.3.4"]) assert.equal(semver.isVersion(v), false, v);
  });
  it("an index in order, or not, comes out newest first", () => {
    assert.deepEqual(sortNewestFirst(majorMinor, ["2.0", "1.10", "1.2"]), ["2.0", "1.10", "1.2"]);
    assert.deepEqual(sortNewestFirst(majorMinor, ["1.2", "2.0", "1.10", "junk"]), ["2.0", "1.10", "1.2", "junk"]);
  });
});
