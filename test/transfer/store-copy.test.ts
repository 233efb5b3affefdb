// Store → store copies on real servers: server-side between two stores of one backend, streamed and verified
// between backends; a wrong byte leaves nothing at the destination, whole or in parallel multipart parts.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { describe, it } from "node:test";
import { copyObject } from "../../src/transfer/store-copy.ts";
import type { Store } from "../../src/store/store.ts";
import { factories, skipReason } from "../conformance/stores.ts";
import type { StoreFactory } from "../conformance/factory.ts";
import { TEST_SETTINGS } from "../helpers/settings.ts";

const byName = (prefix: string): StoreFactory => factories.find((f) => f.name.startsWith(prefix))!;
const sha = (data: Buffer): string => createHash("sha256").update(data).digest("hex");

async function content(store: Store, key: string): Promise<Buffer> {
  return buffer(await store.openRead(key));
}

/** A store whose reads of one key come back with one byte flipped (a corrupted source object); not of any backend. */
function flipping(store: Store, key: string, at: number): Store {
  return {
    url: store.url,
    writable: false,
    listable: false,
    head: (k) => store.head(k),
    read: (k) => store.read(k),
    list: (p) => store.list(p),
    write: () => Promise.reject(new Error("read-only")),
    copy: () => Promise.reject(new Error("read-only")),
    delete: () => Promise.reject(new Error("read-only")),
    async openRead(k, range) {
      const data = await buffer(await store.openRead(k, range));
      const offset = at - (range?.start ?? 0);
      if (k === key && offset >= 0 && offset < data.length) data[offset]! ^= 0xff;
      // Several chunks, so the flipped one is not the last the destination receives.
      return Readable.from(Array.from({ length: Math.ceil(data.length / 65536) }, (_, i) => data.subarray(i * 65536, (i + 1) * 65536)));
    },
  };
}

const pairs: [string, string, "server" | "streamed"][] = [
  ["file", "file", "server"],
  ["file", "s3", "streamed"],
  ["s3", "s3", "server"],
  ["s3", "gcs", "streamed"],
  ["gcs", "gcs", "server"],
  ["gcs", "azure", "streamed"],
  ["azure", "azure", "server"],
  ["azure", "file", "streamed"],
];

for (const [fromName, toName, how] of pairs) {
  const from = byName(fromName);
  const to = byName(toName);
  describe(`copy ${from.name} → ${to.name}`, { skip: skipReason(from) ?? skipReason(to) }, () => {
    it(`copies ${how === "server" ? "server-side" : "streamed and verified"}; a flipped byte leaves nothing`, async () => {
      const source = (await from.create()).seed;
      const dest = (await to.create()).seed;
      // Over S3's multipart threshold: uploaded as parallel ranged parts when the destination is S3.
      const big = randomBytes(20 * 1024 * 1024 + 123);
      const small = Buffer.from("small object\n");
      await source.write("a/big.bin", { file: await tempFile(big), size: big.length });
      await source.write("a/small.txt", small);

      const outcome = await copyObject(source, "a/big.bin", dest, "b/big.bin", { size: big.length, sha256: sha(big) }, { settings: TEST_SETTINGS });
      assert.deepEqual(outcome, { how, bytes: big.length });
      assert.ok((await content(dest, "b/big.bin")).equals(big));
      assert.equal((await copyObject(source, "a/small.txt", dest, "b/small.txt", { sha256: sha(small) }, { settings: TEST_SETTINGS })).bytes, small.length);
      assert.ok((await content(dest, "b/small.txt")).equals(small));

      // Streamed copies only (a server-side copy never passes bytes through us): a corrupted source fails.
      for (const [key, data] of [
        ["a/big.bin", big],
        ["a/small.txt", small],
      ] as const) {
        const corrupt = flipping(source, key, Math.floor(data.length / 3));
        await assert.rejects(
          copyObject(corrupt, key, dest, `c/${key}`, { size: data.length, sha256: sha(data) }, { settings: TEST_SETTINGS }),
          (err: Error) => /integrity check failed/.test(err.message) && err.message.includes(sha(data)),
        );
        assert.equal(await dest.head(`c/${key}`), undefined, `nothing at c/${key}`);
      }
      // A source shorter than expected fails too.
      await assert.rejects(
        copyObject(source, "a/small.txt", dest, "c/short", { size: small.length + 5 }, { settings: TEST_SETTINGS }),
        /integrity check failed/,
      );
      assert.equal(await dest.head("c/short"), undefined);
    });
  });
}

async function tempFile(data: Buffer): Promise<string> {
  const { mkdtemp, writeFile } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const path = await import("node:path");
  const file = path.join(await mkdtemp(path.join(tmpdir(), "assetkit-copy-")), "data");
  await writeFile(file, data);
  return file;
}
