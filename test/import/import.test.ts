// assetkit import through the shipped CLI: a MinIO prefix and a single object, archives and a plain file served
// by Caddy, hostile archives refused with nothing published or left behind, --if-changed.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { describe, it } from "node:test";
import { Transform } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { pathToFileURL } from "node:url";
import pMap from "p-map";
import { startRequestCounter } from "../../scripts/request-counter.ts";
import { DEFAULT_UNPACK_LIMITS } from "../../src/import/archive.ts";
import { openSource } from "../../src/import/open-source.ts";
import { withStaging } from "../../src/import/staging.ts";
import { openStore } from "../../src/store/uri.ts";
import { Transfers, type OpenObject } from "../../src/transfer/engine.ts";
import { azureFactory } from "../conformance/factories/azure.ts";
import { gcsFactory } from "../conformance/factories/gcs.ts";
import { extraS3Bucket, s3Factory, s3TestEnv } from "../conformance/factories/s3.ts";
import { uniquePrefix, skipReason } from "../conformance/factory.ts";
import { tarArchive, zipArchive } from "../helpers/archives.ts";
import { runAction } from "../helpers/action.ts";
import { CLI, cleanEnv, runCli, scratch, writeTree } from "../helpers/cli.ts";
import { TEST_SETTINGS, TEST_TUNING } from "../helpers/settings.ts";

/** A scratch project whose CLI runs stage in a TMPDIR of their own, so a test can see that nothing stays there. */
async function project(env: NodeJS.ProcessEnv = {}, dir?: string) {
  const cwd = dir ?? (await scratch());
  const tmp = path.join(cwd, "tmp");
  await mkdir(tmp);
  const cli = (...args: string[]) => runCli(args, { cwd, env: { ...env, TMPDIR: tmp } });
  const json = async (...args: string[]) => {
    const r = await cli(...args, "--json");
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  return { cwd, tmp, cli, json };
}

/** Fetches the spec and returns its local files' bytes by relative path (the fetch verifies sizes and sha256). */
async function fetched(p: Awaited<ReturnType<typeof project>>, spec: string): Promise<Record<string, Buffer>> {
  const r = await p.json("fetch", spec);
  const root = r.resolved[0].path as string;
  const out: Record<string, Buffer> = {};
  const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => undefined);
  if (!entries) return { "": await readFile(root) };
  for (const e of entries)
    if (e.isFile() && e.name !== ".SUCCESS")
      out[path.relative(root, path.join(e.parentPath, e.name)).split(path.sep).join("/")] = await readFile(path.join(e.parentPath, e.name));
  return out;
}

/** `keyPath` under a store URI, its query (an endpoint) kept. */
function objectUri(base: string, keyPath: string): string {
  const url = new URL(base);
  url.pathname = `${url.pathname}/${keyPath}`;
  return url.href;
}

describe("import from an object store (MinIO)", { skip: skipReason(s3Factory) }, () => {
  it("a prefix of 300 files becomes a folder asset with the same bytes, relative paths kept, and the ETags recorded", async () => {
    const source = await s3Factory.create();
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 300; i++) files[`${i % 3 === 0 ? "sub/" : ""}part-${i}.bin`] = Buffer.from(`file ${i} `.repeat(i + 1));
    await pMap(Object.entries(files), ([key, data]) => source.seed.write(`models/iris/${key}`, data), { concurrency: 16 });
    await source.seed.write("models/iris-v2/other.bin", Buffer.from("not under the prefix"));
    const p = await project(s3TestEnv());
    const r = await p.json("import", objectUri(source.uri, "models/iris/"), "iris");
    assert.equal(r.published, true);
    assert.equal(r.version, "1.0.0");
    assert.match(r.source, /^s3:\/\/[^ ]*\/models\/iris\/$/, "no ?endpoint= in the output");
    assert.deepEqual(await fetched(p, "iris:1.0.0"), files);
    const meta = await p.json("show", "iris:1.0.0");
    assert.equal(meta.assetkit.source.import.uri, r.source, "nor in the record");
    assert.equal(Object.keys(meta.assetkit.source.import.etags).length, 300);
    assert.match(meta.assetkit.source.import.fingerprint, /^sha256:/);
    assert.deepEqual(await readdir(p.tmp), [], "the staging folder is removed");

    const again = await p.cli("import", objectUri(source.uri, "models/iris/"), "iris", "--if-changed");
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /iris:1\.0\.0\tunchanged/);
    assert.match(again.stderr, /nothing downloaded/);
    await source.seed.write("models/iris/part-7.bin", Buffer.from("changed"));
    assert.equal((await p.json("import", objectUri(source.uri, "models/iris/"), "iris", "--if-changed")).version, "1.1.0");
  });

  it("one object becomes a single-file asset, imported into another MinIO store", async () => {
    const source = await s3Factory.create();
    const data = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
    await source.seed.write("models/model.joblib", data);
    const dest = await s3Factory.create();
    const p = await project({ ...s3TestEnv(), ASSETKIT_STORE: dest.uri });
    const uri = objectUri(source.uri, "models/model.joblib");
    assert.match(uri, /\?endpoint=http/);
    const r = await p.json("import", uri, "clf", "--meta", "team=ml");
    assert.equal(r.published, true);
    // The README's promise: the URI recorded and printed without its query string.
    assert.equal(r.source, uri.replace(/\?.*$/, ""));
    assert.deepEqual(await fetched(p, "clf"), { "": data });
    const meta = await p.json("show", "clf");
    assert.equal(meta.assetkit.source.import.uri, r.source);
    assert.equal(meta.is_directory, false);
    assert.deepEqual(Object.keys(meta.assetkit.source.import.etags), [""]);
    assert.equal(meta.assetkit.metadata.team, "ml");
  });

  it("bucket A prefix → bucket B: copied by MinIO, no GET of a source data object, one hashing read of each copy, no local file", async () => {
    const counter = await startRequestCounter(process.env.ASSETKIT_TEST_S3_ENDPOINT!);
    try {
      const source = await s3Factory.create();
      // One file past PART_SIZE (16 MiB): its part hashes too must come from the copy.
      const files: Record<string, Buffer> = {
        "weights.bin": Buffer.alloc(20 * 1024 * 1024 + 7, "w"),
        "config.json": Buffer.from('{"a":1}'),
        "sub/tok.txt": Buffer.from("tokens"),
      };
      for (const [key, data] of Object.entries(files)) await source.seed.write(`models/llm/${key}`, data);
      const sourceUri = objectUri(source.uri.replace(process.env.ASSETKIT_TEST_S3_ENDPOINT!, counter.url), "models/llm/");
      const dest = `s3://${await extraS3Bucket(`assetkit-import-${process.pid}`)}/${uniquePrefix()}?endpoint=${counter.url}`;
      // An unusable TMPDIR: any staging folder or local file would fail the import.
      const p = await project({ ...s3TestEnv(), ASSETKIT_STORE: dest });
      counter.reset();
      const r = await runCli(["import", sourceUri, "llm", "--json"], {
        cwd: p.cwd,
        env: { ...s3TestEnv(), ASSETKIT_STORE: dest, TMPDIR: path.join(p.cwd, "no-such-dir") },
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).version, "1.0.0");
      const gets = counter.requests().filter((q) => q.method === "GET");
      const sourceReads = gets.filter((q) => q.url.split("?")[0]!.includes("/models/llm/"));
      assert.ok(
        gets.some((q) => q.url.includes("list-type") && q.url.includes(encodeURIComponent("models/llm/"))),
        "the source is listed through the counter",
      );
      assert.deepEqual(sourceReads, [], "no data object is read from the source");
      for (const key of Object.keys(files)) {
        const reads = gets.filter((q) => q.url.split("?")[0]!.endsWith(`/llm/1.0.0/${key}`));
        assert.equal(reads.length, 1, `one hashing read of the copy of ${key}`);
      }
      assert.ok(
        counter.requests().some((q) => q.method === "PUT" && q.url.includes("/llm/1.0.0/weights.bin") && q.bytes < 1024),
        "copied by the server",
      );

      assert.deepEqual(await fetched(p, "llm:1.0.0"), files);
      // The hashes learned from the copy equal those a local publish of the same bytes computes.
      await writeTree(p.cwd, Object.fromEntries(Object.entries(files).map(([k, v]) => [`same/${k}`, v])));
      const local = await p.json("publish", "same", "llm-local", "--store", path.join(p.cwd, "local-store"));
      assert.equal((await p.json("show", "llm:1.0.0")).assetkit.digest, local.digest);
      // Into a folder store no server copy reaches: streamed, hashed as it passes, same digest.
      const streamed = await p.json("import", sourceUri, "llm", "--store", path.join(p.cwd, "folder-store"));
      assert.equal(streamed.digest, local.digest);
    } finally {
      await counter.stop();
    }
  });

  it("a prefix with nothing under it exits 1 and publishes nothing", async () => {
    const source = await s3Factory.create();
    const p = await project(s3TestEnv());
    const r = await p.cli("import", objectUri(source.uri, `nothing-${uniquePrefix()}/`), "empty");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: nothing to import at s3:\/\/.*no object under it/);
  });
});

describe("import from a path (a mounted volume)", () => {
  it("a folder, a file:// URL and a local .tar.gz (unpacked) publish their bytes and record the source", async () => {
    const p = await project();
    await writeTree(p.cwd, { "mnt/model/a.bin": "a", "mnt/model/logs/x.log": "log", "mnt/m.bin": "m" });
    await writeFile(path.join(p.cwd, "mnt/m.tgz"), await tarArchive([{ name: "t.txt", content: "t" }], true));
    const folder = await p.json("import", "mnt/model", "folder");
    assert.equal(folder.source, "mnt/model");
    assert.deepEqual(await fetched(p, "folder"), { "a.bin": Buffer.from("a"), "logs/x.log": Buffer.from("log") });
    assert.equal((await p.cli("import", "mnt/model", "x", "--exclude", "logs/**")).code, 2);
    await p.json("import", pathToFileURL(path.join(p.cwd, "mnt/m.bin")).href, "file");
    assert.deepEqual(await fetched(p, "file"), { "": Buffer.from("m") });
    await p.json("import", "mnt/m.tgz", "unpacked");
    assert.deepEqual(await fetched(p, "unpacked"), { "t.txt": Buffer.from("t") });
    assert.equal((await p.cli("import", "pvc://claim/model", "x")).code, 2);
  });
});

describe("import interrupted", () => {
  it("Ctrl-C (SIGINT) while a file downloads removes the staging folder and ends the process by the signal", async () => {
    // A server that sends half of a file, then nothing: the import is mid-download when interrupted.
    const server = createServer((req, res) => {
      res.writeHead(200, { "content-length": "2000000", "content-type": "application/octet-stream" });
      if (req.method === "HEAD") return res.end();
      res.write(Buffer.alloc(1_000_000, 1));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const p = await project();
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/weights.bin`;
      const child = spawn(process.execPath, [CLI, "import", url, "w"], { cwd: p.cwd, env: { ...cleanEnv(), TMPDIR: p.tmp }, stdio: "ignore" });
      const ended = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
      const deadline = Date.now() + 30_000;
      for (;;) {
        const staged = await readdir(p.tmp, { recursive: true });
        if (staged.some((f) => f.endsWith("file"))) break;
        assert.ok(Date.now() < deadline, "the download never started");
        await sleep(50);
      }
      child.kill("SIGINT");
      assert.equal(await ended, "SIGINT");
      assert.deepEqual(await readdir(p.tmp), []);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe("import from GCS (fake-gcs-server) and Azure (Azurite, KServe's azure:// spelling)", () => {
  for (const [factory, env, spell] of [
    [gcsFactory, {}, (uri: string) => uri],
    [
      azureFactory,
      { AZURE_STORAGE_CONNECTION_STRING: process.env.ASSETKIT_TEST_AZURE_CONNECTION_STRING ?? "" },
      (uri: string) => uri.replace(/^az:/, "azure:"),
    ],
  ] as const) {
    it(`${factory.name}: a prefix becomes a folder asset and one object a file asset, byte-identical`, { skip: skipReason(factory) }, async () => {
      const source = await factory.create();
      const files = { "model/config.json": Buffer.from("{}"), "model/weights/w.bin": Buffer.alloc(100_000, 1) };
      for (const [key, data] of Object.entries(files)) await source.seed.write(key, data);
      const p = await project(env);
      await p.json("import", spell(objectUri(source.uri, "model/")), "folder");
      assert.deepEqual(await fetched(p, "folder"), { "config.json": files["model/config.json"], "weights/w.bin": files["model/weights/w.bin"] });
      await p.json("import", spell(objectUri(source.uri, "model/weights/w.bin")), "file");
      assert.deepEqual(await fetched(p, "file"), { "": files["model/weights/w.bin"] });
      assert.deepEqual(await readdir(p.tmp), []);
    });
  }
});

const httpRoot = process.env.ASSETKIT_TEST_HTTP_ROOT;
const httpUrl = process.env.ASSETKIT_TEST_HTTP_URL;

/** Serves `files` from the test HTTP server (Caddy) under a fresh folder; returns each one's URL. */
async function serve(files: Record<string, Buffer>): Promise<Record<string, string>> {
  const sub = uniquePrefix();
  await mkdir(path.join(httpRoot!, sub), { recursive: true });
  const urls: Record<string, string> = {};
  for (const [name, data] of Object.entries(files)) {
    await writeFile(path.join(httpRoot!, sub, name), data);
    urls[name] = `${httpUrl!.replace(/\/+$/, "")}/${sub}/${name}`;
  }
  return urls;
}

describe("import over HTTP (Caddy)", { skip: !httpRoot || !httpUrl ? "no static HTTP server" : undefined }, () => {
  const model = { "config.json": '{"layers": 2}', "weights/layer-0.bin": Buffer.alloc(70_000, 3), "weights/layer-1.bin": Buffer.alloc(5, 4) };
  const expected = Object.fromEntries(Object.entries(model).map(([k, v]) => [k, Buffer.from(v)]));

  it("a .tar.gz and a .zip unpack into folder assets byte-identical to their content; a plain file stays a file", async () => {
    const tgz = await tarArchive(
      [{ name: "./", type: "directory" }, ...Object.entries(model).map(([name, content]) => ({ name: `./${name}`, content }))],
      true,
    );
    const zip = await zipArchive(Object.entries(model).map(([name, content]) => ({ name, content })));
    const urls = await serve({ "model.tar.gz": tgz, "model.zip": zip, "weights.bin": Buffer.from("plain") });
    const p = await project();
    for (const [file, name] of [
      ["model.tar.gz", "from-tgz"],
      ["model.zip", "from-zip"],
    ] as const) {
      const r = await p.json("import", urls[file]!, name);
      assert.equal(r.published, true);
      assert.deepEqual(await fetched(p, name), expected, file);
      const meta = await p.json("show", name);
      assert.match(meta.assetkit.source.import.sha256, /^[0-9a-f]{64}$/);
    }
    assert.equal((await p.json("show", "from-tgz")).assetkit.digest, (await p.json("show", "from-zip")).assetkit.digest, "same content, same digest");
    // A token in the query is sent, and neither printed nor recorded: the source is the URL without its query.
    const plain = await p.json("import", `${urls["weights.bin"]!}?token=s3cr3t-token`, "plain");
    assert.equal(plain.source, urls["weights.bin"]);
    assert.equal((await p.json("show", "plain")).assetkit.source.import.uri, urls["weights.bin"]);
    assert.deepEqual(await fetched(p, "plain"), { "": Buffer.from("plain") });
    const kept = await p.json("import", urls["model.zip"]!, "kept", "--no-unpack");
    assert.equal((await p.json("show", kept.spec)).is_directory, false);
    assert.deepEqual(await readdir(p.tmp), []);
  });

  const hostile: [string, () => Promise<Buffer>, string[], RegExp][] = [
    [
      "an entry escaping with ..",
      () =>
        tarArchive([
          { name: "ok.txt", content: "ok" },
          { name: "../evil", content: "evil" },
        ]),
      [],
      /archive entry "\.\.\/evil": the path has a '\.\.' segment/,
    ],
    ["an absolute path", () => tarArchive([{ name: "/tmp/assetkit-evil", content: "evil" }]), [], /archive entry "\/tmp\/assetkit-evil": the path is absolute/],
    [
      "a symlink to /etc/passwd",
      () => tarArchive([{ name: "passwd", type: "symlink", linkname: "/etc/passwd" }]),
      [],
      /archive entry "passwd" is a symlink to "\/etc\/passwd": links and special files are refused/,
    ],
    [
      "a hard link",
      () =>
        tarArchive([
          { name: "a", content: "x" },
          { name: "b", type: "link", linkname: "a" },
        ]),
      [],
      /archive entry "b" is a hard link/,
    ],
    ["a device file", () => tarArchive([{ name: "dev", type: "character-device" }]), [], /archive entry "dev" is a device or FIFO/],
    [
      "too many entries",
      () => tarArchive(Array.from({ length: 20 }, (_, i) => ({ name: `f${i}`, content: "x" }))),
      ["--max-entries", "10"],
      /more than 10 entries \(--max-entries\)/,
    ],
  ];
  for (const [what, make, flags, message] of hostile) {
    it(`a tar with ${what} exits 1 naming it; nothing published, nothing left in the temp folder`, async () => {
      const urls = await serve({ "bad.tar": await make() });
      const p = await project();
      const r = await p.cli("import", urls["bad.tar"]!, "bad", ...flags);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, message);
      assert.match(r.stderr, /nothing was published\n$/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.deepEqual(await readdir(p.tmp), [], "the temp folder is removed");
      assert.deepEqual((await readdir(p.cwd)).sort(), ["tmp"], "nothing written beside it, and no store created");
    });
  }

  it("a zip bomb (a small file expanding past the limit) and a zip holding a symlink exit 1; nothing published", async () => {
    const bomb = await zipArchive([{ name: "zeros.bin", content: Buffer.alloc(20 * 1024 * 1024) }]);
    assert.ok(bomb.length < 100_000);
    const link = await zipArchive([{ name: "passwd", content: "/etc/passwd", mode: 0o120777 }]);
    const urls = await serve({ "bomb.zip": bomb, "link.zip": link });
    const p = await project();
    const r = await p.cli("import", urls["bomb.zip"]!, "bomb", "--max-unpacked-size", "1MiB");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: cannot import: the archive unpacks to more than 1\.0 MiB \(--max-unpacked-size\); nothing was published\n$/);
    const l = await p.cli("import", urls["link.zip"]!, "link");
    assert.equal(l.code, 1);
    assert.match(l.stderr, /archive entry "passwd" is a symlink/);
    assert.deepEqual(await readdir(p.tmp), []);
    assert.deepEqual((await readdir(p.cwd)).sort(), ["tmp"]);
  });

  it("re-importing an unchanged archive with --if-changed publishes nothing", async () => {
    const urls = await serve({ "m.tgz": await tarArchive([{ name: "a.txt", content: "a" }], true) });
    const p = await project();
    assert.equal((await p.json("import", urls["m.tgz"]!, "m")).version, "1.0.0");
    const again = await p.json("import", urls["m.tgz"]!, "m", "--if-changed");
    assert.deepEqual([again.version, again.published], ["1.0.0", false]);
    assert.deepEqual((await p.json("list", "m")).assets[0].versions, ["1.0.0"]);
  });

  it("the Action's command import: the publish outputs and a summary naming the source; if-changed re-run publishes nothing", async () => {
    const urls = await serve({ "model.zip": await zipArchive(Object.entries(model).map(([name, content]) => ({ name, content }))) });
    const cwd = await scratch();
    const inputs = {
      command: "import",
      source: urls["model.zip"]!,
      name: "models/zipped",
      "if-changed": "true",
      exclude: "weights/layer-1.bin",
      metadata: "team=ml",
    };
    const run = await runAction(cwd, inputs);
    assert.equal(run.code, 0, run.stdout);
    assert.equal(run.outputs.version, "1.0.0");
    assert.equal(run.outputs.spec, "models/zipped:1.0.0");
    assert.equal(run.outputs.published, "true");
    assert.match(run.outputs.digest!, /^sha256:/);
    assert.match(run.summary, /### assetkit import[\s\S]*models\/zipped:1\.0\.0[\s\S]*imported from http/);
    assert.deepEqual(Object.keys(await fetched(await project({}, cwd), "models/zipped")).sort(), ["config.json", "weights/layer-0.bin"]);
    const again = await runAction(cwd, inputs);
    assert.equal(again.outputs.published, "false");
    assert.equal(again.outputs.version, "1.0.0");
    const missing = await runAction(cwd, { command: "import", name: "x" });
    assert.notEqual(missing.code, 0);
    assert.match(missing.stdout, /command import needs the inputs name and source/);
  });

  it("a missing file exits 1; a URL naming a folder is a usage error", async () => {
    const p = await project();
    const missing = await p.cli("import", `${httpUrl}/no-such-${uniquePrefix()}.tar.gz`, "x");
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nothing to import at http.*the server has no file there/);
    assert.equal((await p.cli("import", `${httpUrl}/`, "x")).code, 2);
  });
});

/** Python's http.server (HTTP/1.0: every response ends by closing the connection) serving `root`; its URL. */
async function startPythonServer(root: string): Promise<{ url: string; stop: () => void }> {
  const child = spawn("python3", ["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", root], { stdio: ["ignore", "pipe", "ignore"] });
  let out = "";
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout.on("data", (d) => {
      out += d;
      const m = /port (\d+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once("exit", () => reject(new Error(`python3 -m http.server ended: ${out}`)));
    child.once("error", reject);
  });
  return { url: `http://127.0.0.1:${port}`, stop: () => void child.kill() };
}

/** Transfers whose reader lags behind the socket (each chunk waits a turn of the event loop): the HTTP client holds data back. */
class SlowReader extends Transfers {
  override download(...[open, ...rest]: Parameters<Transfers["download"]>) {
    const throttled: OpenObject = async (range) =>
      (await open(range)).pipe(
        new Transform({
          highWaterMark: 64 * 1024,
          transform: (chunk, _enc, done) => void setImmediate(() => done(null, chunk)),
        }),
      );
    return super.download(throttled, ...rest);
  }
}

describe("import over HTTP from a server that closes every connection (Python http.server)", () => {
  it("50 imports of 3 MiB and 16 MiB files under backpressure: all succeed, byte-identical, nothing left in TMPDIR", async () => {
    // Node 24.21's fetch() (undici) ended the process on an assertion in ~15% of such imports.
    const root = await scratch();
    const files = { "w3.bin": randomBytes(3 * 1024 * 1024), "w16.bin": randomBytes(16 * 1024 * 1024) };
    for (const [name, data] of Object.entries(files)) await writeFile(path.join(root, name), data);
    const sha256 = Object.fromEntries(Object.entries(files).map(([name, data]) => [name, createHash("sha256").update(data).digest("hex")]));
    const server = await startPythonServer(root);
    try {
      // 46 in this process, through the import code (source, staging folder, transfer engine), reading slowly.
      const tmp = path.join(root, "tmp");
      await mkdir(tmp);
      const previousTmp = process.env.TMPDIR;
      process.env.TMPDIR = tmp;
      try {
        const settings = {
          filter: { include: [], exclude: [] },
          unpack: true,
          limits: DEFAULT_UNPACK_LIMITS,
          transfers: new SlowReader(TEST_SETTINGS),
          openStore: (uri: string) => openStore(uri, process.cwd(), TEST_TUNING),
          env: {},
        };
        await pMap(
          Array.from({ length: 46 }, (_, i) => (i % 2 ? "w16.bin" : "w3.bin") as keyof typeof files),
          async (name) => {
            const source = await openSource(`${server.url}/${name}`, settings);
            const staged = await withStaging(async (dir) => {
              const got = await source.stage(dir);
              return { origin: got.origin, bytes: await readFile(got.path) };
            });
            assert.equal(staged.origin.sha256, sha256[name]);
            assert.ok(staged.bytes.equals(files[name]), name);
          },
          { concurrency: 4 },
        );
      } finally {
        if (previousTmp === undefined) delete process.env.TMPDIR;
        else process.env.TMPDIR = previousTmp;
      }
      assert.deepEqual(await readdir(tmp), [], "no staging folder left");

      // 4 through the shipped CLI, published and fetched back.
      const p = await project();
      for (let i = 0; i < 4; i++) {
        const name = i % 2 ? "w16.bin" : "w3.bin";
        const r = await p.cli("import", `${server.url}/${name}`, `m${i}`, "--json");
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(await fetched(p, `m${i}`), { "": files[name] });
      }
      assert.deepEqual(await readdir(p.tmp), [], "no staging folder left by the CLI");
    } finally {
      server.stop();
    }
  });
});
