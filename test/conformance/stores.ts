// The conformance matrix: every Store the suites run against. A new backend is one entry here.
// Server-backed entries read the endpoints that scripts/test.ts exports after starting the servers; run
// alone without them they are skipped, and under scripts/test.ts (ASSETKIT_TEST_ALL_STORES=1) that is a failure.
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { FsStore } from "../../src/store/fs.ts";
import { inLayers, type StoreFactory } from "./factory.ts";
import { azureFactory } from "./factories/azure.ts";
import { gcsFactory } from "./factories/gcs.ts";
import { httpFactory } from "./factories/http.ts";
import { s3Factory } from "./factories/s3.ts";

export const factories: StoreFactory[] = [
  {
    name: "file",
    unavailable: () => undefined,
    async create() {
      const dir = await mkdtemp(path.join(tmpdir(), "assetkit-store-"));
      const store = inLayers(new FsStore(dir));
      return { store, seed: store, uri: `file://${dir}` };
    },
  },
  s3Factory,
  gcsFactory,
  azureFactory,
  httpFactory,
];

export { skipReason } from "./factory.ts";
