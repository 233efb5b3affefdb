// The read-only HTTP store in the conformance matrix: a static file server (started by scripts/test.ts) serves
// ASSETKIT_TEST_HTTP_ROOT at ASSETKIT_TEST_HTTP_URL; each store is a fresh subdirectory, seeded through FsStore.
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { FsStore } from "../../../src/store/fs.ts";
import { openHttpStore } from "../../../src/store/http.ts";
import { inLayers, uniquePrefix, type StoreFactory } from "../factory.ts";

export const httpFactory: StoreFactory = {
  name: "http",
  unavailable() {
    if (!process.env.ASSETKIT_TEST_HTTP_URL) return "ASSETKIT_TEST_HTTP_URL is not set (no static HTTP server)";
    if (!process.env.ASSETKIT_TEST_HTTP_ROOT) return "ASSETKIT_TEST_HTTP_ROOT is not set (the directory the HTTP server serves)";
    return undefined;
  },
  async create() {
    const root = process.env.ASSETKIT_TEST_HTTP_ROOT!;
    const sub = uniquePrefix();
    await mkdir(path.join(root, sub), { recursive: true });
    const uri = `${process.env.ASSETKIT_TEST_HTTP_URL!.replace(/\/+$/, "")}/${sub}`;
    return { store: inLayers(openHttpStore(new URL(uri))), seed: inLayers(new FsStore(path.join(root, sub))), uri };
  },
  faults: {
    upstream: () => process.env.ASSETKIT_TEST_HTTP_URL!,
    // The static server checks no credentials: the URI carries some anyway (a token, user:pass) for the
    // redaction checks, and the fault suite answers 401 from the proxy.
    async open(endpoint, tuning) {
      const root = process.env.ASSETKIT_TEST_HTTP_ROOT!;
      const sub = uniquePrefix();
      await mkdir(path.join(root, sub), { recursive: true });
      const base = new URL(`${endpoint}/${sub}`);
      base.username = "reader";
      base.password = "pass-word-SECRET-1";
      base.searchParams.set("token", "tok-SECRET-2");
      return {
        store: inLayers(openHttpStore(base), tuning),
        seed: inLayers(new FsStore(path.join(root, sub))),
        secrets: ["pass-word-SECRET-1", "tok-SECRET-2"],
      };
    },
  },
};
