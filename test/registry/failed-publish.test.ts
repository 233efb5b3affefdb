// A publish whose upload fails removes what it wrote, including the uploads still running when the failure came:
// the clean-up waits for them (a write that lands after the clean-up would be a data object no meta describes).
import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { prepareInput } from "../../src/registry/manifest.ts";
import { Registry } from "../../src/registry/registry.ts";
import { FsStore } from "../../src/store/fs.ts";
import type { Body, Condition } from "../../src/store/store.ts";
import { writeTree } from "../helpers/cli.ts";
import { TEST_SETTINGS } from "../helpers/settings.ts";

/** A folder store whose write of `b-bad.bin` fails at once and whose write of `a-slow.bin` (started first: files go in path order) takes 300 ms. */
class OneBadOneSlow extends FsStore {
  override async write(key: string, body: Body, condition?: Condition): Promise<boolean> {
    if (key.endsWith("/b-bad.bin")) throw new Error("disk full");
    if (key.endsWith("/a-slow.bin")) await sleep(300);
    return super.write(key, body, condition);
  }
}

describe("a publish whose upload fails", () => {
  it("leaves no data object, not even one whose upload was still running when another failed", async () => {
    const root = await mkdtemp(path.join(tmpdir(), "assetkit-failed-publish-"));
    const store = new OneBadOneSlow(root);
    const input = await prepareInput(await writeTree(await mkdtemp(path.join(tmpdir(), "assetkit-in-")), { "a-slow.bin": "s", "b-bad.bin": "b" }));
    const registry = new Registry(store, { settings: TEST_SETTINGS, versioning: "semver" });
    await assert.rejects(registry.publish({ name: "m", input, createdBy: "test", source: {}, metadata: {} }), /disk full/);
    await sleep(400); // longer than the slow write: anything it would still land is there now
    const left: string[] = [];
    for await (const o of store.list("")) left.push(o.key);
    assert.deepEqual(left, [], "no claim, no data, no meta");
  });
});

/** A folder store whose write of any `.meta` fails: a publish that got as far as its signature. */
class MetaWriteFails extends FsStore {
  override async write(key: string, body: Body, condition?: Condition): Promise<boolean> {
    if (key.endsWith(".meta")) throw new Error("disk full");
    return super.write(key, body, condition);
  }
}

describe("a signed publish whose meta write fails", () => {
  it("leaves no signature, no data, no claim", async () => {
    const root = await mkdtemp(path.join(tmpdir(), "assetkit-failed-publish-"));
    const store = new MetaWriteFails(root);
    const input = await prepareInput(await writeTree(await mkdtemp(path.join(tmpdir(), "assetkit-in-")), { "a.bin": "a" }));
    const registry = new Registry(store, { settings: TEST_SETTINGS, versioning: "semver" });
    const signed: string[] = [];
    const sign = (v: { name: string; version: string }) => (signed.push(`${v.name}:${v.version}`), Buffer.from("a signature"));
    await assert.rejects(registry.publish({ name: "m", input, createdBy: "test", source: {}, metadata: {}, sign }), /disk full/);
    assert.deepEqual(signed, ["m:1.0.0"]);
    const left: string[] = [];
    for await (const o of store.list("")) left.push(o.key);
    assert.deepEqual(left, [], "no .sig, claim, data or meta");
  });

  it("of a sharded meta leaves no shard either", async () => {
    const root = await mkdtemp(path.join(tmpdir(), "assetkit-failed-publish-"));
    const store = new MetaWriteFails(root);
    const tree = Object.fromEntries(Array.from({ length: 7 }, (_, i) => [`d/${i}.txt`, `${i}`]));
    const input = await prepareInput(await writeTree(await mkdtemp(path.join(tmpdir(), "assetkit-in-")), tree));
    const registry = new Registry(store, { settings: TEST_SETTINGS, versioning: "semver" });
    process.env.ASSETKIT_META_SHARD_FILES = "2";
    try {
      await assert.rejects(registry.publish({ name: "m", input, createdBy: "test", source: {}, metadata: {} }), /disk full/);
    } finally {
      delete process.env.ASSETKIT_META_SHARD_FILES;
    }
    const left: string[] = [];
    for await (const o of store.list("")) left.push(o.key);
    assert.deepEqual(left, [], "no shard, claim, data or meta");
  });
});
