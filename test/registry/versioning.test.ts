import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AssetError, UsageError } from "../../src/base/errors.ts";
import { parseSpec } from "../../src/registry/spec.ts";
import { dateVersion, detectScheme, schemeNamed, sortNewestFirst } from "../../src/registry/versioning.ts";

const semver = schemeNamed("semver");
const majorMinor = schemeNamed("major-minor");
const simpleDate = schemeNamed("simple-date");
const pick = (scheme: typeof semver, spec: string, versions: string[]) => {
  const { selector } = parseSpec(spec);
  assert.notEqual(selector.kind, "alias");
  return scheme.pick(selector as Exclude<typeof selector, { kind: "alias" }>, sortNewestFirst(scheme, versions));
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

describe("simple-date scheme (modelkit's simple_date)", () => {
  const versions = ["2026-01-02T03-04-05Z", "2026-12-06T20-11-40Z", "2025-12-31T23-59-59Z"];
  it("is named as assetkit and as modelkit name it", () => {
    assert.equal(schemeNamed("simple_date"), simpleDate);
    assert.throws(() => schemeNamed("date"), /use semver, major-minor, simple-date/);
  });
  it("the latest is the last in time, which is the last as text", () => assert.equal(pick(simpleDate, "x", versions), "2026-12-06T20-11-40Z"));
  it("a whole date picks exactly that version; partial dates, series and ranges are refused, as modelkit does", () => {
    assert.equal(pick(simpleDate, "x:2026-01-02T03-04-05Z", versions), "2026-01-02T03-04-05Z");
    assert.equal(pick(simpleDate, "x:2026-01-02T03-04-06Z", versions), undefined);
    for (const spec of ["x:2026", "x:2026.12", "x:^1"]) assert.throws(() => pick(simpleDate, spec, versions), /date versions .* no series or ranges/, spec);
  });
  it("a date spec on another scheme's asset is refused, never read as its latest", () => {
    assert.throws(() => pick(semver, "x:2026-01-02T03-04-05Z", ["1.0.0"]), /date version, and this asset uses semver versions/);
    assert.throws(() => pick(majorMinor, "x:2026-01-02T03-04-05Z", ["0.1"]), /uses major-minor versions/);
  });
  it("the next version is the current UTC second, later than the latest; no bumps or series", () => {
    const before = dateVersion(new Date());
    const next = simpleDate.next(versions, undefined, undefined);
    assert.ok(simpleDate.isVersion(next) && next >= before && next <= dateVersion(new Date()), next);
    assert.equal(dateVersion(new Date("2026-12-06T20:11:40.999Z")), "2026-12-06T20-11-40Z");
    assert.throws(() => simpleDate.next(versions, undefined, "minor"), UsageError);
    assert.throws(() => simpleDate.next(versions, series("1"), undefined), UsageError);
  });
  it("refuses a next version that would not be the latest (same second, or a latest from a clock ahead)", () => {
    assert.throws(
      () => simpleDate.next([dateVersion(new Date(Date.now() + 60_000))], undefined, undefined),
      (err: unknown) => err instanceof AssetError && /not older than the current UTC second/.test(err.message),
    );
    assert.throws(() => simpleDate.after("2026-12-06T20-11-40Z", undefined, undefined), /taken by another publisher/);
  });
  it("is detected from an asset's versions", () => {
    assert.equal(detectScheme(["2026-12-06T20-11-40Z"], "semver").name, "simple-date");
    assert.equal(detectScheme(["v1", "nightly"], "major-minor").name, "major-minor");
    assert.deepEqual(sortNewestFirst(simpleDate, [...versions, "junk"]), ["2026-12-06T20-11-40Z", "2026-01-02T03-04-05Z", "2025-12-31T23-59-59Z", "junk"]);
  });
  it("tells date versions apart", () => {
    assert.equal(simpleDate.isVersion("0000-99-99T99-99-99Z"), true, "modelkit checks the shape, not the calendar");
    for (const v of ["2026-12-06T20-11-40", "2026-12-06T20:11:40Z", "2026-12-06 20-11-40Z", "2026-12-06T20-11-40z", "１０２６-12-06T20-11-40Z", "1.0.0"]) {
      assert.equal(simpleDate.isVersion(v), false, v);
    }
  });
});

describe("telling versions apart (run for every entry of an index)", () => {
  it("major-minor: numeric MAJOR.MINOR without leading zeros, at most 16 digits each", () => {
    for (const v of ["0.0", "1.10", "9999999999999999.0"]) assert.equal(majorMinor.isVersion(v), true, v);
    for (const v of ["", "1", "1.", ".1", "01.2", "1.02", "1..2", "1.2.3", "a.b", "1.2a", "-1.2", "10000000000000000.0"]) {
      assert.equal(majorMinor.isVersion(v), false, v);
    }
  });
  it("semver: whole MAJOR.MINOR.PATCH versions only, as semver.valid keeps them", () => {
    for (const v of ["1.2.3", "1.0.0-rc.1", "0.0.0", "10.20.30", "9007199254740991.0.0"]) assert.equal(semver.isVersion(v), true, v);
    for (const v of [
      "1.2",
      "1",
      "v1.2.3",
      "1.2.3.4",
      "01.2.3",
      "1.02.3",
      "1.2.03",
      "1..3",
      "1.2.",
      ".1.2",
      " 1.2.3",
      "1.2.3+b",
      "9007199254740992.0.0",
      "a.b.c",
    ]) {
      assert.equal(semver.isVersion(v), false, v);
    }
  });
  it("semver compares by numbers, prereleases by semver's rules", () => {
    assert.ok(semver.compare("1.10.0", "1.9.0") > 0);
    assert.ok(semver.compare("2.0.0", "2.0.0-rc.1") > 0);
    assert.ok(semver.compare("2.0.0-rc.10", "2.0.0-rc.9") > 0);
    assert.equal(semver.compare("1.2.3", "1.2.3"), 0);
  });
  it("an index in order, or not, comes out newest first", () => {
    assert.deepEqual(sortNewestFirst(majorMinor, ["2.0", "1.10", "1.2"]), ["2.0", "1.10", "1.2"]);
    assert.deepEqual(sortNewestFirst(majorMinor, ["1.2", "2.0", "1.10", "junk"]), ["2.0", "1.10", "1.2", "junk"]);
    // Releases in order take the one-parse path; a repeat, a prerelease or one out of order, the general one.
    assert.deepEqual(sortNewestFirst(semver, ["10.0.0", "9.1.0", "9.0.10", "9.0.9"]), ["10.0.0", "9.1.0", "9.0.10", "9.0.9"]);
    assert.deepEqual(sortNewestFirst(semver, ["2.0.0", "1.0.0", "1.0.0"]), ["2.0.0", "1.0.0"]);
    assert.deepEqual(sortNewestFirst(semver, ["1.0.0", "2.0.0-rc.1", "1.10.0", "junk", "1.9.0"]), ["2.0.0-rc.1", "1.10.0", "1.9.0", "1.0.0", "junk"]);
  });
  it("an index of 10,000 versions: x:1 is the oldest series, x the newest release", () => {
    const versions = Array.from({ length: 10_000 }, (_, i) => `${10 - Math.floor(i / 1000)}.${9 - Math.floor((i % 1000) / 100)}.${99 - (i % 100)}`);
    assert.deepEqual(sortNewestFirst(semver, versions), versions);
    assert.equal(pick(semver, "x:1", versions), "1.9.99");
    assert.equal(pick(semver, "x:1.0", versions), "1.0.99");
    assert.equal(pick(semver, "x", ["3.0.0-rc.1", ...versions]), "10.9.99");
    assert.equal(semver.next(versions, series("1"), undefined), "1.10.0");
  });
});
