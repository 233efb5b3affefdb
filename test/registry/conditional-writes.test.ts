// A store that ignores conditional writes (as old S3-compatible servers ignore If-None-Match) is detected at the
// first claim and refused, with nothing left behind, unless the user opts in to unsafe publishing. The wrapper
// drops the conditions the way such a server does: every write "succeeds".
import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { AssetError } from "../../src/base/errors.ts";
import { prepareInput } from "../../src/registry/manifest.ts";
import { Registry } from "../../src/registry/registry.ts";
import { FsStore } from "../../src/store/fs.ts";
import type { Body, Condition, Store } from "../../src/store/store.ts";
import { writeTree } from "../helpers/cli.ts";
import { TEST_SETTINGS } from "../helpers/settings.ts";

class IgnoresConditions extends FsStore {
  override write(key: string, body: Body, _condition?: Condition): Promise<boolean> {
    return super.write(key, body);
  }
}

describe("stores without conditional writes", () => {
  it("are refused for publishing with a clear error, and accepted with unsafePublish", async () => {
    const root = await mkdtemp(path.join(tmpdir(), "assetkit-nocond-"));
    const store: Store = new IgnoresConditions(root, "s3://old-server/bucket");
    const input = await prepareInput(await writeTree(await mkdtemp(path.join(tmpdir(), "assetkit-in-")), { f: "x" }));
    const request = { name: "m", input, createdBy: "test", source: {}, metadata: {} };
    await assert.rejects(
      new Registry(store, { settings: TEST_SETTINGS, versioning: "semver" }).publish(request),
      (err: unknown) => err instanceof AssetError && /s3:\/\/old-server\/bucket ignores conditional writes .* --unsafe-publish/.test(err.message),
    );
    const left: string[] = [];
    for await (const o of store.list("")) left.push(o.key);
    assert.deepEqual(left, [], "the refused publish leaves no claim and no data");
    const unsafe = await new Registry(store, { settings: TEST_SETTINGS, versioning: "semver", unsafePublish: true }).publish(request);
    assert.equal(unsafe.version, "1.0.0");
  });
});
