// Interoperability with the Python library modelkit (0.1.x) on a real S3 server (MinIO): each side reads what the
// other publishes, through the shipped CLI (dist/cli.js) on one side and modelkit's own assets code on the other
// (test/interop/*.py, run with the test servers' virtualenv python).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, readdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { dateVersion } from "../../src/registry/versioning.ts";
import { CLI, cleanEnv, scratch, writeTree } from "../helpers/cli.ts";

const env = process.env;
const PYTHON = env.ASSETKIT_TEST_MODELKIT_PYTHON;
const INTEROP = path.resolve("test/interop");
const TIMEOUT_MS = 120_000;

/** Why these tests cannot run here, or undefined; under the full test command a missing server is an error. */
function skipReason(): string | undefined {
  let why: string | undefined;
  if (!env.ASSETKIT_TEST_S3_ENDPOINT || !env.ASSETKIT_TEST_S3_BUCKET) why = "ASSETKIT_TEST_S3_ENDPOINT/ASSETKIT_TEST_S3_BUCKET not set (no MinIO)";
  else if (!PYTHON) why = "ASSETKIT_TEST_MODELKIT_PYTHON not set (no modelkit virtualenv)";
  else if (!existsSync(PYTHON)) why = `modelkit python ${PYTHON} does not exist`;
  if (why && env.ASSETKIT_TEST_ALL_STORES === "1") {
    throw new Error(`modelkit interop must run under the full test command but: ${why}`);
  }
  return why;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: options.cwd, env: options.env, timeout: TIMEOUT_MS, killSignal: "SIGKILL", maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string; killed?: boolean }) | null;
      const code = !e ? 0 : typeof e.code === "number" ? e.code : 1;
      resolve({ code, stdout, stderr: e?.killed ? `timed out after ${TIMEOUT_MS} ms\n${stderr}` : stderr });
    });
  });
}

let counter = 0;
const dirs: string[] = [];
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const d = await scratch();
  dirs.push(d);
  return d;
}

/** A fresh prefix of the shared bucket, the assetkit CLI and modelkit's python (with that versioning), both pointed at it. */
async function setup(versioning: "major_minor" | "simple_date" = "major_minor") {
  const cwd = await tempDir();
  const bucket = env.ASSETKIT_TEST_S3_BUCKET!;
  const endpoint = env.ASSETKIT_TEST_S3_ENDPOINT!;
  const prefix = `modelkit-interop-${process.pid}-${Date.now().toString(36)}-${counter++}`;
  const store = `s3://${bucket}/${prefix}?endpoint=${endpoint}`;
  const credentials = {
    AWS_ACCESS_KEY_ID: env.ASSETKIT_TEST_S3_ACCESS_KEY ?? "",
    AWS_SECRET_ACCESS_KEY: env.ASSETKIT_TEST_S3_SECRET_KEY ?? "",
    AWS_EC2_METADATA_DISABLED: "true",
  };
  /** Extra variables for the assetkit CLI (a test sets ASSETKIT_META_SHARD_FILES in it). */
  const assetkitEnv: NodeJS.ProcessEnv = {};
  const assetkit = async (...args: string[]) => {
    const r = await run(process.execPath, [CLI, "--store", store, ...args, "--json"], { cwd, env: { ...cleanEnv(), ...credentials, ...assetkitEnv } });
    assert.equal(r.code, 0, `assetkit ${args.join(" ")}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  const modelkitEnv: NodeJS.ProcessEnv = {
    ...cleanEnv(),
    ...credentials,
    AWS_DEFAULT_REGION: "us-east-1",
    MODELKIT_STORAGE_PROVIDER: "s3",
    MODELKIT_STORAGE_BUCKET: bucket,
    MODELKIT_STORAGE_PREFIX: prefix,
    MODELKIT_ASSETS_VERSIONING_SYSTEM: versioning,
    S3_ENDPOINT: endpoint,
    PYTHONDONTWRITEBYTECODE: "1",
  };
  /** A modelkit script's exit code and output, whatever they are. */
  const pythonRun = (script: string, ...args: string[]) => run(PYTHON!, [path.join(INTEROP, script), ...args], { cwd, env: modelkitEnv });
  const python = async (script: string, ...args: string[]) => {
    const r = await pythonRun(script, ...args);
    assert.equal(r.code, 0, `${script} ${args.join(" ")}: ${r.stderr.slice(-4000)}`);
    return JSON.parse(r.stdout);
  };
  return { cwd, assetkit, assetkitEnv, python, pythonRun };
}

/** Every file under root (relative path -> bytes), without modelkit's `.SUCCESS` markers. */
async function tree(root: string): Promise<Record<string, Buffer>> {
  const out: Record<string, Buffer> = {};
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || entry.name === ".SUCCESS") continue;
    const full = path.join(entry.parentPath, entry.name);
    out[path.relative(root, full).split(path.sep).join("/")] = await readFile(full);
  }
  return out;
}

/** Waits until the UTC second (a simple_date version) is later than `version`: one version per second. */
async function secondAfter(version: string): Promise<void> {
  while (dateVersion(new Date()) <= version) await sleep(50);
}

function bytes(seed: number, size = 4096): Buffer {
  return Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + seed * 17 + (i >> 8)) & 0xff));
}

/** The two versions of the single-file asset and of the folder asset (nested, binary, non-sorted creation order). */
const FILE_V0 = bytes(1);
const FILE_V1 = bytes(2, 5000);
const FOLDER_V0: Record<string, Buffer> = {
  "weights.bin": bytes(3),
  "config.json": Buffer.from('{"layers": 2}\n'),
  "sub/deeper/vocab.txt": Buffer.from("a\nb\nc\n"),
};
const FOLDER_V1: Record<string, Buffer> = {
  "weights.bin": bytes(4, 8000),
  "config.json": Buffer.from('{"layers": 3}\n'),
  "sub/deeper/vocab.txt": Buffer.from("a\nb\nc\nd\n"),
  "sub/extra.bin": bytes(5, 100),
};

/** A source tree with `single.bin` and the folder `folder/`. */
function sources(file: Buffer, folder: Record<string, Buffer>): Record<string, Buffer> {
  return { "single.bin": file, ...Object.fromEntries(Object.entries(folder).map(([k, v]) => [`folder/${k}`, v])) };
}

const reason = skipReason();

describe("modelkit interop on S3 (MinIO)", { skip: reason }, () => {
  it("modelkit reads what assetkit publishes: AssetsManager resolves name:0.1, name:0, name to assetkit's 0.1 (and name:0.0 to 0.0) and fetches byte-identical file and nested folder assets; a signed version's .sig beside it changes nothing", async () => {
    const { cwd, assetkit, python } = await setup();
    const key = path.join(cwd, "signing.pem");
    await writeFile(key, generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }));
    const published: string[][] = [];
    for (const [i, src] of [sources(FILE_V0, FOLDER_V0), sources(FILE_V1, FOLDER_V1)].entries()) {
      const dir = await writeTree(path.join(cwd, `src${i}`), src);
      const signed = i === 1 ? ["--sign-key", key] : []; // the newest versions are signed: modelkit must read past their .sig
      const f = await assetkit("publish", path.join(dir, "single.bin"), "single", "--versioning", "major-minor", ...signed);
      const d = await assetkit("publish", path.join(dir, "folder"), "models/folder", "--versioning", "major-minor", ...signed);
      published.push([f.version, d.version]);
    }
    assert.deepEqual(
      published,
      [
        ["0.0", "0.0"],
        ["0.1", "0.1"],
      ],
      "assetkit's major-minor versions: 0.0 then 0.1",
    );

    const assetsDir = await tempDir();
    const specs = ["single:0.1", "single:0", "single", "single:0.0", "models/folder:0.1", "models/folder:0", "models/folder", "models/folder:0.0"];
    const out = await python("modelkit_fetch.py", assetsDir, ...specs);
    assert.deepEqual(out.remote_versions, { single: ["0.1", "0.0"], "models/folder": ["0.1", "0.0"] }, "modelkit reads assetkit's .versions");
    assert.deepEqual(
      out.fetched.map((f: { spec: string; version: string }) => [f.spec, f.version]),
      specs.map((s) => [s, s.endsWith(":0.0") ? "0.0" : "0.1"]),
      "modelkit resolves to the versions assetkit wrote",
    );
    for (const f of out.fetched as {
      spec: string;
      version: string;
      path: string;
      from_cache: boolean;
      meta_push_date: string | null;
      meta_is_directory: boolean | null;
    }[]) {
      assert.equal(f.path, path.join(assetsDir, ...f.spec.replace(/:.*/, "").split("/"), f.version), `${f.spec}: modelkit's local layout`);
      if (!f.from_cache) {
        assert.ok(f.meta_push_date, `${f.spec}: modelkit parsed assetkit's push_date`);
        assert.equal(f.meta_is_directory, f.spec.startsWith("models/folder"), `${f.spec}: is_directory`);
      }
      if (f.spec.startsWith("single")) {
        assert.deepEqual(await readFile(f.path), f.version === "0.0" ? FILE_V0 : FILE_V1, `${f.spec}: file bytes`);
        assert.ok(existsSync(path.join(path.dirname(f.path), `.${f.version}.SUCCESS`)), `${f.spec}: modelkit marker`);
      } else {
        assert.deepEqual(await tree(f.path), f.version === "0.0" ? FOLDER_V0 : FOLDER_V1, `${f.spec}: folder bytes`);
        assert.ok(existsSync(path.join(f.path, ".SUCCESS")), `${f.spec}: modelkit marker`);
      }
    }
    // Fetched from the store once per version, then from modelkit's cache.
    assert.deepEqual(
      out.fetched.map((f: { from_cache: boolean }) => f.from_cache),
      [false, true, true, false, false, true, true, false],
    );
  });

  it("modelkit fetches a version with a sharded meta (schema 4) byte-identical: its .meta keeps contents", async () => {
    const { cwd, assetkit, assetkitEnv, python } = await setup();
    assetkitEnv.ASSETKIT_META_SHARD_FILES = "2";
    const dir = await writeTree(path.join(cwd, "src"), FOLDER_V0);
    const published = await assetkit("publish", dir, "models/many", "--versioning", "major-minor");
    const shown = await assetkit("show", "models/many");
    assert.equal(shown.assetkit.schema, 4, "sharded");
    const assetsDir = await tempDir();
    const out = await python("modelkit_fetch.py", assetsDir, "models/many");
    assert.equal(out.fetched[0].version, published.version);
    assert.deepEqual(await tree(out.fetched[0].path), FOLDER_V0, "folder bytes");
  });

  it("a content-addressed asset beside a modelkit-layout one: modelkit fetches the latter byte-identical and fails on the former, which assetkit fetches", async () => {
    const { cwd, assetkit, python, pythonRun } = await setup();
    const plain = await writeTree(path.join(cwd, "plain"), FOLDER_V0);
    const packed = await writeTree(path.join(cwd, "packed"), FOLDER_V1);
    await assetkit("publish", plain, "models/plain", "--versioning", "major-minor");
    await assetkit("publish", packed, "models/packed", "--versioning", "major-minor", "--layout", "content-addressed");
    const out = await python("modelkit_fetch.py", await tempDir(), "models/plain");
    assert.deepEqual(await tree(out.fetched[0].path), FOLDER_V0, "the modelkit-layout asset, unaffected");
    const refused = await pythonRun("modelkit_fetch.py", await tempDir(), "models/packed");
    assert.notEqual(refused.code, 0, "modelkit cannot fetch a content-addressed version (no object under the version)");
    const fetched = await assetkit("fetch", "models/packed", "--assets-dir", await tempDir());
    assert.deepEqual(await tree(fetched.resolved[0].path), FOLDER_V1);
  });

  it("assetkit reads what modelkit publishes: modelkit's new/update (and --bump-major) versions are listed newest first, resolved by name:0, and fetched byte-identical without checksums (digest null)", async () => {
    const { cwd, assetkit, python } = await setup();
    const src0 = await writeTree(path.join(cwd, "mk0"), sources(FILE_V0, FOLDER_V0));
    const src1 = await writeTree(path.join(cwd, "mk1"), sources(FILE_V1, FOLDER_V1));
    const src2 = await writeTree(path.join(cwd, "mk2"), { "folder/only.txt": "major one\n" });
    const pushed = [
      await python("modelkit_push.py", "new", path.join(src0, "single.bin"), "single"),
      await python("modelkit_push.py", "update", path.join(src1, "single.bin"), "single"),
      await python("modelkit_push.py", "new", path.join(src0, "folder"), "models/folder"),
      await python("modelkit_push.py", "update", path.join(src1, "folder"), "models/folder"),
      await python("modelkit_push.py", "update", path.join(src2, "folder"), "models/folder", "--bump-major"),
    ].map((r: { version: string }) => r.version);
    assert.deepEqual(pushed, ["0.0", "0.1", "0.0", "0.1", "1.0"]);

    assert.deepEqual(await assetkit("list", "single"), { assets: [{ name: "single", versions: ["0.1", "0.0"] }] });
    assert.deepEqual(await assetkit("list", "models/folder"), { assets: [{ name: "models/folder", versions: ["1.0", "0.1", "0.0"] }] });
    assert.deepEqual(await assetkit("list"), {
      assets: [
        { name: "models/folder", versions: ["1.0", "0.1", "0.0"] },
        { name: "single", versions: ["0.1", "0.0"] },
      ],
    });

    const resolved = await assetkit("resolve", "single:0", "single", "models/folder:0", "models/folder");
    assert.deepEqual(
      resolved.resolved.map((r: { spec: string; name: string; version: string; digest: unknown }) => [r.spec, r.name, r.version, r.digest]),
      [
        ["single:0", "single", "0.1", null],
        ["single", "single", "0.1", null],
        ["models/folder:0", "models/folder", "0.1", null],
        ["models/folder", "models/folder", "1.0", null],
      ],
    );

    const assetsDir = await tempDir();
    const specs = ["single:0.0", "single:0", "models/folder:0.0", "models/folder:0", "models/folder", "models/folder:0[sub/deeper/vocab.txt]"];
    const fetched = await assetkit("fetch", ...specs, "--assets-dir", assetsDir);
    assert.deepEqual(
      fetched.resolved.map((r: { spec: string; version: string; digest: unknown }) => [r.spec, r.version, r.digest]),
      [
        ["single:0.0", "0.0", null],
        ["single:0", "0.1", null],
        ["models/folder:0.0", "0.0", null],
        ["models/folder:0", "0.1", null],
        ["models/folder", "1.0", null],
        ["models/folder:0[sub/deeper/vocab.txt]", "0.1", null],
      ],
      "fetched although modelkit's metas carry no checksums; digest reported as null",
    );
    const [f0, f1, d0, d1, d2, part] = fetched.resolved.map((r: { path: string }) => r.path);
    assert.deepEqual(await readFile(f0), FILE_V0);
    assert.deepEqual(await readFile(f1), FILE_V1);
    assert.deepEqual(await tree(d0), FOLDER_V0);
    assert.deepEqual(await tree(d1), FOLDER_V1);
    assert.deepEqual(await tree(d2), { "only.txt": Buffer.from("major one\n") });
    assert.deepEqual(await readFile(part), FOLDER_V1["sub/deeper/vocab.txt"]);
    // assetkit lays the assets dir out as modelkit does (dir/name/version, with modelkit's success markers).
    assert.equal(f1, path.join(assetsDir, "single", "0.1"));
    assert.equal(d1, path.join(assetsDir, "models", "folder", "0.1"));
    assert.ok(existsSync(path.join(assetsDir, "single", ".0.1.SUCCESS")), "file marker .0.1.SUCCESS");
    assert.ok(existsSync(path.join(d1, ".SUCCESS")), "folder marker .SUCCESS");
  });
  it("modelkit's simple_date: assetkit lists, resolves and fetches modelkit's dated versions, publishes the next one (the current UTC second), and modelkit fetches that as its latest", async () => {
    const { cwd, assetkit, python } = await setup("simple_date");
    const src0 = await writeTree(path.join(cwd, "mk0"), sources(FILE_V0, FOLDER_V0));
    const src1 = await writeTree(path.join(cwd, "mk1"), sources(FILE_V1, FOLDER_V1));
    const d0 = (await python("modelkit_push.py", "new", path.join(src0, "folder"), "dated")).version;
    await secondAfter(d0);
    const d1 = (await python("modelkit_push.py", "update", path.join(src1, "folder"), "dated")).version;
    assert.match(d0, /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ$/, "modelkit's simple_date version");
    assert.ok(d1 > d0, `${d1} after ${d0}`);

    assert.deepEqual(await assetkit("list", "dated"), { assets: [{ name: "dated", versions: [d1, d0] }] });
    const resolved = await assetkit("resolve", "dated", `dated:${d0}`, "dated:latest");
    assert.deepEqual(
      resolved.resolved.map((r: { version: string }) => r.version),
      [d1, d0, d1],
    );
    const assetsDir = await tempDir();
    const fetched = await assetkit("fetch", "dated", `dated:${d0}[sub/deeper/vocab.txt]`, "--assets-dir", assetsDir);
    assert.deepEqual(await tree(fetched.resolved[0].path), FOLDER_V1);
    assert.deepEqual(await readFile(fetched.resolved[1].path), FOLDER_V0["sub/deeper/vocab.txt"]);

    // The next version is the current UTC second, not a semver series started beside modelkit's dates.
    await secondAfter(d1);
    const src2 = await writeTree(path.join(cwd, "ak2"), { "folder/only.txt": "published by assetkit\n" });
    const published = await assetkit("publish", path.join(src2, "folder"), "dated");
    assert.match(published.version, /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ$/);
    assert.ok(published.version > d1, `${published.version} after ${d1}`);
    // And a new asset dated by assetkit (--versioning simple-date).
    const fresh = await assetkit("publish", path.join(src0, "single.bin"), "fresh", "--versioning", "simple-date");
    assert.match(fresh.version, /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ$/);

    const mkDir = await tempDir();
    const out = await python("modelkit_fetch.py", mkDir, "dated", "fresh");
    assert.deepEqual(out.remote_versions, { dated: [published.version, d1, d0], fresh: [fresh.version] }, "one index, dates only, newest first");
    assert.deepEqual(
      out.fetched.map((f: { version: string }) => f.version),
      [published.version, fresh.version],
      "modelkit's latest is assetkit's version",
    );
    assert.deepEqual(await tree(out.fetched[0].path), { "only.txt": Buffer.from("published by assetkit\n") });
    assert.deepEqual(await readFile(out.fetched[1].path), FILE_V0);
  });
});
