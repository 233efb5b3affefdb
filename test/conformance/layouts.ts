// The layout matrix of the registry-level suites (registry.test.ts, faults.test.ts): every Store of stores.ts under
// the key-value layout (`Registry`), and the OCI layout on the test registries (factories/oci.ts). A new layout is
// one entry here. An entry makes `AssetRegistry`s, and the few hooks a case needs to act as another writer would
// (damage a stored file, plant versions, snapshot what is stored), each in its layout's own terms.
import type { AssetRegistry } from "../../src/registry/asset-registry.ts";
import { Registry } from "../../src/registry/registry.ts";
import type { OciClient } from "../../src/store/oci/client.ts";
import type { Store } from "../../src/store/store.ts";
import type { Tuning } from "../../src/store/tuning.ts";
import { TEST_SETTINGS } from "../helpers/settings.ts";
import type { FaultTarget, StoreFactory, StoreUnderTest } from "./factory.ts";
import { ociRegistryA, ociRegistryC } from "./factories/oci.ts";
import { factories } from "./stores.ts";

/** A version as another tool writes it: its meta document as given (unchecked) and its files ("" for a single file). */
export interface PlantedVersion {
  version: string;
  meta: object;
  files: Record<string, Buffer>;
}

export interface LayoutUnderTest {
  /** A fresh registry over the assets under test (read-only over plain HTTP). */
  open(): AssetRegistry;
  /** A fresh writable registry over the same assets: `open`'s, or the served folder's. */
  openWriter(): AssetRegistry;
  /** Replaces the stored bytes of one file of a version with as many others, as damage in the storage would. */
  damage(name: string, version: string, relPath: string, bytes: Buffer): Promise<void>;
  /** Writes versions as another tool would, bypassing publish and its checks; they are committed once written. */
  plant(name: string, versions: PlantedVersion[]): Promise<void>;
  /** What is stored for an asset, as sorted lines (keys and etags; tags and digests): equal lines, nothing changed. */
  snapshot(name: string): Promise<string[]>;
  /** The stores under a key-value layout, for the cases about that layout itself. */
  keyValue?: StoreUnderTest;
  /** The registry client under the OCI layout and an asset's repository, for the cases about that layout itself. */
  oci?: { client: OciClient; repository(name: string): string };
}

/** How the fault suite reaches an entry's server through a proxy. */
export type LayoutFaultTarget =
  | { layout: "key-value"; target: FaultTarget }
  | {
      layout: "oci";
      /** The registry's origin, which the fault proxy forwards to. */
      upstream(): string;
      /** Whether the registry checks credentials (else the suite answers 401 from the proxy). */
      checksCredentials: boolean;
      /**
       * A fresh namespace: fresh registries reaching the server through `endpoint` (the proxy) with `tuning` (with a
       * wrong password if `badCredentials`), and a writer over the same namespace reaching it directly. `secrets`
       * are what must never be printed.
       */
      open(endpoint: string, tuning: Tuning, how?: { badCredentials?: boolean }): { reader: () => AssetRegistry; writer: AssetRegistry; secrets: string[] };
    };

export interface LayoutFactory {
  name: string;
  layout: "key-value" | "oci";
  /** Why this entry cannot run here, or undefined when it can. */
  unavailable(): string | undefined;
  create(): Promise<LayoutUnderTest>;
  /** Undefined for an entry without a network (the folder store). */
  faults?: LayoutFaultTarget;
}

/** The key-value layout's registry over a store, as commands open it (semver for new assets). */
export function keyValueRegistry(store: Store, warn?: (message: string) => void): Registry {
  return new Registry(store, { settings: TEST_SETTINGS, versioning: "semver", ...(warn ? { warn } : {}) });
}

/** The key of a version's file in the key-value layout ("" names a single-file asset's one object). */
const fileKey = (name: string, version: string, relPath: string) => `${name}/${version}${relPath === "" ? "" : `/${relPath}`}`;

function keyValueLayout(factory: StoreFactory): LayoutFactory {
  return {
    name: factory.name,
    layout: "key-value",
    unavailable: () => factory.unavailable(),
    ...(factory.faults ? { faults: { layout: "key-value", target: factory.faults } } : {}),
    async create() {
      const kv = await factory.create();
      const { seed } = kv;
      return {
        open: () => keyValueRegistry(kv.store),
        openWriter: () => keyValueRegistry(seed),
        damage: (name, version, relPath, bytes) => seed.write(fileKey(name, version, relPath), bytes).then(() => undefined),
        async plant(name, versions) {
          for (let i = 0; i < versions.length; i += 50) {
            await Promise.all(
              versions
                .slice(i, i + 50)
                .flatMap((v) => [
                  seed.write(`${name}/${v.version}.meta`, Buffer.from(JSON.stringify(v.meta))),
                  ...Object.entries(v.files).map(([rel, data]) => seed.write(fileKey(name, v.version, rel), data)),
                ]),
            );
          }
          // As modelkit does: the index lists every version, newest first.
          const index = await seed.read(`${name}.versions`);
          const before = index ? (JSON.parse(index.data.toString()) as { versions: string[] }).versions : [];
          const versionsNow = [...versions.map((v) => v.version).reverse(), ...before];
          await seed.write(`${name}.versions`, Buffer.from(JSON.stringify({ versions: versionsNow })));
        },
        async snapshot(name) {
          const lines: string[] = [];
          for await (const o of seed.list(name)) if (o.key.startsWith(`${name}/`) || o.key.startsWith(`${name}.`)) lines.push(`${o.key} ${o.etag}`);
          return lines.sort();
        },
        keyValue: kv,
      };
    },
  };
}

export const layouts: LayoutFactory[] = [...factories.map(keyValueLayout), ociRegistryA, ociRegistryC];
