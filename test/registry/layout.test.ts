// The store layout is built and parsed in one module: every key it builds parses back to its asset, version and
// kind (nested names go to the most specific asset), and the claim document has one shape for every writer.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  aliasesKey,
  assetsIn,
  claimKey,
  dataKey,
  indexedAsset,
  indexKey,
  metaKey,
  metaVersion,
  parseVersionKey,
  signatureKey,
} from "../../src/registry/layout.ts";
import { claimDocument } from "../../src/registry/publish-protocol.ts";

describe("store layout", () => {
  it("builds the keys of the README's table", () => {
    assert.deepEqual(
      [
        dataKey("org/m", "1.2.0"),
        dataKey("org/m", "1.2.0", "a/b.bin"),
        metaKey("org/m", "1.2.0"),
        claimKey("org/m", "1.2.0"),
        signatureKey("org/m", "1.2.0"),
        indexKey("org/m"),
        aliasesKey("org/m"),
      ],
      ["org/m/1.2.0", "org/m/1.2.0/a/b.bin", "org/m/1.2.0.meta", "org/m/1.2.0.claim", "org/m/1.2.0.sig", "org/m.versions", "org/m.aliases"],
    );
  });

  it("parses each key it builds back to its version, the most specific asset first", () => {
    const names = assetsIn([indexKey("a"), indexKey("a/b"), claimKey("c", "0.1.0"), "stray.txt", indexKey("-bad")]);
    assert.deepEqual(names, ["a/b", "a", "c"]);
    for (const name of ["a", "a/b", "c"]) {
      assert.deepEqual(parseVersionKey(metaKey(name, "1.0.0"), names), { name, version: "1.0.0", kind: "meta" });
      assert.deepEqual(parseVersionKey(claimKey(name, "1.0.0"), names), { name, version: "1.0.0", kind: "claim" });
      assert.deepEqual(parseVersionKey(signatureKey(name, "1.0.0"), names), { name, version: "1.0.0", kind: "signature" });
      assert.deepEqual(parseVersionKey(dataKey(name, "1.0.0"), names), { name, version: "1.0.0", kind: "data" });
      assert.deepEqual(parseVersionKey(dataKey(name, "1.0.0", "x/y.bin"), names), { name, version: "1.0.0", kind: "data" });
    }
    assert.equal(parseVersionKey(indexKey("a/b"), names), undefined, "an index belongs to no version");
    assert.equal(parseVersionKey("a/notes/readme.md", names), undefined, "a folder that is no version");
    assert.equal(indexedAsset(indexKey("org/m")), "org/m");
    assert.equal(indexedAsset(aliasesKey("org/m")), undefined);
    assert.equal(metaVersion("m", metaKey("m", "2.0.0")), "2.0.0");
    assert.equal(metaVersion("m", `${dataKey("m", "2.0.0")}/x.meta`), undefined, "a file of a folder asset is no meta");
  });

  it("writes one claim document shape, with the source store only when copying a version in", () => {
    const publish = JSON.parse(claimDocument({ by: "me", at: "2026-01-01T00:00:00.000Z", digest: `sha256:${"0".repeat(64)}`, run_url: "u" }).body.toString());
    const copy = claimDocument({ by: "me", at: "2026-01-01T00:00:00.000Z", digest: null, from: "s3://b/p" });
    assert.deepEqual(Object.keys(publish), ["token", "by", "host", "pid", "at", "digest", "run_url"]);
    assert.deepEqual(Object.keys(JSON.parse(copy.body.toString())), ["token", "by", "host", "pid", "at", "digest", "from"]);
    assert.ok(copy.body.toString().includes(`"token":"${copy.token}"`), "the token is found as the claim loop looks for it");
  });
});
