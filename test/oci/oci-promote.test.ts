// promote --to into and out of OCI registries (docs/oci.md §8), through the shipped CLI against MinIO and the CNCF
// distribution registry A (scripts/test-servers.ts), behind a counting proxy where bytes sent matter: MinIO →
// registry (unchanged files skipped by HEAD) → folder store with the same version, digest and bytes; one
// repository to another of the same registry by blob mounts (no blob byte sent); a flipped byte on either side
// fails the promote with nothing tagged or listed at the destination; a signed version's `.sig` (tag `_s.<version>`).
import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { readFile, unlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";
import { startRequestCounter, type RequestCounter } from "../../scripts/request-counter.ts";
import { s3TestEnv } from "../conformance/factories/s3.ts";
import { uniquePrefix } from "../conformance/factory.ts";
import { runCli, scratch, writeTree } from "../helpers/cli.ts";

const REGISTRY_A = process.env.ASSETKIT_TEST_OCI_A;
const REGISTRY_A_ROOT = process.env.ASSETKIT_TEST_OCI_A_ROOT;
const MINIO = process.env.ASSETKIT_TEST_S3_ENDPOINT;
const unavailable =
  !REGISTRY_A || !REGISTRY_A_ROOT || !MINIO
    ? "no OCI registry A or MinIO (ASSETKIT_TEST_OCI_A, ASSETKIT_TEST_S3_ENDPOINT): run under node scripts/test.ts"
    : undefined;
if (unavailable && process.env.ASSETKIT_TEST_ALL_STORES === "1") throw new Error(unavailable);

const WEIGHTS_BYTES = 1_000_000;
const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";

/** A fresh namespace of the registry at `origin` (registry A, or the counting proxy in front of it). */
const ociStore = (origin: string) => `oci://${new URL(origin).host}/${uniquePrefix()}?settle=0`;
const minioStore = () => `s3://${process.env.ASSETKIT_TEST_S3_BUCKET}/${uniquePrefix()}?endpoint=${MINIO}`;

async function project() {
  const cwd = await scratch();
  const cli = (...args: string[]) => runCli(args, { cwd, env: s3TestEnv() });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the CLI's JSON documents, read field by field
  const json = async (...args: string[]): Promise<any> => {
    const r = await cli(...args, "--json");
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  /** Publishes folder `dir` (files of random bytes: blobs no other test has) as `name` at `version` into `store`. */
  const publish = async (store: string, name: string, version: string, files: Record<string, Buffer | string>) => {
    const dir = `in-${uniquePrefix()}`;
    await writeTree(path.join(cwd, dir), files);
    return (await json("publish", dir, name, "--version", version, "--store", store)) as { version: string; digest: string };
  };
  /** Fetches `spec` from `store` and asserts its digest and that every file is byte-identical to `files`. */
  const fetchesSame = async (store: string, spec: string, digest: string, files: Record<string, Buffer | string>) => {
    const [resolved] = (await json("fetch", spec, "--store", store, "--assets-dir", path.join(cwd, `assets-${uniquePrefix()}`))).resolved;
    assert.equal(resolved.digest, digest, `${spec} in ${store}`);
    for (const [rel, content] of Object.entries(files)) assert.deepEqual(await readFile(path.join(resolved.path, rel)), Buffer.from(content), rel);
  };
  /** The versions `list` shows of `name` in `store`: none when it has no asset of that name. */
  const versionsIn = async (store: string, name: string): Promise<string[]> => {
    const r = await cli("list", name, "--store", store, "--json");
    if (r.code === 1 && r.stderr.includes(`no asset named ${name}`)) return [];
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).assets[0].versions;
  };
  return { cwd, cli, json, publish, fetchesSame, versionsIn };
}

/** Bytes the client sent in blob uploads (PATCH/PUT under /blobs/uploads/): what crossed the process. */
const blobBytesSent = (counter: RequestCounter) =>
  counter
    .requests()
    .filter((r) => r.url.includes("/blobs/uploads/"))
    .reduce((sum, r) => sum + r.bytes, 0);

/** Flips one byte of a file, and gives back the function that restores it. */
async function flipByte(file: string, at: number): Promise<() => Promise<void>> {
  const bytes = await readFile(file);
  bytes[at]! ^= 0xff;
  await writeFile(file, bytes);
  return async () => {
    bytes[at]! ^= 0xff;
    await writeFile(file, bytes);
  };
}

describe("promote --to with OCI registries", { skip: unavailable }, () => {
  it("MinIO → registry (an unchanged file skipped by HEAD) → folder: same version, digest and bytes, promoted_from kept", async () => {
    const { cwd, cli, json, publish, fetchesSame } = await project();
    const counter = await startRequestCounter(REGISTRY_A!);
    try {
      const minio = minioStore();
      const registry = ociStore(counter.url);
      const folder = path.join(cwd, "folder-store");
      const v1 = { "weights.bin": randomBytes(WEIGHTS_BYTES), "config.json": '{"v":1}', "empty.txt": "" };
      const first = await publish(minio, "team/model", "1.4.0", v1);

      const copied = await json("promote", "team/model:1.4.0", "--store", minio, "--to", registry);
      assert.deepEqual(
        [copied.version, copied.digest, copied.copied, copied.from, copied.store],
        ["1.4.0", first.digest, true, minio, registry.replace(/\?.*/, "")],
      );
      await fetchesSame(registry, "team/model:1.4.0", first.digest, v1);
      const shown = await json("show", "team/model:1.4.0", "--store", registry);
      assert.equal(shown.promoted_from.store, copied.from);
      assert.equal(shown.promoted_from.digest, first.digest);
      const again = await json("promote", "team/model:1.4.0", "--store", minio, "--to", registry);
      assert.equal(again.copied, false, "already there with the same digest");

      // 1.5.0 changes config.json only: the weights are a blob the repository holds, so they are not sent again.
      const v2 = { ...v1, "config.json": '{"v":2}' };
      const second = await publish(minio, "team/model", "1.5.0", v2);
      counter.reset();
      const r = await cli("promote", "team/model:1.5.0", "production", "--store", minio, "--to", registry);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /copied 3 file\(s\) \(2 server-side, 1 streamed and verified\)/);
      assert.ok(blobBytesSent(counter) < 10_000, `only config.json and the config blob are uploaded (${blobBytesSent(counter)} bytes)`);
      await fetchesSame(registry, "team/model:production", second.digest, v2);

      const out = await json("promote", "team/model:production", "production", "--store", registry, "--to", folder);
      assert.deepEqual([out.version, out.digest, out.copied], ["1.5.0", second.digest, true]);
      await fetchesSame(folder, "team/model:1.5.0", second.digest, v2);
      await fetchesSame(folder, "team/model:production", second.digest, v2);
      assert.equal((await json("show", "team/model:1.5.0", "--store", folder)).promoted_from.store, registry.replace(/\?.*/, ""));
    } finally {
      await counter.stop();
    }
  });

  it("between two namespaces of one registry, every blob is mounted: no blob byte goes through the process", async () => {
    const { json, publish, fetchesSame, cli } = await project();
    const counter = await startRequestCounter(REGISTRY_A!);
    try {
      const [staging, production] = [ociStore(counter.url), ociStore(counter.url)];
      const files = { "weights.bin": randomBytes(WEIGHTS_BYTES), "sub/tokenizer.json": randomBytes(50_000) };
      const { digest } = await publish(staging, "llm", "2.0.0", files);
      counter.reset();
      const r = await cli("promote", "llm:2.0.0", "--store", staging, "--to", production);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /copied 2 file\(s\) \(2 server-side, 0 streamed and verified\)/);
      const mounts = counter.requests().filter((q) => q.method === "POST" && q.url.includes("mount="));
      assert.equal(mounts.length, 2, "one mount per file");
      assert.ok(blobBytesSent(counter) < 10_000, `only the config blob is uploaded (${blobBytesSent(counter)} bytes)`);
      await fetchesSame(production, "llm:2.0.0", digest, files);
      assert.equal((await json("resolve", "llm", "--store", production)).resolved[0].digest, digest);
    } finally {
      await counter.stop();
    }
  });

  it("max-blob: a split version goes registry → folder → registry, by part mounts within a registry, and whole where there is no limit", async () => {
    const { cwd, cli, json, publish, fetchesSame } = await project();
    const counter = await startRequestCounter(REGISTRY_A!);
    try {
      const split = (origin: string) => ociStore(origin) + "&max-blob=1MiB";
      const [staging, mirror, production, unlimited] = [split(counter.url), split(REGISTRY_A!), split(counter.url), ociStore(REGISTRY_A!)];
      const folder = path.join(cwd, "folder-store");
      const files = { "big.bin": randomBytes(2.5 * 1024 * 1024), "small.txt": "whole" };
      const { digest } = await publish(staging, "split", "3.0.0", files);
      const layers = async (store: string) => {
        const r = await fetch(`${REGISTRY_A}/v2/${new URL(store).pathname.slice(1)}/split/manifests/3.0.0`, {
          headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
        });
        return ((await r.json()) as { layers: { digest: string; annotations: Record<string, string> }[] }).layers.map((l) => [
          l.annotations["org.opencontainers.image.title"],
          l.digest,
        ]);
      };
      const stagingLayers = await layers(staging);
      assert.equal(stagingLayers.length, 4, "three parts of big.bin and small.txt");

      // Out of the registry: the folder store holds big.bin whole.
      const out = await cli("promote", "split:3.0.0", "--store", staging, "--to", folder);
      assert.equal(out.code, 0, out.stderr);
      await fetchesSame(folder, "split:3.0.0", digest, files);
      assert.deepEqual(await readFile(path.join(folder, "split/3.0.0/big.bin")), files["big.bin"]);

      // Back into a registry: big.bin read from the folder to hash its parts, then sent part by part, each checked.
      const back = await cli("promote", "split:3.0.0", "--store", folder, "--to", mirror);
      assert.equal(back.code, 0, back.stderr);
      assert.match(back.stderr, /stored as parts \(big\.bin: 3 parts\)/);
      assert.deepEqual(await layers(mirror), stagingLayers, "the same part layers as where it was published");
      await fetchesSame(mirror, "split:3.0.0", digest, files);

      // Within the registry, the parts' digests come from the source's manifest: each part is mounted, no byte sent.
      counter.reset();
      const mounted = await cli("promote", "split:3.0.0", "--store", staging, "--to", production);
      assert.equal(mounted.code, 0, mounted.stderr);
      assert.match(mounted.stderr, /copied 2 file\(s\) \(2 server-side, 0 streamed and verified\)/);
      assert.equal(counter.requests().filter((q) => q.method === "POST" && q.url.includes("mount=")).length, 4, "one mount per blob");
      assert.ok(blobBytesSent(counter) < 10_000, `only the config blob is uploaded (${blobBytesSent(counter)} bytes)`);
      await fetchesSame(production, "split:3.0.0", digest, files);

      // Into a namespace without the limit: big.bin is one blob again, read across the source's parts.
      assert.equal((await cli("promote", "split:3.0.0", "--store", staging, "--to", unlimited)).code, 0);
      assert.deepEqual(
        (await layers(unlimited)).map(([title]) => title),
        ["big.bin", "small.txt"],
      );
      await fetchesSame(unlimited, "split:3.0.0", digest, files);
      assert.equal((await json("resolve", "split:3.0.0", "--store", unlimited)).resolved[0].digest, digest);
    } finally {
      await counter.stop();
    }
  });

  it("max-blob: a single-file asset from MinIO is split into parts titled with its name, and fetched whole by ranges across them", async () => {
    const { cwd, json } = await project();
    const minio = minioStore();
    const registry = ociStore(REGISTRY_A!) + "&max-blob=3MiB";
    const weights = randomBytes(5.5 * 1024 * 1024);
    await writeFile(path.join(cwd, "weights.bin"), weights);
    const { digest } = await json("publish", "weights.bin", "team/weights", "--version", "1.0.0", "--store", minio);
    const copied = await json("promote", "team/weights:1.0.0", "--store", minio, "--to", registry);
    assert.deepEqual([copied.copied, copied.digest], [true, digest]);
    const manifest = (await (
      await fetch(`${REGISTRY_A}/v2/${new URL(registry).pathname.slice(1)}/team/weights/manifests/1.0.0`, {
        headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
      })
    ).json()) as { layers: { annotations: Record<string, string> }[] };
    assert.deepEqual(
      manifest.layers.map((l) => [l.annotations["org.opencontainers.image.title"], l.annotations["io.assetkit.part-of"]]),
      [
        ["weights.part-001-of-002", "weights"],
        ["weights.part-002-of-002", "weights"],
      ],
    );
    // Ranged reads of 5 MiB: the first takes part 1 whole and the start of part 2, the second the rest of part 2.
    const fetched = await runCli(["fetch", "team/weights:1.0.0", "--store", registry, "--json"], { cwd, env: { ...s3TestEnv(), ASSETKIT_PART_SIZE: "5MiB" } });
    assert.equal(fetched.code, 0, fetched.stderr);
    const [resolved] = JSON.parse(fetched.stdout).resolved;
    assert.equal(resolved.digest, digest);
    assert.deepEqual(await readFile(resolved.path), weights);
  });

  it("a byte flipped in the source fails the promote, and the destination has nothing tagged or listed", async () => {
    const { cwd, cli, json, publish, versionsIn } = await project();
    const folder = path.join(cwd, "folder-store");
    const weights = randomBytes(WEIGHTS_BYTES);

    // folder → registry: the folder store's file is damaged.
    await publish(folder, "damaged", "1.0.0", { "weights.bin": weights, "readme.md": "fine" });
    const registry = ociStore(REGISTRY_A!);
    const restoreFile = await flipByte(path.join(folder, "damaged/1.0.0/weights.bin"), 500_000);
    const into = await cli("promote", "damaged:1.0.0", "--store", folder, "--to", registry);
    assert.equal(into.code, 1, into.stderr);
    assert.match(into.stderr, /integrity check failed for weights\.bin/);
    assert.deepEqual(await versionsIn(registry, "damaged"), [], "nothing tagged");
    await restoreFile();

    // registry → folder: the registry's own blob is damaged.
    const source = ociStore(REGISTRY_A!);
    const blobWeights = randomBytes(WEIGHTS_BYTES);
    await publish(source, "damaged", "1.0.0", { "weights.bin": blobWeights, "readme.md": "fine" });
    const hex = (await json("show", "damaged:1.0.0", "--store", source)).assetkit.files.find((f: { path: string }) => f.path === "weights.bin").sha256;
    const blob = path.join(REGISTRY_A_ROOT!, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
    const restoreBlob = await flipByte(blob, 500_000);
    try {
      const other = path.join(cwd, "other-folder");
      const out = await cli("promote", "damaged:1.0.0", "--store", source, "--to", other);
      assert.equal(out.code, 1, out.stderr);
      assert.match(out.stderr, /integrity check failed for weights\.bin/);
      assert.deepEqual(await versionsIn(other, "damaged"), [], "nothing listed");
    } finally {
      await restoreBlob();
    }
  });

  it("signatures on a registry: publish --sign-key tags _s.<version> (a referrer of the version), fetch verifies it under a policy, promote --to carries it both ways, prune removes it", async () => {
    const { cwd, cli, json } = await project();
    const folder = path.join(cwd, "folder-store");
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    await writeFile(path.join(cwd, "release.pem"), privateKey.export({ type: "pkcs8", format: "pem" }));
    await writeFile(path.join(cwd, "release.pub"), publicKey.export({ type: "spki", format: "pem" }));
    await writeTree(cwd, { "in/m.bin": randomBytes(1000) });
    await writeFile(path.join(cwd, "assetkit.yml"), 'trust:\n  rules:\n    - match: "**"\n      signers:\n        - key: release.pub\n');
    const registry = ociStore(REGISTRY_A!);
    const repo = `${new URL(registry.replace("oci://", "http://")).pathname.slice(1)}/models/m`;
    const fetched = (store: string, spec: string) => cli("fetch", spec, "--store", store, "--assets-dir", path.join(cwd, `assets-${uniquePrefix()}`));

    // Published signed on the registry, and unsigned: the policy takes the first and refuses the second.
    await json("publish", "in", "models/m", "--version", "1.0.0", "--sign-key", "release.pem", "--store", registry);
    await json("publish", "in", "models/m", "--version", "1.0.1", "--store", registry);
    const ok = await fetched(registry, "models/m:1.0.0");
    assert.equal(ok.code, 0, ok.stderr);
    const unsigned = await fetched(registry, "models/m:1.0.1");
    assert.equal(unsigned.code, 1, unsigned.stderr);
    assert.match(unsigned.stderr, /models\/m:1\.0\.1: not signed \(no tag _s\.1\.0\.1 of .*\/models\/m in oci:\/\/.*\), and trust rule/);

    // The signature's manifest names the version's as its subject (OCI 1.1: a referrer where the registry has the
    // referrers API; distribution v3.1.2 has none) and holds the .sig as its one layer.
    const head = await fetch(`${REGISTRY_A}/v2/${repo}/manifests/1.0.0`, { method: "HEAD", headers: { accept: MANIFEST_TYPE } });
    const signature = (await (await fetch(`${REGISTRY_A}/v2/${repo}/manifests/_s.1.0.0`, { headers: { accept: MANIFEST_TYPE } })).json()) as {
      artifactType: string;
      subject: { digest: string };
      layers: { mediaType: string }[];
    };
    assert.equal(signature.subject.digest, head.headers.get("docker-content-digest"));
    assert.equal(signature.artifactType, "application/vnd.dev.sigstore.bundle.v0.3+json");
    assert.deepEqual(
      signature.layers.map((l) => l.mediaType),
      ["application/vnd.dev.sigstore.bundle.v0.3+json"],
    );

    // Carried to a folder store and back to another namespace of the registry, each copy verified under the policy.
    const promoted = await cli("promote", "models/m:1.0.0", "--store", registry, "--to", folder);
    assert.equal(promoted.code, 0, promoted.stderr);
    assert.equal((await fetched(folder, "models/m:1.0.0")).code, 0);
    const other = ociStore(REGISTRY_A!);
    const back = await cli("promote", "models/m:1.0.0", "--store", folder, "--to", other);
    assert.equal(back.code, 0, back.stderr);
    assert.doesNotMatch(back.stderr, /without its signature/);
    const again = await fetched(other, "models/m:1.0.0");
    assert.equal(again.code, 0, again.stderr);

    // Pruned with its version.
    await unlink(path.join(cwd, "assetkit.yml"));
    const pruned = await cli("prune", "models/m", "--keep-last", "1", "--yes", "--store", registry);
    assert.equal(pruned.code, 0, pruned.stderr);
    const { tags } = (await (await fetch(`${REGISTRY_A}/v2/${repo}/tags/list`)).json()) as { tags: string[] };
    assert.ok(tags.includes("1.0.1") && !tags.includes("1.0.0") && !tags.includes("_s.1.0.0"), tags.join(" "));
  });
});
