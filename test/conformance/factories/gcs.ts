// Google Cloud Storage against fake-gcs-server (or any endpoint): ASSETKIT_TEST_GCS_ENDPOINT, e.g.
// http://127.0.0.1:4443, and ASSETKIT_TEST_GCS_BUCKET (default "assetkit-test", created when missing).
import { openGcsStore } from "../../../src/store/gcs.ts";
import { inLayers, uniquePrefix, type StoreFactory } from "../factory.ts";
import { TEST_TUNING } from "../../helpers/settings.ts";

export function gcsTestEndpoint(): string | undefined {
  return process.env.ASSETKIT_TEST_GCS_ENDPOINT || undefined;
}

export function gcsTestBucket(): string {
  return process.env.ASSETKIT_TEST_GCS_BUCKET || "assetkit-test";
}

let bucketReady: Promise<void> | undefined;

/** Creates the test bucket on the emulator if it is not there yet (409 = already there). */
export function ensureGcsTestBucket(): Promise<void> {
  bucketReady ??= (async () => {
    const endpoint = gcsTestEndpoint()!.replace(/\/+$/, "");
    const res = await fetch(`${endpoint}/storage/v1/b?project=test`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: gcsTestBucket() }),
    });
    if (!res.ok && res.status !== 409) throw new Error(`cannot create bucket ${gcsTestBucket()} at ${endpoint}: HTTP ${res.status}`);
  })().catch((err: unknown) => {
    bucketReady = undefined;
    throw err;
  });
  return bucketReady;
}

export const gcsFactory: StoreFactory = {
  name: "gcs (fake-gcs-server)",
  unavailable: () => (gcsTestEndpoint() ? undefined : "ASSETKIT_TEST_GCS_ENDPOINT is not set (no fake-gcs-server)"),
  async create() {
    await ensureGcsTestBucket();
    const uri = `gs://${gcsTestBucket()}/${uniquePrefix()}?endpoint=${gcsTestEndpoint()!}`;
    const store = inLayers(openGcsStore(new URL(uri), { tuning: TEST_TUNING }));
    return { store, seed: store, uri };
  },
  faults: {
    upstream: () => gcsTestEndpoint()!,
    // fake-gcs-server checks no credentials: the fault suite answers 401 from the proxy instead.
    async open(endpoint, tuning, how = {}) {
      await ensureGcsTestBucket();
      const bucket = how.bucket ?? gcsTestBucket();
      const prefix = uniquePrefix();
      const store = inLayers(openGcsStore(new URL(`gs://${bucket}/${prefix}?endpoint=${endpoint}`), { tuning }), tuning);
      const seed = inLayers(openGcsStore(new URL(`gs://${bucket}/${prefix}?endpoint=${gcsTestEndpoint()!}`), { tuning: TEST_TUNING }));
      return { store, seed, secrets: [] };
    },
  },
};
