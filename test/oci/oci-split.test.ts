// Files over `?max-blob=` (docs/oci.md §4), without a registry: the URI parameter and its documented default, part
// ranges and titles, a file named like another's part refused before any request, and reads across parts (ranges
// spanning part boundaries; a part read whole checked against its digest); on registry A, a file's parts uploaded
// at once within ASSETKIT_CONCURRENCY (publish and promote --to). Round trips against real registries are in
// oci-store.test.ts and oci-promote.test.ts.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { buffer } from "node:stream/consumers";
import { describe, it } from "node:test";
import { UsageError } from "../../src/base/errors.ts";
import { partTitle, partTitleClash } from "../../src/registry/oci/artifact.ts";
import { openParts, splitRanges, rangeDigests, type StoredFile } from "../../src/registry/oci/split.ts";
import { parseOciUri } from "../../src/store/oci/open.ts";
import { uniquePrefix } from "../conformance/factory.ts";
import { runCli, scratch, writeTree } from "../helpers/cli.ts";
import { FaultProxy } from "../helpers/fault-proxy.ts";
import { waitFor } from "../helpers/wait-for.ts";

const MiB = 1024 * 1024;
const REGISTRY_A = process.env.ASSETKIT_TEST_OCI_A;
const digestOf = (data: Buffer) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

describe("max-blob", () => {
  it("is ghcr.io's documented 10 GB by default, none elsewhere, a size when given, at least 1MiB", () => {
    assert.equal(parseOciUri("oci://ghcr.io/acme/models").maxBlobBytes, 10_000_000_000);
    assert.equal(parseOciUri("oci://ghcr.io/acme/models?max-blob=2GiB").maxBlobBytes, 2 * 1024 * MiB);
    assert.equal(parseOciUri("oci://registry.example.com/ml").maxBlobBytes, undefined);
    assert.equal(parseOciUri("oci://localhost:5000/ml?max-blob=500MB").maxBlobBytes, 500_000_000);
    assert.throws(
      () => parseOciUri("oci://localhost:5000/ml?max-blob=4KiB"),
      (err: Error) => err instanceof UsageError && /max-blob is at least 1MiB/.test(err.message),
    );
    assert.throws(() => parseOciUri("oci://localhost:5000/ml?max-blob=big"), UsageError);
  });

  it("splits only what is over it, into full parts and a rest, titled in order", () => {
    assert.equal(splitRanges(2 * MiB, undefined), undefined);
    assert.equal(splitRanges(MiB, MiB), undefined, "exactly max-blob is one blob");
    assert.deepEqual(splitRanges(2 * MiB, MiB), [
      { start: 0, end: MiB - 1 },
      { start: MiB, end: 2 * MiB - 1 },
    ]);
    assert.deepEqual(splitRanges(2 * MiB + 1, MiB)?.at(-1), { start: 2 * MiB, end: 2 * MiB });
    assert.equal(partTitle("w/model.bin", 1, 4), "w/model.bin.part-002-of-004");
    assert.equal(partTitle("x", 1233, 1234), "x.part-1234-of-1234");
    assert.match(
      partTitleClash(
        "m",
        [
          { path: "a.bin", size: 3 * MiB },
          { path: "a.bin.part-002-of-003", size: 1 },
        ],
        MiB,
      ) ?? "",
      /a\.bin\.part-002-of-003 is the name of a file and of a part of a\.bin/,
    );
    assert.equal(
      partTitleClash(
        "m",
        [
          { path: "a.bin", size: MiB },
          { path: "a.bin.part-001-of-001", size: 1 },
        ],
        MiB,
      ),
      undefined,
    );
  });

  it("a file named like another's part is a usage error before any request", async () => {
    const cwd = await scratch();
    await writeTree(cwd, { "m/a.bin": randomBytes(MiB + 1), "m/a.bin.part-001-of-002": "not a part" });
    const r = await runCli(["publish", "m", "clash"], { cwd, env: { ASSETKIT_STORE: "oci://127.0.0.1:1/ns?max-blob=1MiB" } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr.trim(),
      /^error: cannot publish clash to oci:\/\/127\.0\.0\.1:1\/ns: a\.bin\.part-001-of-002 is the name of a file and of a part of a\.bin/,
    );
  });

  it("reads any range across parts, checks a part read whole against its digest, and hashes ranges of a stream", async () => {
    const data = randomBytes(2500);
    const ranges = splitRanges(data.length, 1000)!;
    const blobs = new Map(ranges.map((r) => [digestOf(data.subarray(r.start, r.end + 1)), data.subarray(r.start, r.end + 1)]));
    const file: StoredFile = {
      title: "f",
      size: data.length,
      parts: [...blobs].map(([digest, bytes], i) => ({ digest, size: bytes.length, offset: ranges[i]!.start })),
      annotations: {},
    };
    const opened: string[] = [];
    const openBlob = async (digest: string, range?: { start: number; end: number }) => {
      opened.push(`${file.parts.findIndex((p) => p.digest === digest)}:${range ? `${range.start}-${range.end}` : "whole"}`);
      const bytes = blobs.get(digest)!;
      return Readable.from([range ? bytes.subarray(range.start, range.end + 1) : bytes]);
    };
    assert.deepEqual(await buffer(await openParts(file, undefined, openBlob, "f")), data);
    assert.deepEqual(await buffer(await openParts(file, { start: 999, end: 2000 }, openBlob, "f")), data.subarray(999, 2001));
    assert.deepEqual(opened.slice(3), ["0:999-999", "1:whole", "2:0-0"], "only the parts the range covers, a covered one whole");
    assert.deepEqual(await rangeDigests(async () => Readable.from([data.subarray(0, 1500), data.subarray(1500)]), ranges), [...blobs.keys()]);

    const damaged = Buffer.from(data.subarray(1000, 2000));
    damaged[10]! ^= 0xff;
    blobs.set(file.parts[1]!.digest, damaged);
    await assert.rejects(
      buffer(await openParts(file, undefined, openBlob, "f of m:1")),
      /integrity check failed for f of m:1: part 2 of 3 \(blob sha256:[0-9a-f]{64}, bytes 1000-1999\) has digest/,
    );
  });

  it(
    "uploads a file's parts at once, at most ASSETKIT_CONCURRENCY blobs in flight (publish, promote --to)",
    { skip: !REGISTRY_A && "no registry A: run under node scripts/test.ts" },
    async () => {
      const proxy = await FaultProxy.start(REGISTRY_A!);
      try {
        const cwd = await scratch();
        const big = randomBytes(4 * MiB);
        await writeTree(cwd, { "m/big.bin": big });
        const parts = [0, 1, 2, 3].map((i) => digestOf(big.subarray(i * MiB, (i + 1) * MiB)).slice("sha256:".length));
        // Each part's upload PUT is held until all four are held at once, or for 2 s: how many were ever held at once
        // is how many went in parallel (one after the other: 1; unbounded: 4).
        let held = 0;
        let mostHeld = 0;
        proxy.inject({
          when: (req) => req.method === "PUT" && parts.some((hex) => req.url!.includes(hex)),
          fault: {
            kind: "hold",
            until: async () => {
              mostHeld = Math.max(mostHeld, ++held);
              await waitFor("four part uploads at once", 2000, async () => held >= 4).catch(() => undefined);
              held--;
            },
          },
        });
        const registry = (namespace: string) => `oci://${new URL(proxy.url).host}/${namespace}?settle=0&max-blob=1MiB`;
        const cli = async (...args: string[]) => {
          const r = await runCli(args, { cwd, env: { ASSETKIT_CONCURRENCY: "3" } });
          assert.equal(r.code, 0, r.stderr);
          return r;
        };
        const source = registry(uniquePrefix());
        await cli("publish", "m", "x", "--store", source);
        assert.equal(mostHeld, 3, "publish: three parts in flight at once, the fourth waiting for a slot");
        const folder = `${cwd}/folder-store`;
        await cli("promote", "x:1.0.0", "--store", source, "--to", folder);
        mostHeld = 0;
        const copied = await cli("promote", "x:1.0.0", "--store", folder, "--to", registry(uniquePrefix()));
        assert.match(copied.stderr, /stored as parts \(big\.bin: 4 parts\)/);
        assert.equal(mostHeld, 3, "promote --to: the same");
      } finally {
        await proxy.stop();
      }
    },
  );
});
