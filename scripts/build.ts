// Bundles the faces into dist/: index.js (the Action, run by the runner's Node 24), cli.js (bin) and
// storage-initializer.js (the second bin: KServe's storage-initializer contract).
// Backends are imported lazily, so their SDKs land in chunks that a run loads only when it uses that store.
import { build } from "esbuild";
import { rm } from "node:fs/promises";

await rm("dist", { recursive: true, force: true });
await build({
  entryPoints: { index: "src/action-main.ts", cli: "src/cli-main.ts", "storage-initializer": "src/storage-initializer-main.ts" },
  outdir: "dist",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node24",
  minify: true,
  legalComments: "none",
  chunkNames: "chunks/[name]-[hash]",
  // Bundled CommonJS dependencies call require(); ESM output has none unless we provide it.
  banner: { js: "import { createRequire as __assetkitRequire } from 'node:module'; const require = __assetkitRequire(import.meta.url);" },
  logLevel: "warning",
});
