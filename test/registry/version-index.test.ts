// The version index at scale and in every shape it is found in: 10,000 versions resolve from the index alone
// (no meta read), `list` pages through them, and indexes written by modelkit or by hand still read as before.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { before, describe, it } from "node:test";
import { runCli, scratch, writeTree } from "../helpers/cli.ts";

/** 10.9.99, 10.9.98, … 1.0.0: newest first, as assetkit writes an index. */
const VERSIONS = Array.from({ length: 10_000 }, (_, i) => `${10 - Math.floor(i / 1000)}.${9 - Math.floor((i % 1000) / 100)}.${99 - (i % 100)}`);
const digestOf = (version: string) => `sha256:${createHash("sha256").update(version).digest("hex")}`;
/** A meta as modelkit writes it (no assetkit block, so no digest). */
const MODELKIT_META = JSON.stringify({ push_date: "2026-01-01T00:00:00Z", is_directory: false, contents: [] });

async function project(files: Record<string, string>) {
  const cwd = await scratch();
  await writeTree(path.join(cwd, ".assetkit/store"), files);
  return { cwd, cli: (...args: string[]) => runCli(args, { cwd }) };
}

interface Listed {
  assets: { name: string; versions: string[] }[];
  next?: string;
}
interface Resolved {
  resolved: { version: string; digest: string | null }[];
}

async function json<T = Listed>(run: Promise<{ code: number; stdout: string; stderr: string }>): Promise<T> {
  const { code, stdout, stderr } = await run;
  assert.equal(code, 0, stderr);
  return JSON.parse(stdout);
}

describe("an asset with 10,000 versions", () => {
  let cli: (...args: string[]) => ReturnType<typeof runCli>;
  before(async () => {
    // No metas at all: whatever resolves did so from the index alone.
    const index = { versions: VERSIONS, digests: Object.fromEntries(VERSIONS.map((v) => [v, digestOf(v)])) };
    ({ cli } = await project({ "m.versions": JSON.stringify(index) }));
  });

  it("resolves latest, a series and a range from the index, digests included", async () => {
    const out = await json<Resolved>(cli("resolve", "m", "m:1", "m:3.4", "m:^7.2", "m:5.5.5", "--json"));
    assert.deepEqual(
      out.resolved.map((r) => [r.version, r.digest]),
      ["10.9.99", "1.9.99", "3.4.99", "7.9.99", "5.5.5"].map((v) => [v, digestOf(v)]),
    );
  });

  it("lists in pages: --limit, --after the previous page's next, to the end", async () => {
    const first = await json(cli("list", "m", "--limit", "3", "--json"));
    assert.deepEqual(first, { assets: [{ name: "m", versions: ["10.9.99", "10.9.98", "10.9.97"] }], next: "10.9.97" });
    const second = await json(cli("list", "m", "--limit", "2", "--after", first.next!, "--json"));
    assert.deepEqual(second, { assets: [{ name: "m", versions: ["10.9.96", "10.9.95"] }], next: "10.9.95" });
    // A cursor no longer listed (pruned between pages) still says where the next page starts.
    assert.deepEqual((await json(cli("list", "m", "--limit", "1", "--after", "10.9.95-rc.1", "--json"))).assets[0]!.versions, ["10.9.94"]);
    const last = await json(cli("list", "m", "--after", "1.0.1", "--limit", "5", "--json"));
    assert.deepEqual(last, { assets: [{ name: "m", versions: ["1.0.0"] }] }, "the last page has no next");
    assert.equal((await json(cli("list", "m", "--json"))).assets[0]!.versions.length, 10_000, "without --limit, every version");
    const text = await cli("list", "m", "--limit", "2");
    assert.equal(text.stdout, "m\t10.9.99 10.9.98\n");
    assert.match(text.stderr, /more follow: add --after 10\.9\.98/);
  });

  it("refuses a page size below 1 and a cursor that is no version (exit 2)", async () => {
    for (const [args, message] of [
      [["--limit", "0"], /^error: bad --limit "0": write a whole number of at least 1$/m],
      [["--after", "latest"], /^error: --after latest: not a semver version, as m's are$/m],
    ] as const) {
      const r = await cli("list", "m", ...args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, message);
    }
  });
});

describe("indexes as others leave them", () => {
  it("modelkit's (no digests) or a hand-edited one (out of order, repeats, a prerelease, junk) reads as before", async () => {
    const versions = ["1.2.0", "1.10.0", "1.10.0", "2.0.0-rc.1", "junk", "1.9.3"];
    const { cli } = await project({ "m.versions": JSON.stringify({ versions }), ...Object.fromEntries(versions.map((v) => [`m/${v}.meta`, MODELKIT_META])) });
    assert.deepEqual((await json(cli("list", "m", "--json"))).assets[0]!.versions, ["2.0.0-rc.1", "1.10.0", "1.9.3", "1.2.0"]);
    const out = await json<Resolved>(cli("resolve", "m", "m:1.9", "--json"));
    assert.deepEqual(
      out.resolved.map((r) => [r.version, r.digest]),
      [
        ["1.10.0", null],
        ["1.9.3", null],
      ],
    );
  });

  it("a malformed digest in the index is not used (the meta answers) and is dropped when the index is next written", async () => {
    const { cwd, cli } = await project({
      "m.versions": JSON.stringify({ versions: ["1.0.0"], digests: { "1.0.0": "sha256:not-hex", constructor: digestOf("x") } }),
      "m/1.0.0.meta": MODELKIT_META,
      "m/1.0.0": "one",
    });
    assert.equal((await json<Resolved>(cli("resolve", "m", "--json"))).resolved[0]!.digest, null);
    await writeTree(cwd, { "in.txt": "two" });
    const published = await json<{ version: string; digest: string }>(cli("publish", "in.txt", "m", "--json"));
    assert.equal(published.version, "1.1.0");
    const index = JSON.parse(await readFile(path.join(cwd, ".assetkit/store/m.versions"), "utf8"));
    assert.deepEqual(index, { versions: ["1.1.0", "1.0.0"], digests: { "1.1.0": published.digest } });
  });

  it("pages through the assets of a store by name", async () => {
    const index = JSON.stringify({ versions: ["1.0.0"], digests: {} });
    const { cli } = await project({ "a.versions": index, "b.versions": index, "c/d.versions": index });
    const first = await json(cli("list", "--limit", "2", "--json"));
    assert.deepEqual(
      first.assets.map((a) => a.name),
      ["a", "b"],
    );
    assert.equal(first.next, "b");
    assert.deepEqual(await json(cli("list", "--limit", "2", "--after", "b", "--json")), { assets: [{ name: "c/d", versions: ["1.0.0"] }] });
  });
});
