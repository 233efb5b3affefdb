// Azure Blob (Azurite in tests) in the conformance matrix: scripts/test.ts starts Azurite and exports its
// connection string and a container; each store is a fresh prefix in that container.
import { BlobServiceClient } from "@azure/storage-blob";
import { openAzureStore } from "../../../src/store/azure.ts";
import { inLayers, uniquePrefix, type StoreFactory } from "../factory.ts";
import { TEST_TUNING } from "../../helpers/settings.ts";

let ready: Promise<unknown> | undefined;

/** Creates the test container once per process (Azurite starts empty). */
function ensureContainer(connectionString: string, container: string): Promise<unknown> {
  ready ??= BlobServiceClient.fromConnectionString(connectionString).getContainerClient(container).createIfNotExists();
  return ready;
}

export const azureFactory: StoreFactory = {
  name: "azure",
  unavailable() {
    if (!process.env.ASSETKIT_TEST_AZURE_CONNECTION_STRING) return "ASSETKIT_TEST_AZURE_CONNECTION_STRING is not set (no Azurite)";
    return undefined;
  },
  async create() {
    const connectionString = process.env.ASSETKIT_TEST_AZURE_CONNECTION_STRING!;
    const container = process.env.ASSETKIT_TEST_AZURE_CONTAINER || "assetkit-test";
    await ensureContainer(connectionString, container);
    // The URI a user would pass with AZURE_STORAGE_CONNECTION_STRING set to the same connection string.
    const uri = `az://${container}/${uniquePrefix()}`;
    const store = inLayers(openAzureStore(new URL(uri), { tuning: TEST_TUNING, env: { AZURE_STORAGE_CONNECTION_STRING: connectionString } }));
    return { store, seed: store, uri };
  },
  faults: {
    upstream: () => new URL(blobEndpoint()).origin,
    async open(endpoint, tuning, how = {}) {
      const connectionString = process.env.ASSETKIT_TEST_AZURE_CONNECTION_STRING!;
      const container = process.env.ASSETKIT_TEST_AZURE_CONTAINER || "assetkit-test";
      await ensureContainer(connectionString, container);
      const key = /AccountKey=([^;]+)/.exec(connectionString)?.[1] ?? "";
      const wrongKey = Buffer.from("not the account key, but as long as one").toString("base64");
      let proxied = connectionString.replace(/BlobEndpoint=[^;]+/, `BlobEndpoint=${endpoint}${new URL(blobEndpoint()).pathname}`);
      if (how.badCredentials) proxied = proxied.replace(/AccountKey=[^;]+/, `AccountKey=${wrongKey}`);
      const uri = `az://${how.bucket ?? container}/${uniquePrefix()}`;
      const store = inLayers(openAzureStore(new URL(uri), { tuning, env: { AZURE_STORAGE_CONNECTION_STRING: proxied } }), tuning);
      const seed = inLayers(openAzureStore(new URL(uri), { tuning: TEST_TUNING, env: { AZURE_STORAGE_CONNECTION_STRING: connectionString } }));
      return { store, seed, secrets: [key, wrongKey] };
    },
  },
};

/** Azurite's blob endpoint (origin and account path) from the test connection string. */
function blobEndpoint(): string {
  return /BlobEndpoint=([^;]+)/.exec(process.env.ASSETKIT_TEST_AZURE_CONNECTION_STRING!)![1]!;
}
