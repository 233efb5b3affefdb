// OCI registries as stores (docs/oci.md), through the shipped CLI against real CNCF distribution registries
// (scripts/test-servers.ts): A with tag deletion, B without (claims withdrawn by marker tags). Round trip, the claim
// rule under 16 concurrent publisher processes, a flipped byte in the registry's own storage, --version refusals,
// ORAS pulling what assetkit published, and the commands that refuse oci:// for now.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { access, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { describe, it } from "node:test";
import { uniquePrefix } from "../conformance/factory.ts";
import { cleanEnv, runCli, scratch, startCli, writeTree, type RunResult } from "../helpers/cli.ts";
import { FaultProxy } from "../helpers/fault-proxy.ts";
import { goBinDir } from "../../scripts/test-servers.ts";

const REGISTRY_A = process.env.ASSETKIT_TEST_OCI_A;
const REGISTRY_A_ROOT = process.env.ASSETKIT_TEST_OCI_A_ROOT;
const REGISTRY_B = process.env.ASSETKIT_TEST_OCI_B;
const unavailable = !REGISTRY_A || !REGISTRY_A_ROOT || !REGISTRY_B ? "no OCI registries (ASSETKIT_TEST_OCI_A/_B): run under node scripts/test.ts" : undefined;
if (unavailable && process.env.ASSETKIT_TEST_ALL_STORES === "1") throw new Error(unavailable);

/** A fresh namespace on a registry, as a store URI (settle 0: one distribution instance lists its tags at once). */
function storeOn(registry: string, query = "settle=0"): string {
  return `oci://${new URL(registry).host}/${uniquePrefix()}?${query}`;
}

async function project(store: string): Promise<{
  cwd: string;
  cli: (...args: string[]) => Promise<RunResult>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the CLI's JSON documents, read field by field
  json: (...args: string[]) => Promise<any>;
}> {
  const cwd = await scratch();
  const env = { ASSETKIT_STORE: store };
  const cli = (...args: string[]) => runCli(args, { cwd, env });
  const json = async (...args: string[]) => {
    const r = await cli(...args, "--json");
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  return { cwd, cli, json };
}

const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";
const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");

describe("oci:// stores", { skip: unavailable }, () => {
  it("publish, list, resolve, show, fetch, lock and verify a folder and a single file", async () => {
    const store = storeOn(REGISTRY_A!);
    const { cwd, cli, json } = await project(store);
    const files = {
      "model/weights/model.safetensors": Buffer.alloc(300_000, 5),
      "model/config.json": '{"a":1}',
      "model/empty.txt": "",
      "single.bin": "one file",
    };
    await writeTree(cwd, files);

    const first = await json("publish", "model", "team/sentiment");
    assert.deepEqual([first.version, first.published], ["1.0.0", true]);
    const again = await json("publish", "model", "team/sentiment");
    assert.equal(again.version, "1.1.0", "a second publish takes the next (minor) version");
    const single = await json("publish", "single.bin", "team/single");

    assert.deepEqual((await json("list", "team/sentiment")).assets, [{ name: "team/sentiment", versions: ["1.1.0", "1.0.0"] }]);
    assert.deepEqual(
      (await json("list")).assets.map((a: { name: string }) => a.name),
      ["team/sentiment", "team/single"],
    );
    for (const [spec, version] of [
      ["team/sentiment", "1.1.0"],
      ["team/sentiment:1", "1.1.0"],
      ["team/sentiment:1.0.0", "1.0.0"],
      ["team/sentiment:latest", "1.1.0"],
    ] as const) {
      const r = (await json("resolve", spec)).resolved[0];
      assert.deepEqual([r.version, r.digest], [version, version === "1.0.0" ? first.digest : again.digest], spec);
    }
    const shown = await json("show", "team/sentiment:1.0.0");
    assert.deepEqual(
      shown.assetkit.files.map((f: { path: string; etag: string; sha256: string }) => [f.path, f.etag === `sha256:${f.sha256}`]),
      [
        ["config.json", true],
        ["empty.txt", true],
        ["weights/model.safetensors", true],
      ],
    );
    assert.match(shown.oci.reference, /^127\.0\.0\.1:\d+\/[^@]+\/team\/sentiment@sha256:[0-9a-f]{64}$/);
    assert.deepEqual(shown.oci.split, [], "no file split: no part to tell of");

    const fetched = (await json("fetch", "team/sentiment:1.0.0", "team/single")).resolved;
    assert.deepEqual(await readFile(path.join(fetched[0].path, "weights/model.safetensors")), files["model/weights/model.safetensors"]);
    assert.equal(await readFile(path.join(fetched[0].path, "empty.txt"), "utf8"), "");
    assert.equal(await readFile(fetched[1].path, "utf8"), "one file");
    assert.equal(fetched[1].digest, single.digest);

    const locked = await json("lock", "team/sentiment:1");
    assert.deepEqual([locked.resolved[0].version, locked.resolved[0].digest], ["1.1.0", again.digest]);
    const lockfile = await readFile(locked.lockfile, "utf8");
    assert.ok(lockfile.includes(store.slice(0, store.indexOf("?"))), "the lockfile names the store without its parameters");
    assert.equal((await cli("verify")).code, 0);

    const served = path.join(cwd, "served");
    assert.equal((await cli("sync", "team/single", "--dir", served)).code, 0);
    assert.equal(await readFile(path.join(served, "team/single/current"), "utf8"), "one file");
    const initialized = path.join(cwd, "initialized");
    const host = new URL(REGISTRY_A!).host;
    const source = `assetkit://oci/${host}/${new URL(store).pathname.slice(1)}?settle=0#team/sentiment:1.0.0`;
    await promisify(execFile)(process.execPath, [path.resolve("dist/storage-initializer.js"), source, initialized], { env: cleanEnv() });
    assert.equal(await readFile(path.join(initialized, "config.json"), "utf8"), '{"a":1}');
    const imported = await json("import", path.join(cwd, "model"), "team/imported");
    assert.equal(imported.digest, first.digest, "an import of the same folder has the same digest");
  });

  it("16 concurrent publisher processes get 16 distinct versions; none is overwritten and each fetches", async () => {
    const store = storeOn(REGISTRY_A!);
    const cwd = await scratch();
    const count = 16;
    for (let i = 0; i < count; i++) await writeTree(cwd, { [`in${i}/data.txt`]: `publisher ${i}` });
    const runs = await Promise.all(
      Array.from({ length: count }, (_, i) => startCli(["publish", `in${i}`, "race", "--json"], { cwd, env: { ASSETKIT_STORE: store } })),
    );
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const published = runs.map((r) => JSON.parse(r.stdout) as { version: string; digest: string });
    const versions = published.map((p) => p.version).sort((a, b) => Number(a.split(".")[1]) - Number(b.split(".")[1]));
    assert.deepEqual(
      versions,
      Array.from({ length: count }, (_, i) => `1.${i}.0`),
    );
    const { json } = await project(store);
    const specs = published.map((p) => `race:${p.version}`);
    const fetched = (await json("fetch", ...specs)).resolved as { version: string; digest: string; path: string }[];
    for (const [i, p] of published.entries()) {
      assert.equal(fetched[i]!.digest, p.digest, `race:${p.version} holds the manifest its publisher committed`);
      assert.equal(await readFile(path.join(fetched[i]!.path, "data.txt"), "utf8"), `publisher ${i}`);
    }
  });

  it("the first claim goes up before the blobs, so its settle passes while they upload; the deciding listing still comes a settle after it, and the claim ends as the version's receipt", async () => {
    const proxy = await FaultProxy.start(REGISTRY_A!);
    try {
      const namespace = uniquePrefix();
      const { cwd, json } = await project(`oci://${new URL(proxy.url).host}/${namespace}?settle=1s`);
      const weights = Buffer.alloc(2_000_000, 3); // over UNASKED_BLOB_BYTES: its upload starts with a HEAD
      await writeTree(cwd, { "model/weights.bin": weights, "model/config.json": "{}" });
      // Every request, with when it reached the registry (a predicate that never injects anything).
      const requests: { at: number; line: string }[] = [];
      proxy.inject({
        fault: { kind: "reset" },
        when: (req) => {
          requests.push({ at: Date.now(), line: `${req.method} ${req.url}` });
          return false;
        },
      });
      const { version } = await json("publish", "model", "early");
      const repo = `${namespace}/early`;
      const claimPuts = requests.filter((r) => r.line.startsWith(`PUT /v2/${repo}/manifests/_c.`));
      assert.equal(claimPuts.length, 2, "one claim, on a stand-in first, then on the version's manifest");
      assert.equal(new Set(claimPuts.map((r) => r.line)).size, 1);
      const weightsHead = requests.findIndex((r) => r.line === `HEAD /v2/${repo}/blobs/sha256:${sha256(weights)}`);
      assert.ok(requests.indexOf(claimPuts[0]!) < weightsHead, "claimed before the files' blobs went up");
      const deciding = requests.slice(requests.indexOf(claimPuts[1]!)).find((r) => r.line.startsWith(`GET /v2/${repo}/tags/list`))!;
      assert.ok(deciding.at - claimPuts[0]!.at >= 1000, `the deciding listing came ${deciding.at - claimPuts[0]!.at} ms after the claim`);
      const digestOf = async (reference: string) =>
        (await fetch(`${REGISTRY_A}/v2/${repo}/manifests/${reference}`, { method: "HEAD", headers: { accept: MANIFEST_TYPE } })).headers.get(
          "docker-content-digest",
        );
      const claimTag = claimPuts[0]!.line.slice(claimPuts[0]!.line.lastIndexOf("/") + 1);
      assert.equal(await digestOf(claimTag), await digestOf(version), "the receipt names the version's manifest");
    } finally {
      await proxy.stop();
    }
  });

  it("a publish asks (HEAD) about the blobs the previous version lists and those over 1 MiB, and sends other small ones at once", async () => {
    const proxy = await FaultProxy.start(REGISTRY_A!);
    try {
      const namespace = uniquePrefix();
      const { cwd, json } = await project(`oci://${new URL(proxy.url).host}/${namespace}?settle=0`);
      const lines: string[] = [];
      proxy.inject({
        fault: { kind: "reset" },
        when: (req) => {
          lines.push(`${req.method} ${req.url}`); // a log: never injects
          return false;
        },
      });
      const repo = `${namespace}/asked`;
      const asked = (data: Buffer | string) => lines.filter((l) => l === `HEAD /v2/${repo}/blobs/sha256:${sha256(data)}`).length;
      const sent = (data: Buffer | string) =>
        lines.filter((l) => l.startsWith(`PUT /v2/${repo}/blobs/uploads/`) && l.includes(`sha256%3A${sha256(data)}`)).length;
      const large = randomBytes(1024 * 1024 + 1);
      await writeTree(cwd, { "m/a.txt": "a", "m/b.txt": "b", "m/large.bin": large });
      await json("publish", "m", "asked");
      assert.deepEqual([asked("a"), sent("a"), asked("b"), sent("b")], [0, 1, 0, 1], "a first publish sends its small blobs unasked");
      assert.deepEqual([asked(large), sent(large)], [1, 1], "a large one is asked about first");

      lines.length = 0;
      await writeTree(cwd, { "m/b.txt": "b2" });
      await json("publish", "m", "asked");
      assert.deepEqual([asked("a"), sent("a")], [1, 0], "the previous version's blob is asked about, and not sent again");
      assert.deepEqual([asked(large), sent(large)], [1, 0]);
      assert.deepEqual([asked("b2"), sent("b2")], [0, 1], "a new small blob goes unasked");
    } finally {
      await proxy.stop();
    }
  });

  it("registry B (no tag deletion): concurrent publishers withdraw lost claims by marker tags", async () => {
    const store = storeOn(REGISTRY_B!);
    const cwd = await scratch();
    for (let i = 0; i < 4; i++) await writeTree(cwd, { [`in${i}/f.txt`]: `b ${i}` });
    const runs = await Promise.all(
      Array.from({ length: 4 }, (_, i) => startCli(["publish", `in${i}`, "m", "--json"], { cwd, env: { ASSETKIT_STORE: store } })),
    );
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(runs.map((r) => JSON.parse(r.stdout).version).sort(), ["1.0.0", "1.1.0", "1.2.0", "1.3.0"]);
    const { json } = await project(store);
    assert.deepEqual((await json("list", "m")).assets[0].versions, ["1.3.0", "1.2.0", "1.1.0", "1.0.0"]);
  });

  it("a byte flipped in a stored blob fails the fetch naming the file, and nothing is installed", async () => {
    const { cwd, cli, json } = await project(storeOn(REGISTRY_A!));
    const weights = Buffer.alloc(100_000, 9);
    await writeTree(cwd, { "m/weights.bin": weights, "m/readme.md": "fine" });
    const { version } = await json("publish", "m", "damaged");
    const hex = sha256(weights);
    const blob = path.join(REGISTRY_A_ROOT!, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
    const bytes = await readFile(blob);
    bytes[5_000]! ^= 0xff;
    await writeFile(blob, bytes);
    try {
      const r = await cli("fetch", `damaged:${version}`);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /weights\.bin/);
      await assert.rejects(access(path.join(cwd, ".assetkit/assets/damaged", version)), "no version is installed");
    } finally {
      bytes[5_000]! ^= 0xff;
      await writeFile(blob, bytes);
    }
  });

  it("--version: an existing tag with another digest is refused; with the same content it is not published again", async () => {
    const { cwd, cli, json } = await project(storeOn(REGISTRY_A!));
    await writeTree(cwd, { "a/f.txt": "first", "b/f.txt": "second" });
    const first = await json("publish", "a", "pinned", "--version", "2.0.0");
    assert.equal(first.version, "2.0.0");
    const same = await json("publish", "a", "pinned", "--version", "2.0.0");
    assert.deepEqual([same.published, same.digest], [false, first.digest]);
    const other = await cli("publish", "b", "pinned", "--version", "2.0.0");
    assert.equal(other.code, 1, other.stderr);
    assert.match(other.stderr, new RegExp(`pinned:2\\.0\\.0 already exists .*${first.digest}`));
    assert.equal((await json("resolve", "pinned:2.0.0")).resolved[0].digest, first.digest, "the tag was not moved");
    const bad = await cli("publish", "a", "pinned", "--version", "2.0.1+build.5");
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /cannot be a tag/);
  });

  it("ORAS pulls a version assetkit published, byte-identical, nested paths and empty files included", async () => {
    const store = storeOn(REGISTRY_A!);
    const { cwd, json } = await project(store);
    const files = { "weights/model.safetensors": Buffer.alloc(70_000, 3), "deep/er/x.bin": "nested", "empty.txt": "", "README.md": "# m" };
    await writeTree(path.join(cwd, "m"), files);
    const { version } = await json("publish", "m", "interop/model");
    const out = path.join(cwd, "pulled");
    const reference = `${new URL(REGISTRY_A!).host}/${new URL(store).pathname.slice(1)}/interop/model:${version}`;
    await promisify(execFile)(path.join(goBinDir(), "oras"), ["pull", "--plain-http", "-o", out, reference]);
    for (const [rel, content] of Object.entries(files)) assert.equal(sha256(await readFile(path.join(out, rel))), sha256(content), rel);
  });

  it("max-blob: files over it are stored as consecutive part layers; fetched, shown, sub-path and imported whole; a damaged part is named; oras pull writes the parts", async () => {
    const store = storeOn(REGISTRY_A!, "settle=0&max-blob=1MiB");
    const { cwd, cli, json } = await project(store);
    const MiB = 1024 * 1024;
    const files = { "big.bin": randomBytes(3.5 * MiB), "two.bin": randomBytes(2 * MiB), "small.txt": "whole" };
    await writeTree(path.join(cwd, "m"), files);
    const published = await cli("publish", "m", "split/model", "--json");
    assert.equal(published.code, 0, published.stderr);
    assert.match(
      published.stderr,
      /2 file\(s\) of split\/model are larger than .* \(max-blob 1\.0 MiB\), stored as parts \(big\.bin: 4 parts, two\.bin: 2 parts\)/,
    );
    const { version, digest } = JSON.parse(published.stdout) as { version: string; digest: string };

    // The manifest: one layer per part, in order, titled as parts and marked with their file and offset.
    const repository = `${new URL(store).pathname.slice(1)}/split/model`;
    const manifest = (await (
      await fetch(`${REGISTRY_A}/v2/${repository}/manifests/${version}`, { headers: { accept: "application/vnd.oci.image.manifest.v1+json" } })
    ).json()) as { layers: { digest: string; size: number; annotations: Record<string, string> }[] };
    assert.deepEqual(
      manifest.layers.map((l) => [
        l.annotations["org.opencontainers.image.title"],
        l.size,
        l.annotations["io.assetkit.part-of"],
        l.annotations["io.assetkit.part-offset"],
      ]),
      [
        ["big.bin.part-001-of-004", MiB, "big.bin", "0"],
        ["big.bin.part-002-of-004", MiB, "big.bin", String(MiB)],
        ["big.bin.part-003-of-004", MiB, "big.bin", String(2 * MiB)],
        ["big.bin.part-004-of-004", MiB / 2, "big.bin", String(3 * MiB)],
        ["small.txt", 5, undefined, undefined],
        ["two.bin.part-001-of-002", MiB, "two.bin", "0"],
        ["two.bin.part-002-of-002", MiB, "two.bin", String(MiB)],
      ],
    );
    for (const l of manifest.layers.filter((l) => l.annotations["io.assetkit.part-of"] === "two.bin")) {
      const offset = Number(l.annotations["io.assetkit.part-offset"]);
      assert.equal(l.digest, `sha256:${sha256(files["two.bin"].subarray(offset, offset + l.size))}`, "a part's blob is its bytes");
    }

    // The meta lists each file once, whole: its size and sha256 are the file's.
    const shown = await json("show", `split/model:${version}`);
    assert.equal(shown.assetkit.digest, digest);
    // show says which files a standard puller gets as parts, and the manifest to pin.
    const manifestDigest = (
      await fetch(`${REGISTRY_A}/v2/${repository}/manifests/${version}`, { method: "HEAD", headers: { accept: MANIFEST_TYPE } })
    ).headers.get("docker-content-digest");
    assert.deepEqual(shown.oci, {
      reference: `${new URL(REGISTRY_A!).host}/${repository}@${manifestDigest}`,
      split: [
        { file: "big.bin", size: 3.5 * MiB, parts: 4 },
        { file: "two.bin", size: 2 * MiB, parts: 2 },
      ],
    });
    const text = await cli("show", `split/model:${version}`);
    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.split("\n");
    assert.equal(lines[2], `reference: ${shown.oci.reference}`);
    assert.equal(
      lines[3],
      "split into parts (assetkit joins them; oras pull and image volumes get <file>.part-NNN-of-MMM): big.bin (3.5 MiB): 4 parts, two.bin (2.0 MiB): 2 parts",
    );
    assert.deepEqual(
      shown.assetkit.files.map((f: { path: string; size: number; sha256: string }) => [f.path, f.size, f.sha256]),
      Object.entries(files)
        .map(([rel, content]) => [rel, Buffer.byteLength(content), sha256(content)])
        .sort(),
    );
    const fetched = (await json("fetch", `split/model:${version}`)).resolved[0];
    for (const [rel, content] of Object.entries(files)) assert.deepEqual(await readFile(path.join(fetched.path, rel)), Buffer.from(content), rel);
    const sub = (await json("fetch", `split/model:${version}[two.bin]`, "--assets-dir", path.join(cwd, "sub"))).resolved[0];
    assert.deepEqual(await readFile(sub.path), files["two.bin"], "a sub-path fetch of a split file");
    const served = path.join(cwd, "served");
    assert.equal((await cli("sync", `split/model:${version}`, "--dir", served)).code, 0);
    assert.deepEqual(await readFile(path.join(served, "split/model/current/big.bin")), files["big.bin"], "sync");
    const initialized = path.join(cwd, "initialized");
    const initializer = `assetkit://oci/${new URL(REGISTRY_A!).host}/${new URL(store).pathname.slice(1)}?settle=0#split/model:${version}`;
    await promisify(execFile)(process.execPath, [path.resolve("dist/storage-initializer.js"), initializer, initialized], { env: cleanEnv() });
    assert.deepEqual(await readFile(path.join(initialized, "big.bin")), files["big.bin"], "the storage initializer");
    const imported = await json("import", `oci://${new URL(REGISTRY_A!).host}/${repository}:${version}`, "split/imported");
    assert.equal(imported.digest, digest, "import oci:// joins the parts into the same files");
    // Published again with small.txt changed: every part is a blob the repository holds (HEAD), so none is sent.
    await writeFile(path.join(cwd, "m/small.txt"), "changed");
    const again = await cli("publish", "m", "split/model");
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /uploaded 1 file\(s\), 7 B; 2 unchanged file\(s\)/);

    // oras pull writes the parts side by side (never a whole big.bin); joined in order they are the file.
    const out = path.join(cwd, "pulled");
    await promisify(execFile)(path.join(goBinDir(), "oras"), ["pull", "--plain-http", "-o", out, `${new URL(REGISTRY_A!).host}/${repository}:${version}`]);
    assert.deepEqual((await readdir(out)).sort(), manifest.layers.map((l) => l.annotations["org.opencontainers.image.title"]).sort());
    const parts = (await readdir(out)).filter((f) => f.startsWith("big.bin.part-")).sort();
    assert.deepEqual(Buffer.concat(await Promise.all(parts.map((f) => readFile(path.join(out, f))))), files["big.bin"]);

    // A byte flipped in the second part's blob: the fetch fails naming the file and the part; nothing is installed.
    const second = manifest.layers[1]!.digest.slice("sha256:".length);
    const blob = path.join(REGISTRY_A_ROOT!, "docker/registry/v2/blobs/sha256", second.slice(0, 2), second, "data");
    const bytes = await readFile(blob);
    bytes[1_000]! ^= 0xff;
    await writeFile(blob, bytes);
    try {
      const assets = path.join(cwd, "damaged");
      const r = await cli("fetch", `split/model:${version}`, "--assets-dir", assets);
      assert.equal(r.code, 1, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`integrity check failed for big\\.bin of split/model:${version}.*: part 2 of 4 \\(blob sha256:${second}, bytes ${MiB}-${2 * MiB - 1}\\)`),
      );
      await assert.rejects(access(path.join(assets, "split/model", version)), "no version is installed");
    } finally {
      bytes[1_000]! ^= 0xff;
      await writeFile(blob, bytes);
    }
  });

  it("channels: promote moves the channel tag and records the move; resolve, fetch, history, rollback; ORAS pulls the channel", async () => {
    const store = storeOn(REGISTRY_A!);
    const { cwd, json } = await project(store);
    await writeTree(cwd, { "a/f.txt": "one", "b/f.txt": "two" });
    const v1 = await json("publish", "a", "svc");
    const v2 = await json("publish", "b", "svc");
    assert.equal((await json("promote", "svc:1.0.0", "production")).changed, true);
    const moved = await json("promote", "svc:1.1.0", "production");
    assert.deepEqual([moved.previous, moved.changed], ["1.0.0", true]);
    assert.equal((await json("promote", "svc:1.1.0", "production")).changed, false, "a move onto the same version changes nothing");
    assert.deepEqual((await json("resolve", "svc:production")).resolved[0].digest, v2.digest);
    const fetched = (await json("fetch", "svc:production")).resolved[0];
    assert.equal(await readFile(path.join(fetched.path, "f.txt"), "utf8"), "two");
    const out = path.join(cwd, "pulled");
    await promisify(execFile)(path.join(goBinDir(), "oras"), [
      "pull",
      "--plain-http",
      "-o",
      out,
      `${new URL(REGISTRY_A!).host}${new URL(store).pathname}/svc:production`,
    ]);
    assert.equal(await readFile(path.join(out, "f.txt"), "utf8"), "two", "the channel tag is the version's manifest for any puller");

    const back = await json("promote", "svc:production", "--rollback");
    assert.deepEqual([back.version, back.previous], ["1.0.0", "1.1.0"]);
    assert.equal((await json("resolve", "svc:production")).resolved[0].digest, v1.digest);
    const history = (await json("history", "svc:production")).channels[0].history;
    assert.deepEqual(
      history.map((m: { version: string; previous?: string; rollback?: boolean }) => [m.version, m.previous ?? null, m.rollback ?? false]),
      [
        ["1.0.0", "1.1.0", true],
        ["1.1.0", "1.0.0", false],
        ["1.0.0", null, false],
      ],
    );
  });

  it("8 concurrent promotions of one channel: 8 records, none lost, the tag is the last record's version", async () => {
    const store = storeOn(REGISTRY_A!);
    const { cwd, json } = await project(store);
    for (let i = 0; i < 8; i++) {
      await writeTree(cwd, { [`in${i}/f.txt`]: `v${i}` });
      await json("publish", `in${i}`, "hot");
    }
    const runs = await Promise.all(
      Array.from({ length: 8 }, (_, i) => startCli(["promote", `hot:1.${i}.0`, "production", "--json"], { cwd, env: { ASSETKIT_STORE: store } })),
    );
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const history = (await json("history", "hot:production")).channels[0].history as { version: string; previous?: string }[];
    assert.equal(history.length, 8);
    assert.deepEqual(
      history.map((m) => m.version).sort(),
      Array.from({ length: 8 }, (_, i) => `1.${i}.0`),
    );
    for (const [i, m] of history.entries()) assert.equal(m.previous, history[i + 1]?.version, "each move records the one before it");
    assert.equal((await json("resolve", "hot:production")).resolved[0].version, history[0]!.version);
  });

  it("import oci://: files and a folder pushed by oras push, verified, pinned by the manifest digest", async () => {
    const store = storeOn(REGISTRY_A!);
    const { cwd, json } = await project(store);
    const files = { "a.txt": "alpha", "sub/deep/b.bin": Buffer.alloc(50_000, 4), "dir/c.txt": "in a folder", "dir/d/e.txt": "deeper" };
    await writeTree(cwd, files);
    const host = new URL(REGISTRY_A!).host;
    const repository = `${host}${new URL(store).pathname}/pushed`;
    const oras = (...args: string[]) => promisify(execFile)(path.join(goBinDir(), "oras"), args, { cwd });
    await oras("push", "--plain-http", `${repository}:v1`, "a.txt", "sub/deep/b.bin", "dir");
    const source = `oci://${repository}:v1`;
    const imported = await json("import", source, "from-oras");
    const fetched = (await json("fetch", `from-oras:${imported.version}`)).resolved[0];
    for (const [rel, content] of Object.entries(files)) assert.equal(sha256(await readFile(path.join(fetched.path, rel))), sha256(content), rel);
    const again = await json("import", source, "from-oras", "--if-changed");
    assert.deepEqual([again.published, again.version], [false, imported.version], "the same manifest digest is not downloaded again");
  });

  it("names that cannot be repositories are usage errors", async () => {
    const { cwd, cli } = await project(storeOn(REGISTRY_A!));
    await writeTree(cwd, { "f.txt": "x" });
    const cases: [string[], RegExp][] = [[["publish", "f.txt", "Upper/Case"], /"Upper" is not a repository path component/]];
    assert.equal((await cli("publish", "f.txt", "x")).code, 0);
    for (const [args, message] of cases) {
      const r = await cli(...args);
      assert.match(r.stderr, message, args.join(" "));
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    }
    assert.equal((await cli("publish", "f.txt", "ok", "--store", "oci://127.0.0.1:1/Bad")).code, 2, "an uppercase namespace is refused");
  });
});

describe("oci:// on a registry with token auth (registry C)", { skip: process.env.ASSETKIT_TEST_OCI_C ? undefined : "no registry C" }, () => {
  it("publishes and fetches with credentials from the environment; without them a push is refused in one line, secrets unprinted", async () => {
    const store = storeOn(process.env.ASSETKIT_TEST_OCI_C!);
    const cwd = await scratch();
    await writeTree(cwd, { "model/weights.bin": Buffer.alloc(70_000, 9) });
    const credentials = { ASSETKIT_OCI_USERNAME: process.env.ASSETKIT_TEST_OCI_C_USER!, ASSETKIT_OCI_PASSWORD: process.env.ASSETKIT_TEST_OCI_C_PASSWORD! };
    const anonymous = await runCli(["publish", "model", "team/private"], { cwd, env: { ASSETKIT_STORE: store } });
    assert.equal(anonymous.code, 1, anonymous.stderr);
    assert.match(anonymous.stderr.trim(), /^error: .*(denied|refused|unauthori[sz]ed).*$/i);
    const published = await runCli(["publish", "model", "team/private", "--json"], { cwd, env: { ASSETKIT_STORE: store, ...credentials } });
    assert.equal(published.code, 0, published.stderr);
    const fetched = await runCli(["fetch", "team/private:1", "--json"], { cwd, env: { ASSETKIT_STORE: store, ...credentials } });
    assert.equal(fetched.code, 0, fetched.stderr);
    const local = (JSON.parse(fetched.stdout) as { resolved: { path: string }[] }).resolved[0]!.path;
    assert.deepEqual(await readFile(path.join(local, "weights.bin")), Buffer.alloc(70_000, 9));
    const wrong = await runCli(["fetch", "team/private:1", "--assets-dir", "elsewhere"], {
      cwd,
      env: { ASSETKIT_STORE: store, ...credentials, ASSETKIT_OCI_PASSWORD: "not-the-password" },
    });
    assert.equal(wrong.code, 1, wrong.stderr);
    assert.ok(!wrong.stderr.includes("not-the-password") && !wrong.stderr.includes(credentials.ASSETKIT_OCI_PASSWORD), wrong.stderr);
  });
});
