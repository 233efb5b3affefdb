// Bundles the faces into dist/: index.js (the Action, run by the runner's Node 24), cli.js (bin) and
// storage-initializer.js (the second bin: KServe's storage-initializer contract), plus hash-worker.js (the hash
// pool's worker) and native/ (the BLAKE3 addon of every runner platform: the Action runs dist/ without an install).
// Backends are imported lazily, so their SDKs land in chunks that a run loads only when it uses that store.
import { build, type Plugin } from "esbuild";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { extract } from "tar-stream";

/**
 * @napi-rs/blake-hash's platform packages, pinned to one version and to the registry's integrity of each tarball
 * (`npm view @napi-rs/blake-hash-<platform>@1.3.4 dist.integrity`), so every build ships the same bytes. The
 * platforms of GitHub's runners (glibc Linux, macOS, Windows; x64 and arm64); the Docker image is Debian-based.
 */
const BLAKE_VERSION = "1.3.4";
const BLAKE_PLATFORMS: Record<string, string> = {
  "linux-x64-gnu": "sha512-SqMu5/KKtnTmSQ5NueJDugdE6U70mPEYrlcgzyMCnubOy5O2NeJo7brAo/KGM1b9ySPAyFLdZqmZxFcd/QfuXQ==",
  "linux-arm64-gnu": "sha512-7HV+HPtByIleTPyh3idXtzlot9BWzJDrfbzsLgv6TYvfmQS6cXNgXNJkgNRtUt4HrSmQw1e361u2HmXp4ToPIA==",
  "darwin-x64": "sha512-8mDkt9Tt5fpgpXq8KTp3CtFn/emx3bC2M1DWLcTsrLI3NCM+nzaCvrUlO/e7GyebPFIZqQDUGaHJ/QattpQ92g==",
  "darwin-arm64": "sha512-03iiCw/gOJc8sRX5B4RwQE+q+riN9uVqn7VBRT1fUM6Ipi6v4MQQq5rqmk9fNw5IQ2cy3pd2EknwHdDERZLZNg==",
  "win32-x64-msvc": "sha512-NR/T+zhX0YdVZaQnTQ6QDQoa8NlFyTY+fp9HqggL/VMWF9Ci8e3Qz8FQk74gJyJp0U768q96wpRre7cA0yGkCA==",
  "win32-arm64-msvc": "sha512-Kaj9LBzxWmkKYoHzt7TqXBgWBvZHUduvGcONz5t7UAY4Qj/m7QCCoM5pAh8qY0uNKAK+ZBapg+BANW349QH2mQ==",
};
/** Downloaded tarballs, kept between builds. */
const CACHE = "node_modules/.cache/assetkit-native";

/**
 * `node:http` through require(), not as an ES module. Node 24's http exports WebSocket, MessageEvent and others as
 * lazy getters backed by undici; the namespace an ES import of a builtin gets reads every export, which loads undici
 * at every start: `node --input-type=module -e 'import "node:http"'` spent 0.18 s of user CPU against 0.02 s for
 * `require("node:http")` (Node 24.21, this project's VM). Required, the getters stay lazy. The banner below defines
 * the require() that esbuild's output calls.
 */
const httpThroughRequire: Plugin = {
  name: "http-through-require",
  setup(on) {
    on.onResolve({ filter: /^(node:)?http$/ }, ({ namespace }) =>
      namespace === "http-through-require" ? { path: "node:http", external: true } : { path: "node:http", namespace: "http-through-require" },
    );
    on.onLoad({ filter: /.*/, namespace: "http-through-require" }, () => ({ contents: 'module.exports = require("node:http");', loader: "js" }));
  },
};

await rm("dist", { recursive: true, force: true });
await build({
  entryPoints: {
    index: "src/faces/action-main.ts",
    cli: "src/faces/cli-main.ts",
    "storage-initializer": "src/faces/storage-initializer-main.ts",
    "hash-worker": "src/hashing/worker.ts",
  },
  outdir: "dist",
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  // ESM builds first (esbuild's default for node is "main": the CommonJS one): the AWS SDK's ES modules tree-shake
  // to the commands we send, where its CommonJS bundle is one module of every S3 command, evaluated at each start.
  mainFields: ["module", "main"],
  target: "node24",
  minify: true,
  legalComments: "none",
  // src/hashing/bundle-files.ts finds dist/ from a chunk by this folder's name.
  chunkNames: "chunks/[name]-[hash]",
  // Node's own AbortController for the polyfill some SDKs import (scripts/shims/abort-controller.ts says why).
  alias: { "abort-controller": "./scripts/shims/abort-controller.ts" },
  // Bundled CommonJS dependencies call require(); ESM output has none unless we provide it.
  banner: { js: "import { createRequire as __assetkitRequire } from 'node:module'; const require = __assetkitRequire(import.meta.url);" },
  plugins: [httpThroughRequire],
  logLevel: "warning",
});

await mkdir("dist/native", { recursive: true });
for (const [platform, integrity] of Object.entries(BLAKE_PLATFORMS)) {
  const file = `blake.${platform}.node`;
  await writeFile(path.join("dist/native", file), await fileFromTarball(await tarball(`@napi-rs/blake-hash-${platform}`, integrity), `package/${file}`));
}

/** The package's tarball at BLAKE_VERSION, from the cache or fetched by `npm pack`, refused unless it has `integrity`. */
async function tarball(name: string, integrity: string): Promise<Buffer> {
  const cached = path.join(CACHE, `${name.replace("@", "").replace("/", "-")}-${BLAKE_VERSION}.tgz`);
  const matches = (data: Buffer): boolean => `sha512-${createHash("sha512").update(data).digest("base64")}` === integrity;
  const hit = await readFile(cached).catch(() => undefined);
  if (hit && matches(hit)) return hit;
  await mkdir(CACHE, { recursive: true });
  const [packed] = JSON.parse(
    execFileSync("npm", ["pack", `${name}@${BLAKE_VERSION}`, "--json", "--pack-destination", CACHE], {
      encoding: "utf8",
      shell: process.platform === "win32",
    }),
  ) as { filename: string }[];
  const data = await readFile(path.join(CACHE, packed!.filename));
  if (!matches(data)) throw new Error(`${name}@${BLAKE_VERSION}: the registry's tarball does not have the pinned integrity ${integrity}`);
  await writeFile(cached, data);
  return data;
}

/** One file's bytes out of a .tgz. */
async function fileFromTarball(tgz: Buffer, wanted: string): Promise<Buffer> {
  const entries = extract();
  Readable.from([tgz]).pipe(createGunzip()).pipe(entries);
  let found: Buffer | undefined;
  for await (const entry of entries) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    if (entry.header.name === wanted) found = Buffer.concat(chunks);
  }
  if (!found) throw new Error(`no ${wanted} in the tarball`);
  return found;
}
