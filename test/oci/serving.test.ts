// Serving from a registry without a cluster (docs/oci.md §9): the examples in examples/oci/ parse and name only
// fields the Kubernetes and KServe APIs have; what the image volume would mount (each layer a file named by its
// title, as CRI-O mounts artifacts and `oras pull` writes them) gives the example model's files at the documented
// paths; `sync --watch` from oci:// swaps on a channel move, polling with HEADs of the channel's manifest only.
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { readFile, readlink } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { describe, it } from "node:test";
import { parse, parseAllDocuments } from "yaml";
import { startRequestCounter } from "../../scripts/request-counter.ts";
import { goBinDir } from "../../scripts/test-servers.ts";
import { uniquePrefix } from "../conformance/factory.ts";
import { CLI, cleanEnv, runCli, scratch, writeTree } from "../helpers/cli.ts";
import { waitFor } from "../helpers/wait-for.ts";

const REGISTRY_A = process.env.ASSETKIT_TEST_OCI_A;
const unavailable = !REGISTRY_A ? "no OCI registry (ASSETKIT_TEST_OCI_A): run under node scripts/test.ts" : undefined;
if (unavailable && process.env.ASSETKIT_TEST_ALL_STORES === "1") throw new Error(unavailable);

const EXAMPLES = path.resolve("examples/oci");
/** The registry and namespace the examples name; the tests put the test registry and a fresh namespace there. */
const EXAMPLE_STORE = "ghcr.io/acme/models";
const EXAMPLE_MODEL = path.resolve("examples/sentiment");

/**
 * The fields the examples may use, by path: a subset of the APIs, each name checked against its source. `true`: a
 * leaf; a list's schema is its elements'.
 * - Pod, ObjectMeta, PodSpec, Volume/VolumeSource (`image`), ImageVolumeSource (`reference`, `pullPolicy`),
 *   Container, VolumeMount: kubernetes/api core/v1/types.go and apimachinery meta/v1/types.go (json tags), as in
 *   the API reference (kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/).
 * - InferenceService, InferenceServiceSpec (`predictor`), PredictorSpec (`model`), ModelSpec (`modelFormat`,
 *   `storageUri`), ModelFormat (`name`, `version`): kserve/kserve pkg/apis/serving/v1beta1 (json tags).
 */
interface Schema {
  [field: string]: Schema | true;
}
const METADATA: Schema = { name: true, namespace: true, labels: true, annotations: true };
const SCHEMAS: Record<string, Schema> = {
  "v1/Pod": {
    apiVersion: true,
    kind: true,
    metadata: METADATA,
    spec: {
      volumes: { name: true, image: { reference: true, pullPolicy: true } },
      containers: { name: true, image: true, command: true, args: true, volumeMounts: { name: true, mountPath: true, readOnly: true, subPath: true } },
    },
  },
  "serving.kserve.io/v1beta1/InferenceService": {
    apiVersion: true,
    kind: true,
    metadata: METADATA,
    spec: { predictor: { model: { modelFormat: { name: true, version: true }, storageUri: true, runtime: true } } },
  },
};

/** The paths in `value` that `schema` does not have (lists checked element by element). */
function unknownFields(value: unknown, schema: Schema | true, at: string): string[] {
  if (Array.isArray(value)) return value.flatMap((item, i) => unknownFields(item, schema, `${at}[${i}]`));
  if (schema === true || value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([key, child]) => {
    const sub = schema[key];
    return sub === undefined ? [`${at}.${key}`] : unknownFields(child, sub, `${at}.${key}`);
  });
}

async function example(file: string): Promise<Record<string, unknown>> {
  return parse(await readFile(path.join(EXAMPLES, file), "utf8")) as Record<string, unknown>;
}

/** A fresh namespace on registry A as a store URI and as a reference prefix; a CLI on it. */
async function namespaceOnA(): Promise<{
  repositoryPrefix: string;
  cwd: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the CLI's JSON documents, read field by field
  json: (...args: string[]) => Promise<any>;
}> {
  const host = new URL(REGISTRY_A!).host;
  const namespace = uniquePrefix();
  const store = `oci://${host}/${namespace}?settle=0`;
  const cwd = await scratch();
  const json = async (...args: string[]) => {
    const r = await runCli([...args, "--json"], { cwd, env: { ASSETKIT_STORE: store } });
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    return JSON.parse(r.stdout);
  };
  return { repositoryPrefix: `${host}/${namespace}`, cwd, json };
}

describe("examples/oci", () => {
  it("parse, and name only fields of the Kubernetes Pod and KServe InferenceService APIs", async () => {
    for (const file of ["image-volume-pod.yaml", "inference-service.yaml", "modelcar-inference-service.yaml"]) {
      const documents = parseAllDocuments(await readFile(path.join(EXAMPLES, file), "utf8"));
      assert.equal(documents.length, 1, file);
      assert.deepEqual(documents[0]!.errors, [], file);
      const manifest = documents[0]!.toJS() as { apiVersion: string; kind: string };
      const schema = SCHEMAS[`${manifest.apiVersion}/${manifest.kind}`];
      assert.ok(schema, `${file}: ${manifest.apiVersion} ${manifest.kind} is one of the kinds checked`);
      assert.deepEqual(unknownFields(manifest, schema, file.replace(/\.yaml$/, "")), [], `${file}: fields the API does not have`);
    }
  });
});

describe("serving from oci:// (registry A)", { skip: unavailable }, () => {
  it("the image volume's reference gives the published files at the documented mount paths", async () => {
    const { repositoryPrefix, cwd, json } = await namespaceOnA();
    const { version } = await json("publish", EXAMPLE_MODEL, "sentiment");
    await json("promote", `sentiment:${version}`, "production");

    const pod = (await example("image-volume-pod.yaml")) as {
      spec: { volumes: { name: string; image: { reference: string } }[]; containers: { volumeMounts: { name: string; mountPath: string }[] }[] };
    };
    const volume = pod.spec.volumes[0]!;
    const mount = pod.spec.containers[0]!.volumeMounts.find((m) => m.name === volume.name)!;
    assert.ok(volume.image.reference.startsWith(`${EXAMPLE_STORE}/`), volume.image.reference);
    const reference = volume.image.reference.replace(EXAMPLE_STORE, repositoryPrefix);
    // What the runtime mounts: every layer as a file named by its title (CRI-O; oras pull writes the same tree).
    const root = path.join(cwd, "node");
    await promisify(execFile)(path.join(goBinDir(), "oras"), ["pull", "--plain-http", "-o", path.join(root, mount.mountPath), reference]);
    for (const file of ["config.json", "vocab.txt"]) {
      assert.deepEqual(await readFile(path.join(root, mount.mountPath, file)), await readFile(path.join(EXAMPLE_MODEL, file)), `${mount.mountPath}/${file}`);
    }
  });

  it("sync --watch swaps on a channel move, polling with HEADs of the channel's manifest only; SIGTERM ends it", async () => {
    const { repositoryPrefix, cwd, json } = await namespaceOnA();
    await writeTree(cwd, { "v1/model.bin": "one", "v2/model.bin": "two" });
    await json("publish", "v1", "sentiment");
    await json("publish", "v2", "sentiment");
    await json("promote", "sentiment:1.0.0", "production");

    const counter = await startRequestCounter(REGISTRY_A!);
    let sync: ChildProcess | undefined;
    try {
      const namespace = repositoryPrefix.slice(repositoryPrefix.indexOf("/") + 1);
      const dir = path.join(cwd, "serve");
      const statusFile = path.join(cwd, "status.json");
      sync = spawn(
        process.execPath,
        [
          CLI,
          "sync",
          "sentiment:production",
          "--dir",
          dir,
          "--watch",
          "1s",
          "--status-file",
          statusFile,
          "--store",
          `oci://${new URL(counter.url).host}/${namespace}`,
        ],
        { cwd, env: cleanEnv() },
      );
      let stderr = "";
      sync.stderr!.on("data", (d) => (stderr += d));
      const served = async () => {
        const status = JSON.parse(await readFile(statusFile, "utf8").catch(() => "{}")) as { assets?: { version: string | null }[] };
        return status.assets?.[0]?.version;
      };
      await waitFor("the first version", 30_000, async () => (await served()) === "1.0.0");

      counter.reset();
      await sleep(3_500);
      const idle = counter.requests();
      assert.ok(idle.length >= 2, `polls in 3.5 s: ${idle.length}`);
      assert.deepEqual([...new Set(idle.map((r) => `${r.method} ${r.url}`))], [`HEAD /v2/${namespace}/sentiment/manifests/production`], stderr);

      await json("promote", "sentiment:1.1.0", "production");
      await waitFor("the swap to 1.1.0", 30_000, async () => (await served()) === "1.1.0");
      const link = path.join(dir, "sentiment", "current");
      assert.equal(await readlink(link), "1.1.0");
      assert.equal(await readFile(path.join(link, "model.bin"), "utf8"), "two");

      const exited = new Promise<number | null>((resolve) => sync!.once("exit", resolve));
      sync.kill("SIGTERM");
      assert.equal(await exited, 0, stderr);
    } finally {
      if (sync?.exitCode === null) sync.kill("SIGKILL");
      await counter.stop();
    }
  });
});
