// --layout and assetkit.yml's layout: through the CLI on a folder store: the choice is checked, recorded in the
// meta (readers need no setting), followed by the next version, refused for serving in place; gc sweeps the blobs.
import assert from "node:assert/strict";
import path from "node:path";
import { describe, it } from "node:test";
import { runCli, scratch, writeTree } from "../helpers/cli.ts";

describe("--layout through the CLI", () => {
  it("checks the name, records the layout in the meta, keeps it for the next version, refuses in-place serving; gc sweeps orphans", async () => {
    const cwd = await scratch();
    const cli = (...args: string[]) => runCli([...args, "--store", "store"], { cwd });
    await writeTree(path.join(cwd, "in"), { "a.txt": "a", "b/c.txt": "c" });

    const bad = await cli("publish", "in", "m", "--layout", "packed");
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /content-addressed/);
    await writeTree(cwd, { "assetkit.yml": "layout: packed\n" });
    const badConfig = await cli("publish", "in", "m");
    assert.equal(badConfig.code, 2, badConfig.stderr);
    assert.match(badConfig.stderr, /layout "packed" is not one of modelkit, content-addressed/);

    await writeTree(cwd, { "assetkit.yml": "layout: content-addressed\n" });
    assert.equal((await cli("publish", "in", "m")).code, 0);
    await writeTree(cwd, { "assetkit.yml": "" });
    await writeTree(path.join(cwd, "in"), { "a.txt": "changed" });
    const next = await cli("publish", "in", "m");
    assert.match(next.stderr, /uploaded 1 file\(s\), 7 B; 1 file\(s\), 1 B, already in the store \(shared by content\)/);
    const shown = JSON.parse((await cli("show", "m", "--json")).stdout) as { assetkit: { layout?: string } };
    assert.equal(shown.assetkit.layout, "content-addressed", "the version it follows chose the layout");

    const inPlace = await cli("fetch", "m", "--in-place", "--assets-dir", "assets");
    assert.equal(inPlace.code, 1);
    assert.match(inPlace.stderr, /m:1\.1\.0 is stored content-addressed .* it cannot be served in place; fetch it into an assets dir instead/);
    assert.equal((await cli("fetch", "m:1.0.0", "m:1.1.0", "--assets-dir", "assets")).code, 0);

    assert.equal((await cli("prune", "m", "--keep-last", "1", "--yes")).code, 0);
    const gc = JSON.parse((await cli("gc", "--older-than", "0s", "--json")).stdout) as { removed: { blobs: number; blobBytes: number }; plan: string[] };
    assert.deepEqual([gc.removed.blobs, gc.removed.blobBytes], [1, 1], "1.0.0's a.txt, which no version lists now");
    assert.match(gc.plan.join("\n"), /removed 1 blob\(s\) of m that no version lists, 1 B/);
    assert.equal((await cli("fetch", "m", "--assets-dir", "assets2")).code, 0, "the remaining version still fetches");
  });
});
