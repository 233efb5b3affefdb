// gc and prune on oci:// stores (docs/oci.md §6.3, §5.4), through the shipped CLI against registries A (tag
// deletion) and B (none): the tags a killed publisher leaves (written here by plain HTTP, back-dated) go, versions,
// channels, move records and receipts stay; prune deletes version tags, never a channel's; B refuses in one line.
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, it } from "node:test";
import { uniquePrefix } from "../conformance/factory.ts";
import { runCli, scratch, writeTree } from "../helpers/cli.ts";
import { TEST_SETTINGS, TEST_TUNING } from "../helpers/settings.ts";
import { OciLayout } from "../../src/registry/oci/oci-layout.ts";
import { openOciClient, parseOciUri } from "../../src/store/oci/open.ts";

const REGISTRY_A = process.env.ASSETKIT_TEST_OCI_A;
const REGISTRY_B = process.env.ASSETKIT_TEST_OCI_B;
const unavailable = !REGISTRY_A || !REGISTRY_B ? "no OCI registries (ASSETKIT_TEST_OCI_A/_B): run under node scripts/test.ts" : undefined;
if (unavailable && process.env.ASSETKIT_TEST_ALL_STORES === "1") throw new Error(unavailable);

const MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const DAY_MS = 24 * 60 * 60 * 1000;

/** A tag time as assetkit writes it: 7 base-36 characters of seconds. */
const tagTime = (ms: number) =>
  Math.floor(ms / 1000)
    .toString(36)
    .padStart(7, "0");

async function setup(registry: string) {
  const namespace = uniquePrefix();
  const store = `oci://${new URL(registry).host}/${namespace}?settle=0`;
  const cwd = await scratch();
  const cli = (...args: string[]) => runCli(args, { cwd, env: { ASSETKIT_STORE: store } });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the CLI's JSON documents, read field by field
  const json = async (...args: string[]): Promise<any> => {
    const r = await cli(...args, "--json");
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  const url = (name: string, path: string) => new URL(`/v2/${namespace}/${name}/${path}`, registry);
  const tags = async (name: string): Promise<string[]> => ((await (await fetch(url(name, "tags/list"))).json()) as { tags: string[] }).tags.sort();
  /** Tags `tag` on the manifest of `from`, as a publisher would. */
  const tag = async (name: string, from: string, tag: string) => {
    const body = Buffer.from(await (await fetch(url(name, `manifests/${from}`), { headers: { accept: MANIFEST } })).arrayBuffer());
    const res = await fetch(url(name, `manifests/${tag}`), { method: "PUT", body, headers: { "content-type": MANIFEST } });
    assert.equal(res.status, 201, `PUT ${tag}`);
  };
  const digest = async (name: string, reference: string) =>
    (await fetch(url(name, `manifests/${reference}`), { method: "HEAD", headers: { accept: MANIFEST } })).headers.get("docker-content-digest");
  const location = parseOciUri(store);
  /** A layout over its own client; `before(method, reference)` runs before each of that client's manifest calls (a racing writer). */
  const layoutOf = (before?: (method: string, reference: string) => Promise<void>) => {
    const client = openOciClient(location, TEST_TUNING, {});
    const racing = new Proxy(client, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== "function") return value;
        const method = (value as (...a: unknown[]) => unknown).bind(target);
        if (!before || typeof prop !== "string" || !prop.endsWith("Manifest")) return method;
        return async (repo: string, reference: string, ...rest: unknown[]) => {
          await before(prop, reference);
          return method(repo, reference, ...rest);
        };
      },
    });
    return new OciLayout(racing, location, { versioning: "semver", settings: TEST_SETTINGS });
  };
  return { cwd, cli, json, tags, tag, digest, layout: layoutOf(), layoutOf };
}

const promotion = () => ({ promoted_at: new Date().toISOString(), promoted_by: "test", source: {} });

describe("gc and prune on oci:// stores", { skip: unavailable }, () => {
  it("gc removes old holds, claims under which nothing was committed and orphan markers; versions, channels and receipts stay", async () => {
    const { cwd, cli, json, tags, tag } = await setup(REGISTRY_A!);
    await writeTree(cwd, { "m/a.txt": "one" });
    await json("publish", "m", "x");
    await writeTree(cwd, { "m/a.txt": "two" });
    await json("publish", "m", "x");
    await json("promote", "x:1.0.0", "prod");
    const before = await tags("x");
    assert.deepEqual(
      before.filter((t) => !t.startsWith("_c.")),
      ["1.0.0", "1.1.0", "_m.prod.1", "prod"],
      "on A a finished publish leaves no hold",
    );
    assert.equal(before.filter((t) => t.startsWith("_c.")).length, 3, "each version and the move keep their receipt");

    const old = tagTime(Date.now() - 2 * DAY_MS);
    const leftovers = [`_h.${old}.aaaaaaaaaaaa`, `_c.${old}.bbbbbbbbbbbb.1.2.0`, "_w.eeeeeeeeeeee"];
    const kept = [`_h.${tagTime(Date.now())}.dddddddddddd`, `_c.${old}.cccccccccccc.1.0.0`];
    for (const t of [...leftovers, ...kept]) await tag("x", "1.0.0", t);

    const plan = await json("gc", "--dry-run");
    assert.deepEqual(plan.plan.length, 3, plan.plan.join("\n"));
    for (const t of leftovers)
      assert.ok(
        plan.plan.some((line: string) => line.includes(t)),
        `planned: ${t}`,
      );
    assert.deepEqual(plan.recent, [`x: hold tag ${kept[0]}`]);
    assert.equal(plan.removed.claims, 3);
    assert.equal((await tags("x")).length, before.length + 5, "a dry run deletes nothing");

    const done = await json("gc");
    assert.equal(done.removed.claims, 3);
    assert.deepEqual(await tags("x"), [...before, ...kept].sort(), "only the leftovers went");
    assert.equal((await json("resolve", "x:prod")).resolved[0].version, "1.0.0");
    const text = await cli("gc");
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /removed 0 unfinished version\(s\).*0 claim\(s\)/);
  });

  it("registry B (no tag deletion): gc says what stays and why, exit 0; prune is a usage error that changes nothing", async () => {
    const { cwd, cli, json, tags } = await setup(REGISTRY_B!);
    for (const content of ["one", "two"]) {
      await writeTree(cwd, { "m/a.txt": content });
      await json("publish", "m", "x");
    }
    const before = await tags("x");
    assert.equal(before.filter((t) => t.startsWith("_h.")).length, 2, "B keeps every publish's hold");
    await sleep(1100);
    const gc = await json("gc", "--older-than", "1s");
    assert.equal(gc.removed.claims, 0);
    assert.deepEqual(gc.plan, []);
    assert.match(gc.note, /refuses tag deletion \(405\): 2 hold, claim or marker tag\(s\) older than 1s stay \(_h\./);
    const prune = await cli("prune", "--keep-last", "1", "--yes");
    assert.equal(prune.code, 2, prune.stderr);
    assert.match(
      prune.stderr.trim(),
      /^error: prune cannot delete versions on oci:\/\/.*: the registry refuses tag deletion \(405\) and has no packages API to delete through \(ghcr.io's is GitHub's; \?packages-api=\); nothing was deleted$/,
    );
    assert.deepEqual(await tags("x"), before);
  });

  it("prune deletes old version tags by policy, never a channel's; the plan first, then --yes", async () => {
    const { cwd, json, tags } = await setup(REGISTRY_A!);
    for (const content of ["one", "two", "three", "four"]) {
      await writeTree(cwd, { "m/a.txt": content });
      await json("publish", "m", "x");
    }
    await json("promote", "x:1.0.0", "prod");
    const plan = await json("prune", "--keep-last", "1");
    assert.deepEqual(
      plan.assets[0].remove.map((r: { version: string; size: number }) => [r.version, r.size]),
      [
        ["1.2.0", 5],
        ["1.1.0", 3],
      ],
    );
    assert.ok((await tags("x")).includes("1.1.0"), "the plan deletes nothing");
    const done = await json("prune", "--keep-last", "1", "--yes");
    assert.deepEqual(done.removed, { versions: 2, bytes: 8 });
    assert.deepEqual((await json("list", "x")).assets[0].versions, ["1.3.0", "1.0.0"]);
    assert.equal((await json("resolve", "x:prod")).resolved[0].version, "1.0.0");
  });

  it("a version a channel moved onto while prune withdrew it is tagged again, with the same manifest", async () => {
    const { cwd, json, tags, digest, layout } = await setup(REGISTRY_A!);
    for (const content of ["one", "two", "three"]) {
      await writeTree(cwd, { "m/a.txt": content });
      await json("publish", "m", "x");
    }
    const kept = await digest("x", "1.0.0");
    let seenDuring: string[] = [];
    const done = await layout.deleteVersions("x", ["1.0.0", "1.1.0"], async () => {
      seenDuring = await tags("x");
      return new Set(["1.0.0"]);
    });
    assert.ok(!seenDuring.includes("1.0.0") && !seenDuring.includes("1.1.0"), "both were withdrawn before the channels were read again");
    assert.deepEqual([done.reinstated, done.deleted.map((d) => d.version)], [["1.0.0"], ["1.1.0"]]);
    assert.equal(await digest("x", "1.0.0"), kept);
    assert.deepEqual((await json("list", "x")).assets[0].versions, ["1.2.0", "1.0.0"]);
  });

  // The promote side of the race (docs/oci.md §5.4): prune re-reads the channels after deleting, promote re-reads
  // the version tag after moving; these force each interleaving on registry A.
  const publishThree = async (cwd: string, json: (...args: string[]) => Promise<unknown>) => {
    for (const content of ["one", "two", "three"]) {
      await writeTree(cwd, { "m/a.txt": content });
      await json("publish", "m", "x");
    }
  };
  /** The versions the channels name now, as prune's re-check reads them. */
  const channelVersions = async (layout: OciLayout) => new Set(Object.values((await layout.aliases("x")).table).map((e) => e.version));

  it("a promotion that read the version before prune deleted it and moves after prune's re-check is undone and fails", async () => {
    const { cwd, json, tags, digest, layoutOf } = await setup(REGISTRY_A!);
    await publishThree(cwd, json);
    await json("promote", "x:1.2.0", "prod");
    const prodBefore = await digest("x", "prod");
    const pruner = layoutOf();
    let pruned: ReturnType<OciLayout["deleteVersions"]> | undefined;
    // The whole prune of 1.0.0 runs just before the promoter points the channel tag at it.
    const promoter = layoutOf(async (method, reference) => {
      if (method === "putManifest" && reference === "prod" && !pruned) await (pruned = pruner.deleteVersions("x", ["1.0.0"], () => channelVersions(pruner)));
    });
    await assert.rejects(
      promoter.promote("x", "prod", "1.0.0", promotion()),
      /: x:1\.0\.0 was deleted \(pruned\) while it was being promoted: x:prod is unchanged$/,
    );
    assert.deepEqual(
      (await pruned!).deleted.map((d) => d.version),
      ["1.0.0"],
    );
    assert.equal(await digest("x", "prod"), prodBefore, "the channel tag names its previous manifest again");
    const left = await tags("x");
    assert.deepEqual(
      left.filter((t) => !t.startsWith("_c.")),
      ["1.1.0", "1.2.0", "_m.prod.1", "prod"],
      "the undone move left no record",
    );
    assert.ok(!left.some((t) => t.endsWith(".m.prod.2")), "nor its claim");
    assert.equal((await json("resolve", "x:prod")).resolved[0].version, "1.2.0");
    await json("promote", "x:1.1.0", "prod");
    assert.deepEqual(
      (await json("history", "x:prod")).channels[0].history.map((h: { version: string }) => h.version),
      ["1.1.0", "1.2.0"],
      "the next move takes the freed slot",
    );
  });

  it("a new channel moved onto a version prune deleted meanwhile is removed again", async () => {
    const { cwd, json, tags, layoutOf } = await setup(REGISTRY_A!);
    await publishThree(cwd, json);
    const pruner = layoutOf();
    let pruned: Promise<unknown> | undefined;
    const promoter = layoutOf(async (method, reference) => {
      if (method === "putManifest" && reference === "prod" && !pruned) await (pruned = pruner.deleteVersions("x", ["1.0.0"], () => channelVersions(pruner)));
    });
    await assert.rejects(promoter.promote("x", "prod", "1.0.0", promotion()), /was deleted \(pruned\) while it was being promoted/);
    assert.deepEqual(
      (await tags("x")).filter((t) => !t.startsWith("_c.")),
      ["1.1.0", "1.2.0"],
    );
  });

  /**
   * A promoter whose move of `prod` onto 1.0.0 starts a prune of 1.0.0; the prune re-reads the channels once
   * `reread` resolves; `beforeRecheck` runs before the promoter's own re-check (its HEAD of tag 1.0.0).
   */
  const racingPrune = (
    layoutOf: (before?: (method: string, reference: string) => Promise<void>) => OciLayout,
    reread: Promise<void>,
    beforeRecheck: (pruned: Promise<unknown>) => Promise<void> = async () => {},
  ) => {
    const pruner = layoutOf();
    const race: { pruned?: ReturnType<OciLayout["deleteVersions"]> } = {};
    const promoter = layoutOf(async (method, reference) => {
      if (race.pruned && method === "headManifest" && reference === "1.0.0") return beforeRecheck(race.pruned);
      if (race.pruned || method !== "putManifest" || reference !== "prod") return;
      await new Promise<void>((deleted) => {
        race.pruned = pruner.deleteVersions("x", ["1.0.0"], async () => {
          deleted();
          await reread;
          return channelVersions(pruner);
        });
      });
    });
    return { promoter, race };
  };

  it("a move between prune's deletion and its re-check, re-checked after prune's: prune puts the version back, the promotion holds", async () => {
    const { cwd, json, layoutOf } = await setup(REGISTRY_A!);
    await publishThree(cwd, json);
    await json("promote", "x:1.2.0", "prod");
    let moved!: () => void;
    const { promoter, race } = racingPrune(layoutOf, new Promise<void>((r) => (moved = r)), async (pruned) => {
      moved();
      await pruned;
    });
    assert.deepEqual(await promoter.promote("x", "prod", "1.0.0", promotion()), { previous: "1.2.0", changed: true });
    moved(); // (a promoter without its re-check never let the prune go on)
    const done = await race.pruned!;
    assert.deepEqual([done.reinstated, done.deleted], [["1.0.0"], []]);
    assert.equal((await json("resolve", "x:prod")).resolved[0].version, "1.0.0");
  });

  it("a move between prune's deletion and its re-check, re-checked before prune's: the promotion backs off, prune deletes", async () => {
    const { cwd, json, layoutOf } = await setup(REGISTRY_A!);
    await publishThree(cwd, json);
    await json("promote", "x:1.2.0", "prod");
    let promoted!: () => void;
    const { promoter, race } = racingPrune(layoutOf, new Promise<void>((r) => (promoted = r)));
    await assert.rejects(promoter.promote("x", "prod", "1.0.0", promotion()), /was deleted \(pruned\) while it was being promoted/);
    promoted();
    const done = await race.pruned!;
    assert.deepEqual([done.reinstated, done.deleted.map((d) => d.version)], [[], ["1.0.0"]]);
    assert.equal((await json("resolve", "x:prod")).resolved[0].version, "1.2.0", "the channel went back where it was");
  });
});
