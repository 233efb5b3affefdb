// prune racing readers and a promotion, on every Store of the conformance matrix: a fetch either returns the
// whole version (its files hash to the published digest) or fails cleanly with "not found"; no channel is ever
// left on a deleted version. Read-only stores (HTTP) are pruned and promoted through their writable seed.
import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { AssetsDir } from "../../src/local/assets-dir.ts";
import { fetchCommand } from "../../src/commands/fetch.ts";
import { promoteCommand } from "../../src/commands/promote.ts";
import { pruneCommand } from "../../src/commands/prune.ts";
import type { Context } from "../../src/commands/context.ts";
import { assetDigest, hashFile, prepareInput } from "../../src/registry/manifest.ts";
import { metaKey } from "../../src/registry/layout.ts";
import { Registry } from "../../src/registry/registry.ts";
import { deleteVersions } from "../../src/registry/prune.ts";
import type { Store } from "../../src/store/store.ts";
import { openStore } from "../../src/store/uri.ts";
import { writeTree } from "../helpers/cli.ts";
import { factories, skipReason } from "./stores.ts";
import { trustedRootSource } from "../../src/trust/keyless.ts";
import { TEST_SETTINGS, TEST_TUNING, testTransfers } from "../helpers/settings.ts";

const ASSET = "race/m";
const VERSIONS = 6;
const ROUNDS = 5;

async function contextOver(store: Store): Promise<Context> {
  const registry = new Registry(store, { settings: TEST_SETTINGS, versioning: "semver" });
  const dir = await mkdtemp(path.join(tmpdir(), "assetkit-race-"));
  const transfers = testTransfers();
  return {
    config: { dir, assets: [], channels: {} },
    registry,
    assetsDir: new AssetsDir(path.join(dir, "assets"), transfers),
    lockfilePath: path.join(dir, "assets.lock"),
    reporter: { info() {}, warn() {} },
    readLock: async () => undefined,
    tuning: TEST_TUNING,
    transfers,
    openStore: (uri, baseDir = dir) => openStore(uri, baseDir, TEST_TUNING),
    openRegistry: async (uri, baseDir = dir) => registry.withStore(await openStore(uri, baseDir, TEST_TUNING)),
    assetsDirAt: (root) => new AssetsDir(root, transfers),
    trustedRoots: trustedRootSource({ offline: true, cacheDir: path.join(dir, "tuf") }),
    offline: true,
  };
}

async function publishVersions(seed: Store): Promise<Map<string, string>> {
  const writer = new Registry(seed, { settings: TEST_SETTINGS, versioning: "semver" });
  const digests = new Map<string, string>();
  for (let i = 1; i <= VERSIONS; i++) {
    const dir = await writeTree(await mkdtemp(path.join(tmpdir(), "assetkit-in-")), {
      "a.bin": Buffer.alloc(64 * 1024, i),
      "sub/b.txt": `b${i}`,
      "c.json": `{"i":${i}}`,
    });
    const out = await writer.publish({ name: ASSET, input: await prepareInput(dir), version: `${i}.0.0`, createdBy: "test", source: {}, metadata: {} });
    digests.set(out.version, out.digest);
  }
  return digests;
}

const cleanFailure = /not found|no object|no such object|does not exist|not (a )?committed|no matching version|was deleted/i;

for (const factory of factories) {
  describe(`prune race: ${factory.name}`, { skip: skipReason(factory) }, () => {
    it("prune --keep-last 1 racing 4 fetches and a promote: no fetch returns partial data, no channel points at a deleted version", async (t) => {
      for (let round = 0; round < ROUNDS; round++) {
        const { store, seed } = await factory.create();
        const digests = await publishVersions(seed);
        const writer = await contextOver(seed);
        // Readers and the promotion start at random points of the prune: how long its planning takes is measured.
        const started = Date.now();
        await pruneCommand(await contextOver(seed), { keepLast: "1" });
        const later = () => new Promise((r) => setTimeout(r, Math.random() * 2 * (Date.now() - started)));
        const victim = `${1 + (round % (VERSIONS - 1))}.0.0`; // a version the prune deletes unless the promotion lands first
        const fetches = Array.from({ length: 4 }, async (_, i) => {
          const reader = await contextOver(store);
          await later();
          const version = `${1 + ((round + i) % VERSIONS)}.0.0`;
          return {
            version,
            out: await fetchCommand(reader, [`${ASSET}:${version}`]).then(
              (r) => ({ r }),
              (err: Error) => ({ err }),
            ),
          };
        });
        const [pruned, promoted, ...fetched] = await Promise.all([
          pruneCommand(writer, { keepLast: "1", apply: true }),
          later()
            .then(async () => promoteCommand(await contextOver(seed), `${ASSET}:${victim}`, { channel: "production" }))
            .then(
              (r) => ({ r }),
              (err: Error) => ({ err }),
            ),
          ...fetches,
        ]);
        assert.ok(pruned.removed.versions >= VERSIONS - 2);
        for (const { version, out } of fetched) {
          if ("err" in out) {
            assert.match(out.err.message, cleanFailure, `${version}: ${out.err.message}`);
            continue;
          }
          const local = out.r.resolved[0]!;
          const meta = await (await contextOver(seed)).registry.meta(ASSET, version).catch(() => undefined);
          const files = meta ? meta.files.map((f) => f.path) : ["a.bin", "c.json", "sub/b.txt"];
          const hashed = await Promise.all(files.map(async (rel) => ({ path: rel, ...(await hashFile(path.join(local.path, ...rel.split("/")))) })));
          assert.equal(assetDigest(hashed), digests.get(version), `${version} came back whole`);
        }
        if ("err" in promoted) assert.match(promoted.err.message, cleanFailure);
        const failed = fetched.filter((f) => "err" in f.out).length;
        t.diagnostic(
          `round ${round}: promote ${"err" in promoted ? "failed cleanly" : "held"}; fetches whole ${fetched.length - failed}, failed cleanly ${failed}`,
        );

        const check = await contextOver(seed);
        const { versions } = await check.registry.versions(ASSET);
        const channel = (await check.registry.aliases(ASSET)).table.production?.version;
        if (channel !== undefined) {
          assert.ok(versions.includes(channel), `production -> ${channel}, which is listed`);
          const again = await fetchCommand(await contextOver(store), [`${ASSET}:production`]);
          assert.equal(again.resolved[0]!.digest, digests.get(channel));
        }
        if (!("err" in promoted)) assert.equal(channel, victim, "a promotion that succeeded holds");
        for (const v of versions) assert.ok(await seed.head(metaKey(ASSET, v)), `${v} is listed and has its meta`);
      }
    });
  });
}

describe("prune and promote, both interleavings forced (file store)", () => {
  const setup = async () => {
    const { seed } = await factories[0]!.create();
    await publishVersions(seed);
    return {
      seed,
      pruner: new Registry(seed, { settings: TEST_SETTINGS, versioning: "semver" }),
      promoter: new Registry(seed, { settings: TEST_SETTINGS, versioning: "semver" }),
    };
  };
  const promotion = { promoted_at: new Date().toISOString(), promoted_by: "test", source: {} };

  it("a promotion that checked the index before the withdrawal and writes after prune's re-check is undone and fails", async () => {
    const { seed, pruner } = await setup();
    // The promoter's store runs the whole prune of 1.0.0 just before the promoter writes the alias table.
    let pruned: Promise<unknown> | undefined;
    const racing = new Proxy(seed, {
      get(target, prop, receiver) {
        if (prop !== "write") return Reflect.get(target, prop, receiver);
        return async (key: string, ...rest: unknown[]) => {
          if (key.endsWith(".aliases") && !pruned) await (pruned = deleteVersions(pruner, ASSET, ["1.0.0"], async () => new Set()));
          return (target.write as (...a: unknown[]) => Promise<boolean>)(key, ...rest);
        };
      },
    });
    const promoter = new Registry(racing, { settings: TEST_SETTINGS, versioning: "semver" });
    await assert.rejects(promoter.promote(ASSET, "production", "1.0.0", promotion), /was deleted \(pruned\) while it was being promoted/);
    assert.deepEqual(
      ((await pruned) as { deleted: { version: string }[] }).deleted.map((d) => d.version),
      ["1.0.0"],
    );
    assert.equal((await pruner.aliases(ASSET)).table.production, undefined, "the channel was put back (it did not exist)");
  });

  it("a promotion written between the withdrawal and prune's re-check: one of them backs off, the channel never points at a deleted version", async () => {
    const { seed, pruner, promoter } = await setup();
    await promoter.promote(ASSET, "production", "3.0.0", promotion);
    await promoter.versions(ASSET);
    const done = await deleteVersions(pruner, ASSET, ["1.0.0"], async () => {
      await assert.rejects(promoter.promote(ASSET, "production", "1.0.0", { ...promotion, promoted_at: new Date().toISOString() }));
      return new Set(Object.values((await pruner.aliases(ASSET)).table).map((e) => e.version));
    });
    assert.deepEqual(
      done.deleted.map((d) => d.version),
      ["1.0.0"],
    );
    const entry = (await pruner.aliases(ASSET)).table.production!;
    assert.equal(entry.version, "3.0.0", "the channel went back to where it was");
    assert.ok(await seed.head(metaKey(ASSET, "3.0.0")));
  });

  it("a channel that moved onto a version while it was being withdrawn keeps it listed", async () => {
    const { seed, pruner } = await setup();
    const done = await deleteVersions(pruner, ASSET, ["2.0.0", "4.0.0"], async () => new Set(["2.0.0"]));
    assert.deepEqual(done.reinstated, ["2.0.0"]);
    assert.deepEqual(
      done.deleted.map((d) => d.version),
      ["4.0.0"],
    );
    assert.deepEqual((await pruner.versions(ASSET)).versions, ["6.0.0", "5.0.0", "3.0.0", "2.0.0", "1.0.0"]);
    assert.ok(await seed.head(metaKey(ASSET, "2.0.0")));
  });
});
