// promote --to: a version copied between stores through the CLI, as a user runs it, on real servers (local,
// MinIO, fake-gcs-server, Azurite); concurrent promoters and publishers; digest conflicts; channel history,
// rollback and protected channels; release-tag versions (v1.4.0) and name:latest.
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, it } from "node:test";
import { startRequestCounter } from "../../scripts/request-counter.ts";
import { incompleteUploadsOf, type Store } from "../../src/store/store.ts";
import { extraS3Bucket, s3TestEnv } from "../conformance/factories/s3.ts";
import { factories, skipReason } from "../conformance/stores.ts";
import { uniquePrefix } from "../conformance/factory.ts";
import { runCli, scratch, startCli, writeTree } from "../helpers/cli.ts";

const byName = (prefix: string) => factories.find((f) => f.name.startsWith(prefix))!;
const serversEnv = (): NodeJS.ProcessEnv => ({
  ...s3TestEnv(),
  AZURE_STORAGE_CONNECTION_STRING: process.env.ASSETKIT_TEST_AZURE_CONNECTION_STRING ?? "",
});

async function cli(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = await runCli(args, { cwd, env: { ...serversEnv(), ...env } });
  return { ...r, json: () => JSON.parse(r.stdout) };
}

/** Publishes a folder asset `m` (two files, one of 20 MiB: multipart on S3) at `version` into `store`. */
async function publishModel(cwd: string, store: string, version: string, seed: string) {
  await writeTree(cwd, { [`in-${seed}/weights.bin`]: Buffer.alloc(20 * 1024 * 1024 + 7, seed), [`in-${seed}/config.json`]: `{"seed":"${seed}"}` });
  const r = await cli(cwd, ["publish", `in-${seed}`, "m", "--version", version, "--store", store, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  return r.json() as { digest: string };
}

async function fetchesVerified(cwd: string, store: string, spec: string, digest: string) {
  const r = await cli(cwd, ["fetch", spec, "--store", store, "--assets-dir", path.join(cwd, `assets-${uniquePrefix()}`), "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const [resolved] = r.json().resolved;
  assert.equal(resolved.digest, digest);
  return resolved.path as string;
}

const file = byName("file");
const s3 = byName("s3");
const gcs = byName("gcs");
const azure = byName("azure");

describe("promote --to between stores", { skip: skipReason(s3) ?? skipReason(gcs) ?? skipReason(azure) }, () => {
  it("local → MinIO → MinIO bucket B (server-side) → fake-gcs-server → Azurite: same version, digest and bytes; fetch verifies", async () => {
    const cwd = await scratch();
    const counter = await startRequestCounter(process.env.ASSETKIT_TEST_S3_ENDPOINT!);
    try {
      const local = path.join(cwd, "staging-store");
      const staging = `s3://${process.env.ASSETKIT_TEST_S3_BUCKET}/${uniquePrefix()}?endpoint=${counter.url}`;
      const production = `s3://${await extraS3Bucket(`assetkit-prod-${process.pid}`)}/${uniquePrefix()}?endpoint=${counter.url}`;
      const google = (await gcs.create()).uri;
      const blob = (await azure.create()).uri;
      const { digest } = await publishModel(cwd, local, "1.4.0", "a");

      const first = await cli(cwd, ["promote", "m:1.4.0", "--store", local, "--to", staging, "--json"], {
        GITHUB_ACTOR: "octocat",
        GITHUB_REPOSITORY: "o/r",
        GITHUB_RUN_ID: "7",
      });
      assert.equal(first.code, 0, first.stderr);
      assert.deepEqual(first.json(), {
        name: "m",
        alias: null,
        spec: "m:1.4.0",
        version: "1.4.0",
        digest,
        previous: null,
        changed: false,
        store: first.json().store,
        from: local,
        copied: true,
      });
      const meta = (await cli(cwd, ["show", "m:1.4.0", "--store", staging, "--json"])).json();
      assert.equal(meta.assetkit.digest, digest);
      assert.deepEqual(
        { ...meta.promoted_from, at: undefined },
        { store: local, version: "1.4.0", digest, at: undefined, by: "octocat", run_url: "https://github.com/o/r/actions/runs/7" },
      );
      // The promoted meta records the staging objects' own etags (not the local store's): the same files published
      // there next are copied inside the store, their source proven.
      const republished = await cli(cwd, ["publish", "in-a", "m", "--store", staging]);
      assert.equal(republished.code, 0, republished.stderr);
      assert.match(republished.stderr, /uploaded 0 file\(s\), 0 B; 2 unchanged file\(s\)/);

      counter.reset();
      const serverSide = await cli(cwd, ["promote", "m:1.4.0", "production", "--store", staging, "--to", production, "--json"]);
      assert.equal(serverSide.code, 0, serverSide.stderr);
      assert.equal(serverSide.json().copied, true);
      assert.equal(serverSide.json().alias, "production");
      const dataReads = counter.requests().filter((r) => r.method === "GET" && /\/m\/1\.4\.0\/(weights\.bin|config\.json)/.test(r.url));
      assert.deepEqual(dataReads, [], "a server-side copy reads no data object through the runner");
      assert.ok(
        counter.requests().some((r) => r.method === "PUT" && /\/m\/1\.4\.0\/weights\.bin/.test(r.url)),
        "CopyObject requests seen",
      );

      assert.equal((await cli(cwd, ["promote", "m:production", "--store", production, "--to", google])).code, 0);
      const toAzure = await cli(cwd, ["promote", "m:1.4.0", "production", "--store", google, "--to", blob, "--json"]);
      assert.equal(toAzure.code, 0, toAzure.stderr);

      for (const store of [staging, production, google, blob]) {
        const fetched = await fetchesVerified(cwd, store, "m:1.4.0", digest);
        assert.ok((await readFile(path.join(fetched, "weights.bin"))).equals(Buffer.alloc(20 * 1024 * 1024 + 7, "a")), store);
      }
      assert.equal((await cli(cwd, ["resolve", "m:production", "--store", blob, "--json"])).json().resolved[0].version, "1.4.0");

      // Idempotent: the destination has it with the same digest.
      const again = await cli(cwd, ["promote", "m:1.4.0", "--store", local, "--to", staging, "--json"]);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.json().copied, false);

      // Another digest under the same version at the destination: refused, both digests named, nothing changed.
      const other = path.join(cwd, "other-store");
      const { digest: otherDigest } = await publishModel(cwd, other, "1.4.0", "b");
      const before = counter.requests().length;
      const clash = await cli(cwd, ["promote", "m:1.4.0", "--store", other, "--to", staging]);
      assert.equal(clash.code, 1);
      assert.ok(clash.stderr.includes(digest) && clash.stderr.includes(otherDigest), clash.stderr);
      assert.equal(
        counter
          .requests()
          .slice(before)
          .filter((r) => r.method === "PUT" || r.method === "DELETE" || r.method === "POST").length,
        0,
      );
      await fetchesVerified(cwd, staging, "m:1.4.0", digest);
    } finally {
      await counter.stop();
    }
  });

  it("a streamed copy with a flipped byte in any file leaves the destination as it was, claims and uploads included (folder → MinIO → GCS → Azure, MinIO → folder)", async () => {
    const cwd = await scratch();
    // A streamed write into GCS whose source fails ends only when its request times out (README, "Failures and
    // time budgets"): a short idle timeout keeps those waits short.
    const env = { ASSETKIT_PART_SIZE: "5MiB", ASSETKIT_IDLE_TIMEOUT: "5" };
    // A large file (ranged parts, multipart on S3) and two small ones: whichever fails, the others may be in flight.
    const files = { "weights.bin": Buffer.alloc(12 * 1024 * 1024 + 3, "w"), "config.json": '{"layers":2}', "vocab.txt": Buffer.alloc(70_000, "v") };
    await writeTree(cwd, Object.fromEntries(Object.entries(files).map(([p, data]) => [`in/${p}`, data])));
    await writeTree(cwd, { "old.txt": "an earlier version" });
    /** Every object of a store, with its size and etag, and (S3) its incomplete uploads. */
    const state = async (seed: Store) => {
      const objects: string[] = [];
      for await (const o of seed.list("")) objects.push(`${o.key} ${o.size} ${o.etag}`);
      const uploads: string[] = [];
      for await (const u of incompleteUploadsOf(seed)?.incompleteUploads("") ?? []) uploads.push(u.key);
      return { objects: objects.sort(), uploads };
    };
    // A chain: each pair's final, clean copy is the next pair's source (the version is published once, to a folder).
    const [folder, minio, google, blob, folder2] = await Promise.all([file, s3, gcs, azure, file].map((f) => f.create()));
    const published = await cli(cwd, ["publish", "in", "m", "--version", "1.0.0", "--store", folder!.uri], env);
    assert.equal(published.code, 0, published.stderr);
    for (const [source, dest, pair] of [
      [folder!, minio!, "folder → MinIO"],
      [minio!, google!, "MinIO → GCS"],
      [google!, blob!, "GCS → Azure"],
      [minio!, folder2!, "MinIO → folder"],
    ] as const) {
      const earlier = await cli(cwd, ["publish", "old.txt", "m", "--version", "0.9.0", "--store", dest.uri], env);
      assert.equal(earlier.code, 0, `${pair}: ${earlier.stderr}`);
      const before = await state(dest.seed);
      for (const [relPath, data] of Object.entries(files)) {
        const key = `m/1.0.0/${relPath}`;
        const flipped = Buffer.from(data);
        flipped[flipped.length >> 1]! ^= 1;
        await source.seed.write(key, flipped);
        const failed = await cli(cwd, ["promote", "m:1.0.0", "--store", source.uri, "--to", dest.uri], env);
        assert.equal(failed.code, 1, `${pair}, ${relPath}: ${failed.stderr}`);
        assert.match(failed.stderr, /sha256/, `${pair}, ${relPath}`);
        assert.deepEqual(await state(dest.seed), before, `${pair}, a flipped byte in ${relPath}: the destination is as it was`);
        await source.seed.write(key, Buffer.from(data));
      }
      const copied = await cli(cwd, ["promote", "m:1.0.0", "--store", source.uri, "--to", dest.uri, "--json"], env);
      assert.equal(copied.code, 0, `${pair}: ${copied.stderr}`);
      assert.match(copied.stderr, /3 streamed and verified/, pair);
    }
  });

  it("a server-side copy between stores of one backend copies only the object the source meta recorded: a replaced one is streamed and refused (folder, MinIO, GCS, Azure)", async () => {
    const cwd = await scratch();
    const env = { ASSETKIT_IDLE_TIMEOUT: "5" }; // the refused GCS copy streams, and fails at its request's timeout
    const files = { "weights.bin": Buffer.alloc(70_000, "w"), "config.json": '{"layers":2}' };
    await writeTree(cwd, Object.fromEntries(Object.entries(files).map(([p, data]) => [`in/${p}`, data])));
    for (const factory of [file, s3, gcs, azure]) {
      const [source, dest, clean] = await Promise.all([factory.create(), factory.create(), factory.create()]);
      for (const version of ["1.0.0", "1.1.0"]) {
        const published = await cli(cwd, ["publish", "in", "m", "--version", version, "--store", source!.uri], env);
        assert.equal(published.code, 0, `${factory.name}: ${published.stderr}`);
      }
      // 1.0.0 as published: copied by the service, nothing through this process.
      const served = await cli(cwd, ["promote", "m:1.0.0", "--store", source!.uri, "--to", clean!.uri], env);
      assert.equal(served.code, 0, `${factory.name}: ${served.stderr}`);
      assert.match(served.stderr, /\(2 server-side, 0 streamed and verified\)/, factory.name);
      // 1.1.0 with one object replaced by same-size bytes: no longer the recorded object, so it streams, and fails its sha256.
      const damaged = Buffer.from(files["weights.bin"]);
      damaged[damaged.length >> 1]! ^= 1;
      await source!.seed.write("m/1.1.0/weights.bin", damaged);
      const failed = await cli(cwd, ["promote", "m:1.1.0", "--store", source!.uri, "--to", dest!.uri], env);
      assert.equal(failed.code, 1, `${factory.name}: ${failed.stderr}`);
      assert.match(failed.stderr, /sha256/, factory.name);
      const left: string[] = [];
      for await (const o of dest!.seed.list("")) left.push(o.key);
      assert.deepEqual(left, [], `${factory.name}: nothing kept at the destination`);
    }
  });

  it("each store its own credentials: ?profile= on the destination URI, while the environment's keys are wrong", async () => {
    const cwd = await writeTree(await scratch(), { "m.bin": "profiled" });
    const good = s3TestEnv();
    const credentials = path.join(cwd, "aws-credentials");
    await writeFile(credentials, `[prod]\naws_access_key_id = ${good.AWS_ACCESS_KEY_ID}\naws_secret_access_key = ${good.AWS_SECRET_ACCESS_KEY}\n`);
    const env = {
      AWS_ACCESS_KEY_ID: "wrong-key-id",
      AWS_SECRET_ACCESS_KEY: "wrong-secret",
      AWS_SHARED_CREDENTIALS_FILE: credentials,
      AWS_CONFIG_FILE: path.join(cwd, "none"),
    };
    assert.equal((await cli(cwd, ["publish", "m.bin", "m"])).code, 0);
    const dest = (await s3.create()).uri;
    const denied = await cli(cwd, ["promote", "m:1.0.0", "--to", dest], env);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /access denied/);
    const profiled = await cli(cwd, ["promote", "m:1.0.0", "--to", `${dest}&profile=prod`, "--json"], env);
    assert.equal(profiled.code, 0, profiled.stderr);
    assert.equal(profiled.json().copied, true);
  });

  it("4 promoters of 4 versions into one store while 2 publishers publish there: every version present, .versions complete", async () => {
    const cwd = await scratch();
    const source = path.join(cwd, "src-store");
    const dest = (await s3.create()).uri;
    await writeTree(cwd, { "p.txt": "published" });
    for (const v of ["5.0.0", "6.0.0", "7.0.0", "8.0.0"]) {
      await writeTree(cwd, { [`v${v}.txt`]: v });
      assert.equal((await cli(cwd, ["publish", `v${v}.txt`, "m", "--version", v, "--store", source])).code, 0);
    }
    const env = { ...serversEnv() };
    const runs = await Promise.all([
      ...["5.0.0", "6.0.0", "7.0.0", "8.0.0"].map((v) => startCli(["promote", `m:${v}`, "--store", source, "--to", dest], { cwd, env })),
      ...[0, 1].map(() => startCli(["publish", "p.txt", "m:1", "--store", dest], { cwd, env })),
    ]);
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const listed = (await cli(cwd, ["list", "m", "--store", dest, "--json"])).json().assets[0].versions;
    assert.deepEqual(listed, ["8.0.0", "7.0.0", "6.0.0", "5.0.0", "1.1.0", "1.0.0"]);
  });
});

describe("channel history, rollback, protected channels, release tags (local store)", () => {
  it("history lists 5 promotions newest first; --rollback goes back one; a protected channel moves only from its refs", async () => {
    const cwd = await writeTree(await scratch(), { "m.bin": "x" });
    for (let i = 0; i < 5; i++) {
      await writeFile(path.join(cwd, "m.bin"), `content ${i}`);
      assert.equal((await cli(cwd, ["publish", "m.bin", "m"])).code, 0);
      const p = await cli(cwd, ["promote", `m:1.${i}.0`, "production"], { GITHUB_ACTOR: `user${i}`, GITHUB_REF: "refs/heads/main", GITHUB_SHA: `sha${i}` });
      assert.equal(p.code, 0, p.stderr);
    }
    const history = await cli(cwd, ["history", "m:production", "--json"]);
    assert.equal(history.code, 0, history.stderr);
    const moves = history.json().channels[0].history;
    assert.deepEqual(
      moves.map((m: { version: string }) => m.version),
      ["1.4.0", "1.3.0", "1.2.0", "1.1.0", "1.0.0"],
    );
    assert.deepEqual({ ...moves[0], at: undefined }, { version: "1.4.0", previous: "1.3.0", at: undefined, by: "user4", ref: "refs/heads/main", sha: "sha4" });
    assert.match((await cli(cwd, ["history", "m"])).stdout, /^m:production\t1\.4\.0\twas 1\.3\.0\t/);

    const back = await cli(cwd, ["promote", "m:production", "--rollback", "--json"]);
    assert.equal(back.code, 0, back.stderr);
    assert.deepEqual([back.json().version, back.json().previous, back.json().rollback], ["1.3.0", "1.4.0", true]);
    assert.equal((await cli(cwd, ["resolve", "m:production", "--json"])).json().resolved[0].version, "1.3.0");
    assert.equal((await cli(cwd, ["history", "m:production", "--json"])).json().channels[0].history.length, 6);

    await writeFile(path.join(cwd, "assetkit.yml"), 'channels:\n  production:\n    refs: ["refs/tags/v*"]\n    require-verified: true\n');
    const refused = await cli(cwd, ["promote", "m:1.4.0", "production"], { GITHUB_REF: "refs/heads/main" });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /production is a protected channel: it moves only from refs\/tags\/v\*, not from refs\/heads\/main/);
    assert.equal((await cli(cwd, ["promote", "m:production", "--rollback"], { GITHUB_REF: "refs/heads/main" })).code, 1);
    const allowed = await cli(cwd, ["promote", "m:1.4.0", "production"], { GITHUB_REF: "refs/tags/v1.0.0" });
    assert.equal(allowed.code, 0, allowed.stderr);
  });

  it("an .aliases file from before history reads as one move; history is kept to 100 moves", async () => {
    const cwd = await writeTree(await scratch(), { "m.bin": "x" });
    assert.equal((await cli(cwd, ["publish", "m.bin", "m"])).code, 0);
    assert.equal((await cli(cwd, ["publish", "m.bin", "m"])).code, 0);
    const file = path.join(cwd, ".assetkit/store/m.aliases");
    const old = { version: "1.0.0", promoted_at: "2026-01-01T00:00:00.000Z", promoted_by: "assetkit 0.1.0", source: { actor: "alice" } };
    await writeFile(file, JSON.stringify({ aliases: { production: old } }));
    assert.deepEqual((await cli(cwd, ["history", "m:production", "--json"])).json().channels[0].history, [
      { version: "1.0.0", at: old.promoted_at, by: "alice" },
    ]);
    // A channel already at 100 moves: two more keep the newest 100 and count the 2 dropped.
    const full = Array.from({ length: 100 }, (_, i) => ({ version: `1.${i % 2}.0`, at: old.promoted_at, by: "bot" }));
    await writeFile(file, JSON.stringify({ aliases: { production: { ...old, version: "1.0.0", history: full } } }));
    assert.equal((await cli(cwd, ["promote", "m:1.1.0", "production"])).code, 0);
    assert.equal((await cli(cwd, ["promote", "m:1.0.0", "production"])).code, 0);
    const doc = JSON.parse(await readFile(file, "utf8"));
    assert.equal(doc.aliases.production.history.length, 100);
    assert.equal(doc.aliases.production.history_dropped, 2);
  });

  it("a modelkit MAJOR.MINOR version promoted into an empty store keeps its number and scheme; the next publish there continues it", async () => {
    const cwd = await writeTree(await scratch(), { "next.bin": "next" });
    const legacy = path.join(cwd, "modelkit-store");
    // modelkit's layout: data, a meta without checksums, an index without digests.
    await writeTree(legacy, {
      "models/legacy.versions": JSON.stringify({ versions: ["0.1", "0.0"] }),
      "models/legacy/0.0": "zero",
      "models/legacy/0.0.meta": JSON.stringify({ push_date: "2026-01-01T00:00:00Z", is_directory: false, contents: [] }),
      "models/legacy/0.1": "one",
      "models/legacy/0.1.meta": JSON.stringify({ push_date: "2026-01-02T00:00:00Z", is_directory: false, contents: [] }),
    });
    const dest = path.join(cwd, "new-store");
    const promoted = await cli(cwd, ["promote", "models/legacy:0.1", "--store", legacy, "--to", dest, "--allow-unverified", "--json"]);
    assert.equal(promoted.code, 0, promoted.stderr);
    assert.deepEqual([promoted.json().version, promoted.json().copied], ["0.1", true]);
    assert.deepEqual((await cli(cwd, ["list", "models/legacy", "--store", dest, "--json"])).json().assets[0].versions, ["0.1"]);
    const next = await cli(cwd, ["publish", "next.bin", "models/legacy", "--store", dest, "--json"]);
    assert.equal(next.code, 0, next.stderr);
    assert.equal(next.json().version, "0.2", "the next publish continues modelkit's MAJOR.MINOR scheme");
    const fetched = await cli(cwd, ["fetch", "models/legacy:0.1", "--store", dest, "--assets-dir", path.join(cwd, "assets"), "--json"]);
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.equal(await readFile(fetched.json().resolved[0].path, "utf8"), "one");
  });

  it("publish --version v1.4.0 stores 1.4.0; other text exits 2; name:latest resolves like name", async () => {
    const cwd = await writeTree(await scratch(), { "m.bin": "x" });
    const tagged = await cli(cwd, ["publish", "m.bin", "m", "--version", "v1.4.0", "--json"]);
    assert.equal(tagged.code, 0, tagged.stderr);
    assert.equal(tagged.json().version, "1.4.0");
    const bad = await cli(cwd, ["publish", "m.bin", "m", "--version", "release-1"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /release-1 is not a semver version/);
    assert.equal((await cli(cwd, ["publish", "m.bin", "m", "--version", "2.0.0-rc.1"])).code, 0);
    assert.equal((await cli(cwd, ["resolve", "m:latest", "--json"])).json().resolved[0].version, "1.4.0");
    assert.equal((await cli(cwd, ["promote", "m:1.4.0", "latest"])).code, 2);
  });
});
