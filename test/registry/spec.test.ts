import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UsageError } from "../../src/base/errors.ts";
import { formatSpec, parseSpec } from "../../src/registry/spec.ts";

describe("spec grammar", () => {
  it("parses names, versions, series, ranges, aliases and sub-paths", () => {
    assert.deepEqual(parseSpec("models/sentiment"), { name: "models/sentiment", selector: { kind: "latest" } });
    assert.deepEqual(parseSpec("models/sentiment:1").selector, { kind: "numeric", text: "1", parts: [1], prerelease: false });
    assert.deepEqual(parseSpec("x:1.2.3-rc.1").selector, { kind: "numeric", text: "1.2.3-rc.1", parts: [1, 2, 3], prerelease: true });
    assert.deepEqual(parseSpec("x:^1.2").selector, { kind: "range", range: "^1.2" });
    assert.deepEqual(parseSpec("x:>=1 <2").selector, { kind: "range", range: ">=1 <2" });
    assert.deepEqual(parseSpec("x:production").selector, { kind: "alias", alias: "production" });
    assert.deepEqual(parseSpec("x:2026-12-06T20-11-40Z[a/b]"), {
      name: "x",
      selector: { kind: "date", text: "2026-12-06T20-11-40Z" },
      subPath: "a/b",
    });
    assert.deepEqual(parseSpec("indexes/aws-docs:2[faiss.index]"), {
      name: "indexes/aws-docs",
      selector: { kind: "numeric", text: "2", parts: [2], prerelease: false },
      subPath: "faiss.index",
    });
    assert.equal(parseSpec("x[a/b.txt]").subPath, "a/b.txt");
    assert.equal(formatSpec({ name: "x", version: "1.2.0", subPath: "a/b" }), "x:1.2.0[a/b]");
  });

  const refusals: [string, RegExp][] = [
    ["", /empty/],
    ["x:", /nothing after ':'/],
    ["../etc:1", /must start with a letter or digit/],
    ["a/../b", /'\.\.' segment/],
    ["a//b", /empty segment/],
    ["a/b/", /must end with a letter or digit/],
    ["a b", /may only contain/],
    ["a/.1.0.assetkit-tmp-0123456789ab/b", /reserved for assetkit's temporary files/],
    ["x:1.2.3.4", /more than three numbers/],
    ["x:1[../../etc/passwd]", /bad sub-path .*'\.\.' segment/],
    ["x:1[/abs]", /absolute/],
    ["x:1[a", /sub-path must be written/],
    ["x:Prod!", /bad version "Prod!"/],
    ["x:2026-12-06", /bad version "2026-12-06".*whole date version \(2026-12-06T20-11-40Z\)/],
    ["x:2026-12-06T20-11-40", /bad version/],
    ["x:2026-12-06t20-11-40z", /bad version/],
    ["a".repeat(600), /longer than 512/],
  ];
  for (const [spec, message] of refusals) {
    it(`refuses ${JSON.stringify(spec.slice(0, 30))} naming the bad part`, () => {
      assert.throws(
        () => parseSpec(spec),
        (err: unknown) => err instanceof UsageError && message.test(err.message),
      );
    });
  }

  it("refuses pathological inputs (the shapes that make backtracking regexes explode) with a usage error", () => {
    const hostile = [
      "a".repeat(2000) + "!",
      "x:" + "1.".repeat(120) + "x",
      "x:" + "(".repeat(250),
      "x:" + "^1 ".repeat(80) + "||!",
      "a" + "-a".repeat(1000) + "-",
      "x:1[" + "a/".repeat(1000) + "]",
      "x" + "[".repeat(3000),
    ];
    for (const spec of hostile) assert.throws(() => parseSpec(spec), UsageError);
  });
});
