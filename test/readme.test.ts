// The README's store URI rules in step with the code: the query parameters it says each scheme knows are the ones
// src/store/uri.ts accepts.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { KNOWN_PARAMETERS } from "../src/store/location.ts";

describe("README", () => {
  it("names the query parameters each store URI scheme accepts", async () => {
    const readme = (await readFile("README.md", "utf8")).replace(/\s+/g, " ");
    const rule = /any query parameter they do not know \(([^)]*)\)/.exec(readme);
    assert.ok(rule, "the README's Store URIs rule lists the parameters of each scheme");
    const documented = Object.fromEntries(
      rule[1]!.split(";").map((part) => {
        const [, scheme, parameters] = /`(\w+):\/\/`:(.*)/.exec(part) ?? assert.fail(`not "\`scheme://\`: \`parameter\`, …": ${part}`);
        return [scheme!, [...parameters!.matchAll(/`(\w+)`/g)].map((m) => m[1]!).sort()];
      }),
    );
    assert.deepEqual(documented, Object.fromEntries(Object.entries(KNOWN_PARAMETERS).map(([scheme, names]) => [scheme, [...names].sort()])));
  });
});
