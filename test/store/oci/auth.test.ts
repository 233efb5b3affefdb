// Registry auth against registry C (scripts/test-servers.ts): a CNCF distribution registry with token auth whose
// realm is test/helpers/oci-token-server.ts, which logs every token request. Credentials from the environment, a
// Docker config file, a credential helper on PATH and an identity token; one token request per scope set; a wrong
// password refused at once with no secret anywhere; anonymous pushes refused; mounts asking pull on the source;
// a token the registry refuses replaced once. Where credentials are found, without a registry: GITHUB_TOKEN only for
// ghcr.io in Actions, and the order of the sources.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { buffer } from "node:stream/consumers";
import { after, before, describe, it } from "node:test";
import { RegistryAuth } from "../../../src/store/oci/auth.ts";
import { OciClient } from "../../../src/store/oci/client.ts";
import { findCredentials, ociCredentialsFor } from "../../../src/store/oci/credentials.ts";
import { StoreError } from "../../../src/store/store.ts";
import { uniquePrefix } from "../../conformance/factory.ts";
import { isStoreError } from "../../helpers/fault-proxy.ts";
import type { TokenRequest } from "../../helpers/oci-token-server.ts";
import type { HttpResponse } from "../../../src/store/http-client.ts";

const REGISTRY_C = process.env.ASSETKIT_TEST_OCI_C;
const TOKEN_SERVER = process.env.ASSETKIT_TEST_OCI_C_TOKEN_SERVER;
const USER = process.env.ASSETKIT_TEST_OCI_C_USER!;
const PASSWORD = process.env.ASSETKIT_TEST_OCI_C_PASSWORD!;
const IDENTITY_TOKEN = process.env.ASSETKIT_TEST_OCI_C_IDENTITY_TOKEN!;
const unavailable = !REGISTRY_C || !TOKEN_SERVER ? "no registry with token auth (ASSETKIT_TEST_OCI_C): run under node scripts/test.ts" : undefined;
if (unavailable && process.env.ASSETKIT_TEST_ALL_STORES === "1") throw new Error(unavailable);

const MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json";
const BUDGET = { retries: 3, idleTimeoutMs: 5_000, timeoutMs: 20_000 };

function sha256(data: Buffer): string {
  return "sha256:" + createHash("sha256").update(data).digest("hex");
}

/** A client of registry C whose credentials come from `env` only (no ambient Docker config or token). */
function clientWith(env: NodeJS.ProcessEnv, options: { chunkBytes?: number } = {}): OciClient {
  const registry = new URL(REGISTRY_C!);
  return new OciClient(registry, { budget: BUDGET, ...options, credentials: ociCredentialsFor(registry.host, { HOME: emptyHome, ...env }) });
}

/** The token requests naming a repository under `prefix`. */
async function tokenRequests(prefix: string): Promise<TokenRequest[]> {
  const all = (await (await fetch(`${TOKEN_SERVER}/requests`)).json()) as TokenRequest[];
  return all.filter((r) => r.scopes.some((s) => s.includes(`:${prefix}/`)));
}

/** Blob, manifest and tag list on `repo`, each read back. */
async function roundTrip(oci: OciClient, repo: string): Promise<void> {
  const layer = Buffer.from(`layer of ${repo}`);
  const config = Buffer.from("{}");
  assert.equal(await oci.uploadBlob(repo, sha256(layer), layer), "uploaded");
  await oci.uploadBlob(repo, sha256(config), config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST_TYPE,
      config: { mediaType: "application/vnd.oci.empty.v1+json", digest: sha256(config), size: config.length },
      layers: [{ mediaType: "application/octet-stream", digest: sha256(layer), size: layer.length }],
    }),
  );
  const digest = await oci.putManifest(repo, "1.0.0", manifest, MANIFEST_TYPE);
  assert.deepEqual((await oci.getManifest(repo, "1.0.0"))?.data, manifest);
  assert.equal((await oci.headManifest(repo, digest))?.digest, digest);
  assert.deepEqual(await oci.blobExists(repo, sha256(layer)), { digest: sha256(layer), size: layer.length });
  const tags: string[] = [];
  for await (const tag of oci.listTags(repo)) tags.push(tag);
  assert.deepEqual(tags, ["1.0.0"]);
}

let scratch: string;
let emptyHome: string;

before(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), "assetkit-oci-auth-"));
  emptyHome = path.join(scratch, "home");
  await mkdir(emptyHome);
});
after(() => rm(scratch, { recursive: true, force: true }));

/** A DOCKER_CONFIG folder holding `config`. */
async function dockerConfig(config: object): Promise<string> {
  const dir = await mkdtemp(path.join(scratch, "docker-"));
  await writeFile(path.join(dir, "config.json"), JSON.stringify(config));
  return dir;
}

/**
 * A folder with `docker-credential-test`: it records the server address it is asked for in `asked`, and answers
 * registry C's with the test user (anything else: "credentials not found", as Docker's helpers say it).
 */
async function credentialHelper(): Promise<{ bin: string; asked: string }> {
  const bin = await mkdtemp(path.join(scratch, "bin-"));
  const asked = path.join(bin, "asked");
  const script = [
    "#!/bin/sh",
    '[ "$1" = get ] || exit 2',
    "read -r server",
    `printf '%s\\n' "$server" >> '${asked}'`,
    `if [ "$server" = '${new URL(REGISTRY_C ?? "http://none").host}' ]; then`,
    `  printf '{"ServerURL":"%s","Username":"${USER}","Secret":"${PASSWORD}"}' "$server"`,
    "else",
    "  echo 'credentials not found in native keychain'; exit 1",
    "fi",
    "",
  ].join("\n");
  await writeFile(path.join(bin, "docker-credential-test"), script);
  await chmod(path.join(bin, "docker-credential-test"), 0o755);
  return { bin, asked };
}

describe("OCI registry auth (registry C: token auth)", { skip: unavailable }, () => {
  const host = (): string => new URL(REGISTRY_C!).host;

  it("round trips with ASSETKIT_OCI_USERNAME/_PASSWORD, with one token request per scope set", async () => {
    const prefix = uniquePrefix();
    const oci = clientWith({ ASSETKIT_OCI_USERNAME: USER, ASSETKIT_OCI_PASSWORD: PASSWORD });
    await roundTrip(oci, `${prefix}/env`);
    // The push token (pull,push) covers every later read: one request for the whole round trip.
    assert.deepEqual(await tokenRequests(prefix), [{ method: "GET", user: USER, scopes: [`repository:${prefix}/env:pull,push`], status: 200 }]);
    // A chunked upload (POST, PATCHes, PUT on the session URL) runs on the same token.
    const chunked = clientWith({ ASSETKIT_OCI_USERNAME: USER, ASSETKIT_OCI_PASSWORD: PASSWORD }, { chunkBytes: 1000 });
    const large = Buffer.alloc(3500, "chunked");
    assert.equal(await chunked.uploadBlob(`${prefix}/env`, sha256(large), large), "uploaded");
    assert.deepEqual(await buffer(await oci.openBlob(`${prefix}/env`, sha256(large))), large);
    assert.equal((await tokenRequests(prefix)).length, 2, "one more client, one more token");
    // Parallel requests that meet the first challenge together share one token request; another scope set is another.
    const reader = clientWith({ ASSETKIT_OCI_USERNAME: USER, ASSETKIT_OCI_PASSWORD: PASSWORD });
    await Promise.all(Array.from({ length: 6 }, () => reader.headManifest(`${prefix}/env`, "1.0.0")));
    await reader.blobExists(`${prefix}/other`, sha256(Buffer.from("x")));
    assert.deepEqual(
      (await tokenRequests(prefix)).slice(2).map((r) => r.scopes),
      [[`repository:${prefix}/env:pull`], [`repository:${prefix}/other:pull`]],
    );
  });

  it("round trips with the Docker config file's auths (user:password, and an identity token posted, never in a URL)", async () => {
    const prefix = uniquePrefix();
    const basic = await dockerConfig({ auths: { [`https://${host()}`]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString("base64") } } });
    await roundTrip(clientWith({ DOCKER_CONFIG: basic }), `${prefix}/auths`);
    const identity = await dockerConfig({ auths: { [host()]: { identitytoken: IDENTITY_TOKEN } } });
    await roundTrip(clientWith({ DOCKER_CONFIG: identity }), `${prefix}/identity`);
    assert.deepEqual(
      (await tokenRequests(prefix)).map((r) => [r.method, r.user]),
      [
        ["GET", USER],
        ["POST", USER],
      ],
    );
  });

  it("round trips with a credential helper (credHelpers, then credsStore) run from PATH with the host on stdin", async () => {
    const prefix = uniquePrefix();
    const { bin, asked } = await credentialHelper();
    const PATH = `${bin}${path.delimiter}${process.env.PATH}`;
    await roundTrip(clientWith({ PATH, DOCKER_CONFIG: await dockerConfig({ credHelpers: { [host()]: "test" } }) }), `${prefix}/helper`);
    await roundTrip(clientWith({ PATH, DOCKER_CONFIG: await dockerConfig({ credsStore: "test", auths: { [host()]: {} } }) }), `${prefix}/store`);
    assert.equal(await readFile(asked, "utf8"), `${host()}\n${host()}\n`, "asked once per client, for the registry's host");
    assert.deepEqual(
      (await tokenRequests(prefix)).map((r) => r.user),
      [USER, USER],
    );
  });

  it("a wrong password is 'auth' at once: one token request, no retry, no secret in message, cause or stack", async () => {
    const prefix = uniquePrefix();
    const wrong = "wrong-password-4711";
    const oci = clientWith({ ASSETKIT_OCI_USERNAME: USER, ASSETKIT_OCI_PASSWORD: wrong });
    const data = Buffer.from("denied");
    const err = await oci.uploadBlob(`${prefix}/denied`, sha256(data), data).then(
      () => assert.fail("uploaded with a wrong password"),
      (e: unknown) => e as StoreError,
    );
    isStoreError(
      "auth",
      /cannot write blob .*: the token service http:\/\/127\.0\.0\.1:\d+\/token refused the credentials from ASSETKIT_OCI_USERNAME\/ASSETKIT_OCI_PASSWORD \(401\)/,
    )(err);
    assert.equal(err.attempts, 1);
    assert.deepEqual(
      (await tokenRequests(prefix)).map((r) => [r.user, r.status]),
      [["(refused)", 401]],
    );
    const everything = [err.message, err.stack, String((err.cause as Error | undefined)?.stack), JSON.stringify(err), JSON.stringify(err.cause)].join("\n");
    for (const secret of [wrong, Buffer.from(`${USER}:${wrong}`).toString("base64")]) assert.ok(!everything.includes(secret), `secret in ${everything}`);
  });

  it("anonymous: reads go through the token flow, a push is refused saying how to give credentials", async () => {
    const prefix = uniquePrefix();
    const anonymous = clientWith({});
    assert.equal(await anonymous.blobExists(`${prefix}/anon`, sha256(Buffer.from("x"))), undefined);
    const data = Buffer.from("anonymous push");
    await assert.rejects(
      anonymous.uploadBlob(`${prefix}/anon`, sha256(data), data),
      isStoreError(
        "auth",
        new RegExp(`POST answered 401 UNAUTHORIZED.*access denied; no credentials for ${host()}: set ASSETKIT_OCI_USERNAME and ASSETKIT_OCI_PASSWORD`),
      ),
    );
    // The anonymous push token (pull only granted) is refused, replaced once, refused again.
    assert.deepEqual(
      (await tokenRequests(prefix)).map((r) => [r.user, r.scopes.join(" ")]),
      [
        [undefined, `repository:${prefix}/anon:pull`],
        [undefined, `repository:${prefix}/anon:pull,push`],
        [undefined, `repository:${prefix}/anon:pull,push`],
      ],
    );
  });

  it("a mount asks pull on the source repository too, in the same token", async () => {
    const prefix = uniquePrefix();
    const oci = clientWith({ ASSETKIT_OCI_USERNAME: USER, ASSETKIT_OCI_PASSWORD: PASSWORD });
    const data = Buffer.from("mounted across repositories");
    await oci.uploadBlob(`${prefix}/from`, sha256(data), data);
    assert.equal(await oci.uploadBlob(`${prefix}/to`, sha256(data), data, { mountFrom: `${prefix}/from` }), "mounted");
    assert.deepEqual(
      (await tokenRequests(prefix)).map((r) => r.scopes),
      [[`repository:${prefix}/from:pull,push`], [`repository:${prefix}/from:pull`, `repository:${prefix}/to:pull,push`]],
    );
  });

  it("a mount from a repository the credentials may not read: its token refused, asked again once, then the blob is uploaded", async () => {
    const prefix = uniquePrefix();
    const oci = clientWith({ ASSETKIT_OCI_USERNAME: USER, ASSETKIT_OCI_PASSWORD: PASSWORD });
    const data = Buffer.from("not mountable from there");
    assert.equal(await oci.blobExists(`${prefix}/to`, sha256(data)), undefined); // as a promote looks first
    assert.equal(await oci.uploadBlob(`${prefix}/to`, sha256(data), data, { mountFrom: `${prefix}/no-access/from` }), "uploaded");
    assert.deepEqual(await buffer(await oci.openBlob(`${prefix}/to`, sha256(data))), data);
    const both = [`repository:${prefix}/no-access/from:pull`, `repository:${prefix}/to:pull,push`];
    assert.deepEqual(
      (await tokenRequests(prefix)).map((r) => r.scopes),
      [[`repository:${prefix}/to:pull`], both, both, [`repository:${prefix}/to:pull,push`]],
    );
  });

  it("a cached token the registry refuses (expired early) is replaced once; refused twice, the request fails as 'auth'", async () => {
    const prefix = uniquePrefix();
    const expireNext = (n: number) => fetch(`${TOKEN_SERVER}/expire?n=${n}`, { method: "POST" }).then((r) => r.arrayBuffer());
    const missing = sha256(Buffer.from("absent"));
    const oci = clientWith({ ASSETKIT_OCI_USERNAME: USER, ASSETKIT_OCI_PASSWORD: PASSWORD });
    await oci.blobExists(`${prefix}/first`, missing); // learns the challenge: later scope sets get a token first
    await expireNext(1);
    assert.equal(await oci.blobExists(`${prefix}/renewed`, missing), undefined);
    assert.deepEqual(
      (await tokenRequests(prefix)).map((r) => r.scopes[0]),
      [`repository:${prefix}/first:pull`, `repository:${prefix}/renewed:pull`, `repository:${prefix}/renewed:pull`],
    );
    await expireNext(2);
    await assert.rejects(
      oci.blobExists(`${prefix}/refused`, missing),
      isStoreError(
        "auth",
        new RegExp(
          `HEAD answered 401.*access denied; check the credentials from ASSETKIT_OCI_USERNAME/ASSETKIT_OCI_PASSWORD and their access to repository:${prefix}/refused`,
        ),
      ),
    );
    assert.equal((await tokenRequests(prefix)).length, 5);
    // The refused token is not kept: the next request gets a new one, which the registry takes.
    assert.equal(await oci.blobExists(`${prefix}/refused`, missing), undefined);
    assert.equal((await tokenRequests(prefix)).length, 6);
  });

  it("a failing token service (5xx) is retried with the request; the failure names the token service", async () => {
    const prefix = uniquePrefix();
    const failNext = (n: number) => fetch(`${TOKEN_SERVER}/fail?n=${n}&status=503`, { method: "POST" }).then((r) => r.arrayBuffer());
    const missing = sha256(Buffer.from("absent"));
    await failNext(1);
    const oci = clientWith({ ASSETKIT_OCI_USERNAME: USER, ASSETKIT_OCI_PASSWORD: PASSWORD });
    assert.equal(await oci.blobExists(`${prefix}/retried`, missing), undefined);
    assert.deepEqual(
      (await tokenRequests(prefix)).map((r) => r.status),
      [503, 200],
    );
    await failNext(10);
    const once = new OciClient(new URL(REGISTRY_C!), {
      budget: { ...BUDGET, retries: 1 },
      credentials: ociCredentialsFor("c", { HOME: emptyHome, ASSETKIT_OCI_USERNAME: USER, ASSETKIT_OCI_PASSWORD: PASSWORD }),
    });
    await assert.rejects(
      once.blobExists(`${prefix}/failing`, missing),
      isStoreError(
        "unavailable",
        /the token service http:\/\/127\.0\.0\.1:\d+\/token: token GET answered 503 UNAVAILABLE: failing on demand.*gave up after 2 tries/,
      ),
    );
    await failNext(0);
  });
});

describe("where OCI credentials come from", () => {
  const actions = { GITHUB_ACTIONS: "true", GITHUB_TOKEN: "ghs_jobtoken0000", GITHUB_ACTOR: "octocat" };

  it("uses the job's GITHUB_TOKEN for ghcr.io only, and only in GitHub Actions", async () => {
    const home = { HOME: emptyHome };
    assert.deepEqual(await findCredentials("ghcr.io", { ...home, ...actions }), { username: "octocat", password: "ghs_jobtoken0000", source: "GITHUB_TOKEN" });
    assert.equal(await findCredentials("registry.example.com", { ...home, ...actions }), undefined);
    assert.equal(await findCredentials("ghcr.io:443", { ...home, ...actions }), undefined);
    assert.equal(await findCredentials("ghcr.io", { ...home, ...actions, GITHUB_ACTIONS: undefined }), undefined);
  });

  it("takes the environment first, then the Docker config (helper, then auths), then GITHUB_TOKEN", async () => {
    const { bin } = await credentialHelper();
    const entry = { auth: Buffer.from("docker-user:docker-pass").toString("base64") };
    const config = await dockerConfig({ auths: { "https://ghcr.io/v2/": entry, "https://index.docker.io/v1/": entry } });
    const env = { HOME: emptyHome, ...actions, DOCKER_CONFIG: config };
    assert.equal((await findCredentials("ghcr.io", env))?.source, `auths["https://ghcr.io/v2/"] in ${config}/config.json`);
    assert.equal((await findCredentials("registry-1.docker.io", env))?.source, `auths["https://index.docker.io/v1/"] in ${config}/config.json`);
    const both = { ...env, ASSETKIT_OCI_USERNAME: "u", ASSETKIT_OCI_PASSWORD: "p-from-env" };
    assert.deepEqual(await findCredentials("ghcr.io", both), { username: "u", password: "p-from-env", source: "ASSETKIT_OCI_USERNAME/ASSETKIT_OCI_PASSWORD" });
    await assert.rejects(
      findCredentials("ghcr.io", { ...env, ASSETKIT_OCI_PASSWORD: "p" }),
      isStoreError("auth", /set both ASSETKIT_OCI_USERNAME and ASSETKIT_OCI_PASSWORD/),
    );
    // A helper that knows nothing of the host: the inline entry, then the job token.
    const stored = await dockerConfig({ credsStore: "test", auths: { "ghcr.io": entry } });
    const withHelper = { ...env, PATH: `${bin}${path.delimiter}${process.env.PATH}`, DOCKER_CONFIG: stored };
    assert.equal((await findCredentials("ghcr.io", withHelper))?.source, `auths["ghcr.io"] in ${stored}/config.json`);
    const onlyStore = await dockerConfig({ credsStore: "test" });
    assert.equal((await findCredentials("ghcr.io", { ...withHelper, DOCKER_CONFIG: onlyStore }))?.source, "GITHUB_TOKEN");
  });

  it("a helper that is missing or fails is an 'auth' error naming it, never quoting its output", async () => {
    const bin = await mkdtemp(path.join(scratch, "bin-"));
    await writeFile(path.join(bin, "docker-credential-leaky"), "#!/bin/sh\necho 'Secret: helper-secret-value'; exit 3\n");
    await chmod(path.join(bin, "docker-credential-leaky"), 0o755);
    const env = { HOME: emptyHome, PATH: `${bin}${path.delimiter}${process.env.PATH}` };
    await assert.rejects(
      findCredentials("r.example", { ...env, DOCKER_CONFIG: await dockerConfig({ credHelpers: { "r.example": "leaky" } }) }),
      isStoreError("auth", (message) => {
        assert.match(message, /docker-credential-leaky \(credHelpers in .*config\.json\): docker-credential-leaky get failed \(exit code 3\)/);
        assert.doesNotMatch(message, /helper-secret-value/);
      }),
    );
    await assert.rejects(
      findCredentials("r.example", { ...env, DOCKER_CONFIG: await dockerConfig({ credsStore: "absent" }) }),
      isStoreError("auth", /docker-credential-absent get not found on PATH/),
    );
    const broken = await mkdtemp(path.join(scratch, "docker-"));
    await writeFile(path.join(broken, "config.json"), '{"auths": {"r.example": {"auth": "c2VjcmV0LXBhc3M="}');
    await assert.rejects(
      findCredentials("r.example", { ...env, DOCKER_CONFIG: broken }),
      isStoreError("auth", (message) => assert.equal(message, `cannot read the Docker credential file ${broken}/config.json: not valid JSON`)),
    );
  });

  it("sends no credentials over plain HTTP off this machine, and says so when refused", async () => {
    const auth = new RegistryAuth(new URL("http://registry.example"), async () => ({ username: "u", password: "plain-http-password", source: "test" }));
    const challenge = { headers: { "www-authenticate": 'Basic realm="registry"' } } as unknown as HttpResponse;
    assert.equal(await auth.answer(challenge, [], undefined), undefined);
    assert.equal(auth.deniedHint([]), "the credentials from test are not sent to http://registry.example (plain HTTP off this machine): use HTTPS");
    const local = new RegistryAuth(new URL("http://127.0.0.1:5000"), async () => ({ username: "u", password: "loopback-password", source: "test" }));
    assert.equal(await local.answer(challenge, [], undefined), `Basic ${Buffer.from("u:loopback-password").toString("base64")}`);
  });
});
