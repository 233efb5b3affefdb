// Starts the servers the store tests run against, on free 127.0.0.1 ports with data under a fresh temp dir:
// MinIO (S3), fake-gcs-server (GCS), Azurite (Azure Blob), Caddy (a static HTTP server with Range, ETag and
// Last-Modified) and three CNCF distribution registries (OCI: A with deletes, B without, for the 405 paths, and C
// without deletes and with token auth, its realm test/helpers/oci-token-server.ts). Binaries come from
// scripts/install-test-servers.sh. `startServers()` returns the env the tests
// read (ASSETKIT_TEST_*) and a stop(); `startServers(["s3"])` starts only the servers named (the benchmark needs
// MinIO alone). The servers are also killed when this process exits, is interrupted, or dies without warning (a
// watchdog process notices). Standalone: `node scripts/test-servers.ts` prints `export K=V` lines on stdout and
// runs until killed.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { makeSigningKey, TOKEN_ISSUER, TOKEN_SERVICE } from "../test/helpers/oci-token-server.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 3_000;

const S3_ACCESS_KEY = "assetkit-root-user";
const S3_SECRET_KEY = "assetkit-root-secret";
const BUCKET = "assetkit-test";
/** Azurite's well-known development account (public, documented by Microsoft). */
const AZURE_ACCOUNT = "devstoreaccount1";
const AZURE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/** Registry C's test user and identity token (its token server's; test values, not credentials). */
const OCI_C_USER = "assetkit-test-user";
const OCI_C_PASSWORD = "assetkit-test-password-c";
const OCI_C_IDENTITY_TOKEN = "assetkit-test-identity-token-c";

/** The servers startServers() can start, by the store they serve. */
export type ServerName = "s3" | "gcs" | "azure" | "http" | "oci";
const ALL_SERVERS: readonly ServerName[] = ["s3", "gcs", "azure", "http", "oci"];

export interface TestServers {
  env: Record<string, string>;
  /** Where the servers keep their data (MinIO's is `minio/` in it). */
  dir: string;
  stop(): Promise<void>;
}

interface Running {
  name: string;
  child: ChildProcess;
  log: string;
  exited: Promise<void>;
}

/** Runs scripts/install-test-servers.sh (quick when everything is installed); its log goes to stderr. */
export function installServers(): void {
  execFileSync("bash", [path.join(ROOT, "scripts/install-test-servers.sh")], { stdio: ["ignore", process.stderr, "inherit"] });
}

/** `under`: where the servers' data goes (a fresh folder in it), the system's temp dir unless given. */
export async function startServers(only: readonly ServerName[] = ALL_SERVERS, under: string = tmpdir()): Promise<TestServers> {
  const wanted = new Set(only);
  const bin = binaries(wanted);
  const dir = await mkdtemp(path.join(under, "assetkit-servers-"));
  const running: Running[] = [];
  let watchdog: ChildProcess | undefined;
  let stopped = false;

  const killAll = (signal: NodeJS.Signals): void => {
    for (const r of running) killGroup(r.child, signal);
  };
  const onExit = (): void => {
    killAll("SIGKILL");
    if (watchdog) killGroup(watchdog, "SIGKILL");
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
    } catch {
      // a server still flushing: leave the temp dir
    }
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopped) return; // a graceful stop() is under way (standalone mode's own handler)
    onExit();
    process.exit(128 + (signal === "SIGINT" ? 2 : 15));
  };
  process.on("exit", onExit);
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.off("exit", onExit);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    killAll("SIGTERM");
    const grace = setTimeout(() => killAll("SIGKILL"), STOP_GRACE_MS);
    // The children are unref'd: hold the event loop open until they are reaped (bounded, SIGKILL comes first).
    let giveUp: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(running.map((r) => r.exited)), new Promise((resolve) => (giveUp = setTimeout(resolve, STOP_GRACE_MS + 2_000)))]);
    clearTimeout(grace);
    clearTimeout(giveUp);
    if (watchdog) killGroup(watchdog, "SIGKILL");
    await rm(dir, { recursive: true, force: true });
  };

  const launch = (name: string, command: string, args: string[], env: Record<string, string> = {}): Running => {
    const log = path.join(dir, `${name}.log`);
    const fd = openSync(log, "a");
    // detached: its own process group, so stop() can kill the server and anything it spawned.
    const child = spawn(command, args, { cwd: dir, detached: true, stdio: ["ignore", fd, fd], env: { ...process.env, ...env } });
    closeSync(fd);
    child.unref();
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      child.once("exit", () => resolve());
      child.once("error", () => resolve());
    });
    const r = { name, child, log, exited };
    running.push(r);
    return r;
  };

  try {
    const [s3Port, s3ConsolePort, gcsPort, azPort, httpPort, ociAPort, ociBPort, ociCPort, tokenPort] = await freePorts(9);
    const httpRoot = path.join(dir, "http-root");
    await Promise.all([mkdir(path.join(dir, "minio")), mkdir(httpRoot), mkdir(path.join(dir, "home"))]);

    const env: Record<string, string> = {
      ASSETKIT_TEST_MODELKIT_PYTHON: bin.python,
      ASSETKIT_TEST_MODEL_SIGNING: bin.modelSigning,
      // No test may fall through the AWS credential chain to the instance metadata address (169.254.169.254).
      AWS_EC2_METADATA_DISABLED: "true",
    };
    const starting: Promise<void>[] = [];
    if (wanted.has("s3")) {
      const minio = launch(
        "minio",
        bin.minio,
        ["server", path.join(dir, "minio"), "--quiet", "--address", `127.0.0.1:${s3Port}`, "--console-address", `127.0.0.1:${s3ConsolePort}`],
        {
          MINIO_ROOT_USER: S3_ACCESS_KEY,
          MINIO_ROOT_PASSWORD: S3_SECRET_KEY,
          MINIO_BROWSER: "off",
          MINIO_UPDATE: "off",
          MINIO_CI_CD: "1",
        },
      );
      const s3Url = `http://127.0.0.1:${s3Port}`;
      starting.push(
        ready(
          minio,
          () => httpOk(`${s3Url}/minio/health/live`),
          () => createS3Bucket(s3Url),
        ),
      );
      Object.assign(env, {
        ASSETKIT_TEST_S3_ENDPOINT: s3Url,
        ASSETKIT_TEST_S3_ACCESS_KEY: S3_ACCESS_KEY,
        ASSETKIT_TEST_S3_SECRET_KEY: S3_SECRET_KEY,
        ASSETKIT_TEST_S3_BUCKET: BUCKET,
      });
    }
    if (wanted.has("gcs")) {
      const gcsUrl = `http://127.0.0.1:${gcsPort}`;
      const gcs = launch("fake-gcs-server", bin.fakeGcs, [
        "-scheme",
        "http",
        "-host",
        "127.0.0.1",
        "-port",
        String(gcsPort),
        "-backend",
        "memory",
        "-public-host",
        `127.0.0.1:${gcsPort}`,
        "-external-url",
        gcsUrl,
        "-log-level",
        "warn",
      ]);
      starting.push(
        ready(
          gcs,
          () => httpOk(`${gcsUrl}/storage/v1/b`),
          () => createGcsBucket(gcsUrl),
        ),
      );
      Object.assign(env, { ASSETKIT_TEST_GCS_ENDPOINT: gcsUrl, ASSETKIT_TEST_GCS_BUCKET: BUCKET });
    }
    if (wanted.has("azure")) {
      const azurite = launch("azurite", process.execPath, [
        bin.azurite,
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        String(azPort),
        "--inMemoryPersistence",
        "--skipApiVersionCheck",
        "--loose",
        "--disableTelemetry",
        "--silent",
      ]);
      const azureBlobUrl = `http://127.0.0.1:${azPort}/${AZURE_ACCOUNT}`;
      const azureConnection = `DefaultEndpointsProtocol=http;AccountName=${AZURE_ACCOUNT};AccountKey=${AZURE_KEY};BlobEndpoint=${azureBlobUrl};`;
      starting.push(
        ready(
          azurite,
          () => httpAnswers(azureBlobUrl),
          () => createAzureContainer(azureConnection),
        ),
      );
      Object.assign(env, { ASSETKIT_TEST_AZURE_CONNECTION_STRING: azureConnection, ASSETKIT_TEST_AZURE_CONTAINER: BUCKET });
    }
    if (wanted.has("http")) {
      const caddy = launch("caddy", bin.caddy, ["file-server", "--root", httpRoot, "--listen", `127.0.0.1:${httpPort}`, "--no-compress"], {
        HOME: path.join(dir, "home"),
        XDG_DATA_HOME: path.join(dir, "home"),
        XDG_CONFIG_HOME: path.join(dir, "home"),
      });
      starting.push(
        ready(
          caddy,
          () => httpAnswers(`http://127.0.0.1:${httpPort}/`),
          async () => {},
        ),
      );
      Object.assign(env, { ASSETKIT_TEST_HTTP_URL: `http://127.0.0.1:${httpPort}`, ASSETKIT_TEST_HTTP_ROOT: httpRoot });
    }
    if (wanted.has("oci")) {
      // A: deletes enabled; B: deletes disabled (DELETE answers 405, as on ghcr.io); C: as B, with token auth.
      const tokenUrl = `http://127.0.0.1:${tokenPort}`;
      const { privateKey, jwks } = makeSigningKey();
      const [keyFile, jwksFile] = [path.join(dir, "oci-token-key.pem"), path.join(dir, "oci-token-jwks.json")];
      await Promise.all([writeFile(keyFile, privateKey, { mode: 0o600 }), writeFile(jwksFile, jwks)]);
      const tokenServer = launch("oci-token-server", process.execPath, [
        path.join(ROOT, "test/helpers/oci-token-server.ts"),
        "--port",
        String(tokenPort),
        "--key",
        keyFile,
        "--user",
        `${OCI_C_USER}:${OCI_C_PASSWORD}`,
        "--refresh-token",
        `${OCI_C_IDENTITY_TOKEN}:${OCI_C_USER}`,
      ]);
      starting.push(
        ready(
          tokenServer,
          () => httpOk(`${tokenUrl}/requests`),
          async () => {},
        ),
      );
      Object.assign(env, {
        ASSETKIT_TEST_OCI_C_TOKEN_SERVER: tokenUrl,
        ASSETKIT_TEST_OCI_C_USER: OCI_C_USER,
        ASSETKIT_TEST_OCI_C_PASSWORD: OCI_C_PASSWORD,
        ASSETKIT_TEST_OCI_C_IDENTITY_TOKEN: OCI_C_IDENTITY_TOKEN,
      });
      for (const [name, port, deletes, tokenAuth] of [
        ["A", ociAPort!, true, undefined],
        ["B", ociBPort!, false, undefined],
        ["C", ociCPort!, false, { realm: `${tokenUrl}/token`, jwks: jwksFile }],
      ] as const) {
        const config = path.join(dir, `oci-${name}.yml`);
        await writeFile(config, registryConfig(path.join(dir, `oci-${name}`), port, deletes, tokenAuth));
        const registry = launch(`registry-${name}`, bin.registry, ["serve", config]);
        const url = `http://127.0.0.1:${port}`;
        starting.push(
          ready(
            registry,
            () => (tokenAuth ? httpAnswers(`${url}/v2/`) : httpOk(`${url}/v2/`)),
            async () => {},
          ),
        );
        env[`ASSETKIT_TEST_OCI_${name}`] = url;
        // Its storage folder: tests damage a blob's bytes there (…/docker/registry/v2/blobs/sha256/<ab>/<hex>/data).
        env[`ASSETKIT_TEST_OCI_${name}_ROOT`] = path.join(dir, `oci-${name}`);
      }
    }
    watchdog = startWatchdog(
      dir,
      running.map((r) => r.child.pid).filter((pid): pid is number => pid !== undefined),
    );
    await Promise.all(starting);
    return { env, dir, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Where `go install` puts binaries: $GOBIN, else the first $GOPATH's bin. */
export function goBinDir(): string {
  const [gobin = "", gopath = ""] = execFileSync("go", ["env", "GOBIN", "GOPATH"], { encoding: "utf8" }).split("\n");
  return gobin || path.join(gopath.split(path.delimiter)[0] || path.join(process.env.HOME ?? "/root", "go"), "bin");
}

/** Where the binaries are; those of the wanted servers (and modelkit's python, model_signing's CLI) must exist. */
function binaries(wanted: ReadonlySet<ServerName>): {
  minio: string;
  fakeGcs: string;
  caddy: string;
  registry: string;
  azurite: string;
  python: string;
  modelSigning: string;
} {
  const goDir = goBinDir();
  const found = {
    minio: path.join(goDir, "minio"),
    fakeGcs: path.join(goDir, "fake-gcs-server"),
    caddy: path.join(goDir, "caddy"),
    registry: path.join(goDir, "registry"),
    azurite: path.join(ROOT, "node_modules/.bin/azurite-blob"),
    python: path.join(ROOT, ".test-servers/venv/bin/python"),
    modelSigning: path.join(ROOT, ".test-servers/venv-signing/bin/model_signing"),
  };
  const needed = [
    wanted.has("s3") && found.minio,
    wanted.has("gcs") && found.fakeGcs,
    wanted.has("http") && found.caddy,
    wanted.has("oci") && found.registry,
    wanted.has("azure") && found.azurite,
    found.python,
    found.modelSigning,
  ];
  const missing = needed.filter((file): file is string => file !== false && !existsSync(file));
  if (missing.length) {
    throw new Error(`test servers not installed (${missing.join(", ")} missing): run 'bash scripts/install-test-servers.sh'`);
  }
  return { ...found, azurite: wanted.has("azure") ? realpathSync(found.azurite) : found.azurite };
}

/** Asks the OS for `n` distinct free loopback ports (all held open at once, so none repeats). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<import("node:net").Server>((resolve, reject) => {
          const server = createServer();
          server.once("error", reject);
          server.listen(0, "127.0.0.1", () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as import("node:net").AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** Waits until `healthy()` holds, then runs `setup()`; fails fast if the server exits, or after a bounded wait. */
async function ready(server: Running, healthy: () => Promise<boolean>, setup: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let died = false;
  void server.exited.then(() => (died = true));
  let lastError: unknown;
  for (;;) {
    if (died) throw startFailure(server, `exited during startup (${exitStatus(server.child)})`);
    if (await healthy()) {
      try {
        await setup();
        return;
      } catch (err) {
        lastError = err; // e.g. MinIO answers health before it accepts S3 calls: retry until the deadline
      }
    }
    if (Date.now() > deadline) {
      const why = lastError ? `: ${(lastError as Error).message}` : "";
      throw startFailure(server, `not ready after ${START_TIMEOUT_MS / 1000} s${why}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function startFailure(server: Running, what: string): Error {
  let tail = "";
  try {
    tail = readFileSync(server.log, "utf8").split("\n").slice(-20).join("\n").trim();
  } catch {
    // no log
  }
  return new Error(`test server ${server.name} ${what}; last lines of its log (${server.log}):\n${tail || "(empty)"}`);
}

function exitStatus(child: ChildProcess): string {
  return child.signalCode ? `signal ${child.signalCode}` : `exit code ${child.exitCode ?? "?"}`;
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

/** Any HTTP answer (even 4xx) means the server is up. */
async function httpAnswers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

/**
 * A distribution registry's configuration: filesystem storage under `root`, quiet logs; no auth, or token auth
 * trusting the tokens of test/helpers/oci-token-server.ts (its issuer and service, its key in the JWKS file).
 */
function registryConfig(root: string, port: number, deletes: boolean, tokenAuth?: { realm: string; jwks: string }): string {
  const auth = tokenAuth
    ? [
        "auth:",
        "  token:",
        `    realm: ${JSON.stringify(tokenAuth.realm)}`,
        `    service: ${TOKEN_SERVICE}`,
        `    issuer: ${TOKEN_ISSUER}`,
        `    jwks: ${JSON.stringify(tokenAuth.jwks)}`,
      ]
    : [];
  return [
    ...auth,
    "version: 0.1",
    "log:",
    "  level: warn",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${JSON.stringify(root)}`,
    "  delete:",
    `    enabled: ${deletes}`,
    "http:",
    `  addr: 127.0.0.1:${port}`,
    // Fixed, so upload session state signed by one start stays valid; a test secret, not a credential.
    "  secret: assetkit-test-registry",
    "",
  ].join("\n");
}

async function createS3Bucket(endpoint: string): Promise<void> {
  const { S3Client, CreateBucketCommand } = await import("@aws-sdk/client-s3");
  const client = new S3Client({
    endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: S3_ACCESS_KEY, secretAccessKey: S3_SECRET_KEY },
    maxAttempts: 1,
  });
  try {
    await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  } catch (err) {
    if ((err as Error).name !== "BucketAlreadyOwnedByYou") throw err;
  } finally {
    client.destroy();
  }
}

async function createGcsBucket(endpoint: string): Promise<void> {
  const res = await fetch(`${endpoint}/storage/v1/b?project=test`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: BUCKET }),
    signal: AbortSignal.timeout(5000),
  });
  const body = await res.text();
  if (!res.ok && res.status !== 409) throw new Error(`create bucket: HTTP ${res.status} ${body.slice(0, 200)}`);
}

async function createAzureContainer(connection: string): Promise<void> {
  const { BlobServiceClient } = await import("@azure/storage-blob");
  await BlobServiceClient.fromConnectionString(connection).getContainerClient(BUCKET).createIfNotExists();
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/**
 * A detached process that kills the servers' process groups when this process disappears without running its
 * exit handlers (SIGKILL, OOM): no orphaned servers holding ports after a crashed test run.
 */
function startWatchdog(dir: string, pgids: number[]): ChildProcess {
  const code = `
    const [dir, parent, ...groups] = process.argv.slice(1);
    const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };
    const timer = setInterval(() => {
      if (alive(Number(parent))) return;
      clearInterval(timer);
      for (const g of groups) { try { process.kill(-Number(g), "SIGKILL"); } catch {} }
      setTimeout(() => {
        try { require("node:fs").rmSync(dir, { recursive: true, force: true, maxRetries: 3 }); } catch {}
        process.exit(0);
      }, 300);
    }, 500);
  `;
  const args = ["-e", code, dir, String(process.pid), ...pgids.map(String)];
  const child = spawn(process.execPath, args, { detached: true, stdio: "ignore" });
  child.unref();
  return child;
}

function shellQuote(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

async function main(): Promise<void> {
  installServers();
  const t0 = Date.now();
  const servers = await startServers();
  for (const [key, value] of Object.entries(servers.env)) process.stdout.write(`export ${key}=${shellQuote(value)}\n`);
  process.stderr.write(`test servers ready in ${Date.now() - t0} ms; Ctrl-C (or kill ${process.pid}) stops them\n`);
  const keepAlive = setInterval(() => {}, 1 << 30);
  const shutdown = (): void => {
    clearInterval(keepAlive);
    void servers.stop().then(() => process.exit(0));
  };
  // Run before startServers' handlers (which kill at once and exit): stop() marks the servers stopping, so
  // those step aside, and the servers get SIGTERM and a grace period.
  process.prependOnceListener("SIGINT", shutdown);
  process.prependOnceListener("SIGTERM", shutdown);
}

const isMain = (import.meta as { main?: boolean }).main ?? process.argv[1] === fileURLToPath(import.meta.url);
if (isMain) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  });
}
