// The KServe storage-initializer entry point (dist/storage-initializer.js) as KServe runs it,
// `<src-uri> <dest-path>`, against MinIO, fake-gcs-server and Azurite: the model dir gets exactly the version's
// files. No Kubernetes here: the contract is tried directly.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";
import { prepareInput } from "../../src/registry/manifest.ts";
import { Registry } from "../../src/registry/registry.ts";
import { FsStore } from "../../src/store/fs.ts";
import { azureFactory } from "../conformance/factories/azure.ts";
import { gcsFactory } from "../conformance/factories/gcs.ts";
import { s3Factory, s3TestEnv } from "../conformance/factories/s3.ts";
import type { StoreFactory } from "../conformance/factory.ts";
import { skipReason } from "../conformance/stores.ts";
import { cleanEnv, scratch, writeTree, type RunResult } from "../helpers/cli.ts";
import { TEST_SETTINGS } from "../helpers/settings.ts";

const INITIALIZER = path.resolve("dist/storage-initializer.js");

function initialize(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [INITIALIZER, ...args], { env: { ...cleanEnv(), ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Files under `dir` (relative, sorted) with their contents. */
async function filesIn(dir: string): Promise<Record<string, string>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
  return Object.fromEntries(await Promise.all(files.map(async (f) => [f, (await readFile(path.join(dir, f))).toString("base64")] as const)));
}

const cases: { factory: StoreFactory; env: () => NodeJS.ProcessEnv }[] = [
  { factory: s3Factory, env: s3TestEnv },
  { factory: gcsFactory, env: () => ({}) },
  { factory: azureFactory, env: () => ({ AZURE_STORAGE_CONNECTION_STRING: process.env.ASSETKIT_TEST_AZURE_CONNECTION_STRING ?? "" }) },
];

for (const { factory, env } of cases) {
  describe(`assetkit-storage-initializer: ${factory.name}`, { skip: skipReason(factory) }, () => {
    it("fills <dest-path> with exactly the files of the version the spec resolves to, or of its part", async () => {
      const { store, uri } = await factory.create();
      const registry = new Registry(store, { settings: TEST_SETTINGS, versioning: "semver" });
      const model = { "model.onnx": randomBytes(300_000), "config.json": "{}", "tokenizer/vocab.txt": "a\nb\n" };
      for (const files of [{ "model.onnx": "old" }, model]) {
        await registry.publish({
          name: "models/clf",
          input: await prepareInput(await writeTree(await scratch(), files)),
          createdBy: "test",
          source: {},
          metadata: {},
        });
      }
      await registry.promote("models/clf", "production", "1.1.0", { promoted_at: "2026-11-30T00:00:00.000Z", promoted_by: "test", source: {} });
      const source = `assetkit://${uri.replace("://", "/")}`;

      const dest = path.join(await scratch(), "mnt/models");
      const r = await initialize([`${source}#models/clf:production`, dest], env());
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /models\/clf:1\.1\.0 \(sha256:[0-9a-f]{64}\): 3 file\(s\) into /);
      const expected = Object.fromEntries(Object.entries(model).map(([k, v]) => [k, Buffer.from(v).toString("base64")]));
      assert.deepEqual(await filesIn(dest), expected);
      assert.deepEqual((await readdir(dest)).sort(), ["config.json", "model.onnx", "tokenizer"], "nothing else, no staging dir left");

      const part = path.join(await scratch(), "models");
      const sub = await initialize([`${source}#${encodeURIComponent("models/clf:1[tokenizer]")}`, part], env());
      assert.equal(sub.code, 0, sub.stderr);
      assert.deepEqual(Object.keys(await filesIn(part)), ["vocab.txt"]);

      const missing = await initialize([`${source}#models/clf:9`, path.join(await scratch(), "m")], env());
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /^error: models\/clf:9: no matching version/m);
    });
  });
}

describe("assetkit-storage-initializer: usage", () => {
  it("a bad URI or argument count exits 2 with the expected form; a single-file asset is named after the asset", async () => {
    for (const bad of ["s3://bucket/prefix", "assetkit://s3/bucket/prefix", "assetkit://ftp/host/x#m", "assetkit://s3#m:1", "assetkit://s3/b/p#"]) {
      const r = await initialize([bad, await scratch()]);
      assert.equal(r.code, 2, bad);
      assert.match(r.stderr, /^error: bad source URI .*expected assetkit:\/\/<scheme>\/<bucket-or-host>\/<prefix>#<spec>/, bad);
    }
    const one = await initialize(["assetkit://s3/b/p#m"]);
    assert.equal(one.code, 2);
    assert.match(one.stderr, /expected 2 arguments, got 1\nusage: assetkit-storage-initializer <src-uri> <dest-path>/);

    const cwd = await writeTree(await scratch(), { "w.bin": "weights" });
    const storeDir = path.join(cwd, "store");
    await new Registry(new FsStore(storeDir), { settings: TEST_SETTINGS, versioning: "semver" }).publish({
      name: "models/weights",
      input: await prepareInput(path.join(cwd, "w.bin")),
      createdBy: "test",
      source: {},
      metadata: {},
    });
    const dest = path.join(cwd, "dest");
    const r = await initialize([`assetkit://file${storeDir}#models/weights`, dest]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await filesIn(dest), { weights: Buffer.from("weights").toString("base64") });
  });
});
