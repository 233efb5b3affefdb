// The OCI layout in the layout matrix: the CNCF distribution registries scripts/test.ts starts, A (tag deletion on,
// no auth: ASSETKIT_TEST_OCI_A) and C (deletion off, token auth: ASSETKIT_TEST_OCI_C, _C_USER, _C_PASSWORD). Each
// created layout is a fresh namespace with `?settle=0`: one registry instance lists a tag as soon as it has written
// it (docs/oci.md §5.3), and no case here is about settling. Files are damaged in the registry's own storage
// (ASSETKIT_TEST_OCI_<X>_ROOT), as a flipped bit on its disk would.
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { configBlob, layerTitle, MANIFEST_MEDIA_TYPE, manifestBytes, parseManifest, sha256Digest, TITLE } from "../../../src/registry/oci/artifact.ts";
import type { AssetMetaDocument } from "../../../src/registry/manifest.ts";
import { OciLayout } from "../../../src/registry/oci/oci-layout.ts";
import type { OciClient } from "../../../src/store/oci/client.ts";
import { openOciClient, parseOciUri, type OciLocation } from "../../../src/store/oci/open.ts";
import type { Tuning } from "../../../src/store/tuning.ts";
import { TEST_SETTINGS, TEST_TUNING } from "../../helpers/settings.ts";
import { uniquePrefix } from "../factory.ts";
import type { LayoutFactory, LayoutUnderTest } from "../layouts.ts";

function ociLayout(location: OciLocation, tuning: Tuning, env: NodeJS.ProcessEnv): OciLayout {
  return new OciLayout(openOciClient(location, tuning, env), location, { versioning: "semver", settings: TEST_SETTINGS });
}

/** The hooks of a namespace, through `client` and the registry's storage under `root`. */
function hooks(client: OciClient, location: OciLocation, root: string): Omit<LayoutUnderTest, "open" | "openWriter"> {
  const repo = (name: string) => `${location.namespace}/${name}`;
  return {
    oci: { client, repository: repo },
    async damage(name, version, relPath, bytes) {
      const got = await client.getManifest(repo(name), version);
      const layer = parseManifest(got!.data, `${name}:${version}`).layers.find((l) => l.annotations?.[TITLE] === layerTitle(name, relPath));
      const hex = layer!.digest.slice("sha256:".length);
      const blob = path.join(root, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
      if ((await readFile(blob)).length !== bytes.length) throw new Error(`damage ${name}:${version}/${relPath} with as many bytes`);
      await writeFile(blob, bytes);
    },
    async plant(name, versions) {
      // Uploaded without a HEAD first: a planted version's blobs are its own (an upload of a held blob is harmless).
      const upload = async (data: Buffer) => {
        const digest = sha256Digest(data);
        await client.uploadBlob(repo(name), digest, data);
        return digest;
      };
      for (let i = 0; i < versions.length; i += 50) {
        await Promise.all(
          versions.slice(i, i + 50).map(async (v) => {
            const layers = await Promise.all(
              Object.entries(v.files).map(async ([rel, data]) => ({ path: rel, size: data.length, digest: await upload(data) })),
            );
            const meta = v.meta as AssetMetaDocument;
            const config = configBlob(name, meta, layers);
            await upload(config);
            await client.putManifest(repo(name), v.version, manifestBytes(name, meta, config, layers, {}), MANIFEST_MEDIA_TYPE);
          }),
        );
      }
    },
    async snapshot(name) {
      const lines: string[] = [];
      for await (const tag of client.listTags(repo(name))) lines.push(`${tag} ${(await client.headManifest(repo(name), tag))?.digest}`);
      return lines.sort();
    },
  };
}

function ociRegistry(which: "A" | "C"): LayoutFactory {
  const origin = () => process.env[`ASSETKIT_TEST_OCI_${which}`]!;
  const root = () => process.env[`ASSETKIT_TEST_OCI_${which}_ROOT`]!;
  const auth = which === "C";
  const credentials = (password = process.env.ASSETKIT_TEST_OCI_C_PASSWORD!): NodeJS.ProcessEnv =>
    auth ? { ASSETKIT_OCI_USERNAME: process.env.ASSETKIT_TEST_OCI_C_USER!, ASSETKIT_OCI_PASSWORD: password } : {};
  const namespaceOn = (host: string) => parseOciUri(`oci://${host}/${uniquePrefix()}?settle=0`);
  return {
    name: auth ? "oci (registry C, token auth, no deletes)" : "oci (registry A)",
    layout: "oci",
    unavailable() {
      if (!process.env[`ASSETKIT_TEST_OCI_${which}`] || !process.env[`ASSETKIT_TEST_OCI_${which}_ROOT`])
        return `ASSETKIT_TEST_OCI_${which}(_ROOT) is not set (no OCI registry ${which})`;
      if (auth && (!process.env.ASSETKIT_TEST_OCI_C_USER || !process.env.ASSETKIT_TEST_OCI_C_PASSWORD)) return "ASSETKIT_TEST_OCI_C_USER/_PASSWORD are not set";
      return undefined;
    },
    async create() {
      const location = namespaceOn(new URL(origin()).host);
      const open = () => ociLayout(location, TEST_TUNING, credentials());
      return { open, openWriter: open, ...hooks(openOciClient(location, TEST_TUNING, credentials()), location, root()) };
    },
    faults: {
      layout: "oci",
      upstream: origin,
      checksCredentials: auth,
      open(endpoint, tuning, how = {}) {
        const direct = namespaceOn(new URL(origin()).host);
        const proxied = parseOciUri(`oci://${new URL(endpoint).host}/${direct.namespace}?settle=0`);
        const password = how.badCredentials ? "not-the-password-SECRET" : process.env.ASSETKIT_TEST_OCI_C_PASSWORD!;
        return {
          reader: () => ociLayout(proxied, tuning, credentials(password)),
          writer: ociLayout(direct, TEST_TUNING, credentials()),
          secrets: auth ? [password] : [],
        };
      },
    },
  };
}

export const ociRegistryA = ociRegistry("A");
export const ociRegistryC = ociRegistry("C");
