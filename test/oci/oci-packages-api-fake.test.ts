// prune and gc on a registry that refuses DELETE but has GitHub's Packages API (ghcr.io), against a FAKE of that API
// (test/helpers/github-packages-fake.ts: GitHub's API cannot run here) kept over the real registry A, which the CLI
// reaches through a proxy answering every DELETE 405 as ghcr.io does: versions deleted as package versions (a
// manifest with all its tags), listings paged, rate limits waited out, a permission error in one line with nothing
// deleted, a user's packages as an organisation's, and a version a channel moved onto restored; gc's leftovers
// deleted where their manifest holds nothing else.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { UsageError } from "../../src/base/errors.ts";
import { uniquePrefix } from "../conformance/factory.ts";
import { runCli, scratch, writeTree } from "../helpers/cli.ts";
import { FaultProxy } from "../helpers/fault-proxy.ts";
import { GitHubPackagesFake } from "../helpers/github-packages-fake.ts";
import { TEST_SETTINGS, TEST_TUNING } from "../helpers/settings.ts";
import { standInManifestBytes } from "../../src/registry/oci/artifact.ts";
import { OciLayout } from "../../src/registry/oci/oci-layout.ts";
import { openGitHubPackages, openOciClient, parseOciUri } from "../../src/store/oci/open.ts";

const REGISTRY_A = process.env.ASSETKIT_TEST_OCI_A;
const unavailable = !REGISTRY_A ? "no OCI registry (ASSETKIT_TEST_OCI_A): run under node scripts/test.ts" : undefined;
if (unavailable && process.env.ASSETKIT_TEST_ALL_STORES === "1") throw new Error(unavailable);

const MANIFEST = "application/vnd.oci.image.manifest.v1+json";

describe("packages-api", () => {
  it("is GitHub's REST API on ghcr.io by default, none elsewhere, an http(s) URL when given", () => {
    assert.equal(parseOciUri("oci://ghcr.io/acme/models").packagesApi?.href, "https://api.github.com/");
    assert.equal(parseOciUri("oci://localhost:5000/ml").packagesApi, undefined);
    assert.equal(
      parseOciUri("oci://ghes.example.com/acme/m?packages-api=https://ghes.example.com/api/v3").packagesApi?.href,
      "https://ghes.example.com/api/v3",
    );
    assert.throws(
      () => parseOciUri("oci://localhost:5000/ml?packages-api=nope"),
      (err: Error) => err instanceof UsageError && /packages-api is an http\(s\) URL/.test(err.message),
    );
  });
});

describe("prune through GitHub's Packages API (fake) where the registry refuses DELETE", { skip: unavailable }, () => {
  let proxy: FaultProxy;
  let api: GitHubPackagesFake;
  before(async () => {
    proxy = await FaultProxy.start(REGISTRY_A!);
    proxy.inject({
      when: (req) => req.method === "DELETE",
      fault: {
        kind: "status",
        status: 405,
        headers: { "content-type": "application/json" },
        body: '{"errors":[{"code":"UNSUPPORTED","message":"The operation is unsupported."}]}',
      },
    });
    api = await GitHubPackagesFake.start({
      registry: REGISTRY_A!,
      tokens: { admin: { admin: true }, reader: { admin: false } },
      users: ["someone"],
      maxPerPage: 2,
    });
  });
  after(async () => {
    await proxy.stop();
    await api.stop();
  });

  /** A namespace `<owner>/<unique>` on the proxied registry, its packages in the fake; four versions of `x`, 1.0.0 on channel prod. */
  async function setup(owner: string, token = "admin") {
    const namespace = `${owner}/${uniquePrefix()}`;
    const store = `oci://${new URL(proxy.url).host}/${namespace}?settle=0&packages-api=${encodeURIComponent(api.url)}`;
    const cwd = await scratch();
    const env = { ASSETKIT_STORE: store, ASSETKIT_OCI_USERNAME: "someone", ASSETKIT_OCI_PASSWORD: token };
    const cli = (...args: string[]) => runCli(args, { cwd, env });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the CLI's JSON documents, read field by field
    const json = async (...args: string[]): Promise<any> => {
      const r = await cli(...args, "--json");
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
      return JSON.parse(r.stdout);
    };
    for (const content of ["one", "two", "three", "four"]) {
      await writeTree(cwd, { "m/a.txt": content });
      await json("publish", "m", "x");
    }
    await json("promote", "x:1.0.0", "prod");
    const url = (path: string) => `${REGISTRY_A}/v2/${namespace}/x/${path}`;
    const tags = async () => ((await (await fetch(url("tags/list"))).json()) as { tags: string[] }).tags.sort();
    const digest = async (tag: string) =>
      (await fetch(url(`manifests/${tag}`), { method: "HEAD", headers: { accept: MANIFEST } })).headers.get("docker-content-digest");
    return { store, namespace, cli, json, tags, digest, env };
  }

  it("deletes each pruned version's package version (its manifest with its receipt and hold), across listing pages; channels and kept versions stay", async () => {
    const { namespace, json, tags, digest } = await setup("acme");
    const before = await tags();
    assert.ok(
      before.some((t) => t.startsWith("_h.")),
      "the publishes' holds stayed (no tag deletion)",
    );
    const kept = await digest("1.0.0");
    api.requests.length = 0;
    const done = await json("prune", "--keep-last", "1", "--yes");
    assert.deepEqual(done.removed, { versions: 2, bytes: 8 });
    assert.deepEqual((await json("list", "x")).assets[0].versions, ["1.3.0", "1.0.0"]);
    assert.equal((await json("resolve", "x:prod")).resolved[0].version, "1.0.0");
    assert.equal(await digest("1.0.0"), kept);
    const left = await tags();
    assert.ok(!left.includes("1.1.0") && !left.includes("1.2.0"));
    assert.equal(before.length - left.length >= 6, true, `each pruned version went with its receipt and hold (${before.length} → ${left.length} tags)`);
    const pkg = encodeURIComponent(`${namespace.split("/")[1]}/x`);
    const listings = api.requests.filter((r) => r.startsWith(`GET /orgs/acme/packages/container/${pkg}/versions`));
    assert.ok(listings.length >= 3, `the listing paged (per_page capped at 2): ${listings.join(", ")}`);
    assert.equal(api.requests.filter((r) => r.startsWith("DELETE ")).length, 2);
  });

  it("a user's packages (its /orgs/ path is 404), and rate limits (secondary 429 with retry-after, primary 403 with x-ratelimit-remaining: 0) waited out", async () => {
    const { json } = await setup("someone");
    api.requests.length = 0;
    api.rateLimit("secondary", 1);
    api.rateLimit("primary", 1);
    const started = Date.now();
    const done = await json("prune", "--keep-last", "2", "--yes");
    assert.deepEqual(done.removed.versions, 1);
    assert.ok(Date.now() - started >= 1000, "the limits were waited out");
    assert.ok(api.requests.some((r) => r.startsWith("GET /users/someone/")));
    assert.deepEqual((await json("list", "x")).assets[0].versions, ["1.3.0", "1.2.0", "1.0.0"]);
  });

  it("a token without admin on the package: one line, exit 1, nothing deleted", async () => {
    const { cli, tags } = await setup("acme", "reader");
    const before = await tags();
    const r = await cli("prune", "--keep-last", "1", "--yes");
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr.trim(),
      /^error: .*cannot delete version \d+ of package .*: permission denied \(403: You need admin access .*\); deleting needs admin on the package and a token with delete:packages/,
    );
    assert.equal(r.stderr.trim().split("\n").length, 1);
    assert.deepEqual(await tags(), before);
  });

  it("a version a channel moved onto while it was deleted is restored, with the same manifest and tags", async () => {
    const { store, env, json, tags, digest } = await setup("acme");
    const location = parseOciUri(store);
    const layout = new OciLayout(openOciClient(location, TEST_TUNING, env), location, {
      versioning: "semver",
      settings: TEST_SETTINGS,
      packages: openGitHubPackages(location, TEST_TUNING, env)!,
    });
    const kept = await digest("1.1.0");
    const pruned = await digest("1.2.0");
    const all = await tags();
    const onPruned = new Set<string>();
    for (const t of all) if ((await digest(t)) === pruned) onPruned.add(t);
    let seenDuring: string[] = [];
    const done = await layout.deleteVersions("x", ["1.1.0", "1.2.0"], async () => {
      seenDuring = await tags();
      return new Set(["1.1.0"]);
    });
    assert.ok(!seenDuring.includes("1.1.0") && !seenDuring.includes("1.2.0"), "both were deleted before the channels were read again");
    assert.deepEqual([done.reinstated, done.deleted.map((d) => d.version)], [["1.1.0"], ["1.2.0"]]);
    assert.equal(await digest("1.1.0"), kept);
    assert.deepEqual(
      await tags(),
      all.filter((t) => !onPruned.has(t)),
      "1.1.0 came back with all its tags; 1.2.0 went with all of its",
    );
    assert.deepEqual((await json("list", "x")).assets[0].versions, ["1.3.0", "1.1.0", "1.0.0"]);
  });

  it("gc deletes a dead publish's package version (its old hold and stale claim); an old hold on a committed version and an old claim on the shared stand-in stay, reported", async () => {
    const { namespace, json, tags, digest } = await setup("acme");
    const url = (path: string) => `${REGISTRY_A}/v2/${namespace}/x/${path}`;
    const put = (tag: string, body: Buffer) => fetch(url(`manifests/${tag}`), { method: "PUT", headers: { "content-type": MANIFEST }, body });
    // Tags written two days ago by their writer's clock (7 base-36 characters of seconds).
    const old = Math.floor(Date.now() / 1000 - 2 * 86400)
      .toString(36)
      .padStart(7, "0");
    // A dead publish: its own manifest (a layer no one else has), with its hold and its claim on a slot never committed.
    const layer = randomBytes(64);
    const layerDigest = `sha256:${createHash("sha256").update(layer).digest("hex")}`;
    const upload = (await fetch(url("blobs/uploads/"), { method: "POST" })).headers.get("location")!;
    await fetch(`${new URL(upload, REGISTRY_A).href}${upload.includes("?") ? "&" : "?"}digest=${layerDigest}`, { method: "PUT", body: layer });
    const standIn = standInManifestBytes();
    const dead = JSON.parse(standIn.toString()) as { layers: { mediaType: string; digest: string; size: number }[] };
    dead.layers = [{ mediaType: "application/octet-stream", digest: layerDigest, size: layer.length }];
    const deadManifest = Buffer.from(JSON.stringify(dead));
    const deadTags = [`_h.${old}.aaaaaaaaaaaa`, `_c.${old}.bbbbbbbbbbbb.9.0.0`];
    for (const tag of deadTags) assert.equal((await put(tag, deadManifest)).status, 201);
    // An old hold on 1.1.0's manifest (its publish died after committing), and an old early claim on the stand-in.
    const committed = Buffer.from(await (await fetch(url("manifests/1.1.0"), { headers: { accept: MANIFEST } })).arrayBuffer());
    const staying = [`_h.${old}.cccccccccccc`, `_c.${old}.dddddddddddd.8.0.0`];
    assert.equal((await put(staying[0]!, committed)).status, 201);
    assert.equal((await put(staying[1]!, standIn)).status, 201);
    const kept = await digest("1.1.0");

    api.requests.length = 0;
    const done = await json("gc", "--older-than", "1d");
    const left = await tags();
    assert.ok(
      deadTags.every((t) => !left.includes(t)),
      `the dead publish's tags went: ${left.join(" ")}`,
    );
    assert.ok(
      staying.every((t) => left.includes(t)),
      "the tags sharing a manifest with a version or with live claims stayed",
    );
    assert.equal(await digest("1.1.0"), kept);
    assert.equal(api.requests.filter((r) => r.startsWith("DELETE ")).length, 1, "one package version deleted");
    assert.equal(done.removed.claims, 2);
    assert.match(done.note, /2 hold, claim or marker tag\(s\) older than 1d stay .*share theirs with a version, or with the claims of publishes/);
    assert.deepEqual((await json("list", "x")).assets[0].versions, ["1.3.0", "1.2.0", "1.1.0", "1.0.0"]);
  });
});
