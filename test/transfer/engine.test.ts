// The transfer engine over real stores (a folder, and MinIO when the test servers run): ranged downloads, resumed
// parts, integrity, server-side copies on republish, and the per-command memo of `.versions`. Faults are injected
// by a Store wrapper that cuts or stalls real response streams; nothing of an SDK is mocked.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { PassThrough, Readable } from "node:stream";
import { describe, it } from "node:test";
import { AssetError } from "../../src/base/errors.ts";
import { prepareInput, startHashing } from "../../src/registry/manifest.ts";
import { Registry } from "../../src/registry/registry.ts";
import { parseSpec } from "../../src/registry/spec.ts";
import {
  StoreError,
  type Backend,
  type Body,
  type ByteRange,
  type Condition,
  type SourceExpectation,
  type Store,
  type StoredObject,
} from "../../src/store/store.ts";
import { TAKE_CHUNKS, type TakeChunk } from "../../src/store/chunk-body.ts";
import { DEFAULT_TUNING } from "../../src/store/tuning.ts";
import { Transfers, transferSettings, type Expected } from "../../src/transfer/engine.ts";
import { writeTree } from "../helpers/cli.ts";
import { inLayers } from "../conformance/factory.ts";
import { factories, skipReason } from "../conformance/stores.ts";
import { TEST_SETTINGS } from "../helpers/settings.ts";

const PART = 1000; // tiny parts, so small objects cross many part boundaries

/** Delegates to a real store, records what is asked of it, and can cut or stall response streams. */
class RecordingStore implements Backend {
  readonly inner: Store;
  readonly reads: string[] = [];
  readonly ranges: (ByteRange | undefined)[] = [];
  readonly writes: string[] = [];
  readonly copies: [string, string][] = [];
  /** Decides, per openRead, to cut the stream after that many bytes (an error, as a reset connection gives). */
  cutAfter: (range: ByteRange | undefined) => number | undefined = () => undefined;
  /** Decides, per openRead, to stop sending (without ending) after that many bytes. */
  stallAfter: (range: ByteRange | undefined) => number | undefined = () => undefined;
  /** Decides, per openRead, to flip the byte at that offset of the response (a byte damaged on the way). */
  flipAt: (range: ByteRange | undefined) => number | undefined = () => undefined;

  constructor(inner: Store) {
    this.inner = inner;
  }
  get url() {
    return this.inner.url;
  }
  get writable() {
    return this.inner.writable;
  }
  get listable() {
    return this.inner.listable;
  }
  head(key: string): Promise<StoredObject | undefined> {
    return this.inner.head(key);
  }
  read(key: string) {
    this.reads.push(key);
    return this.inner.read(key);
  }
  async openRead(key: string, range?: ByteRange): Promise<Readable> {
    this.ranges.push(range);
    const source = await this.inner.openRead(key, range);
    const cut = this.cutAfter(range);
    const stall = this.stallAfter(range);
    const flip = this.flipAt(range);
    if (flip !== undefined) return source.pipe(flipByte(flip));
    if (cut === undefined && stall === undefined) return source;
    const limit = (cut ?? stall)!;
    const out = new PassThrough();
    let sent = 0;
    // Fails once the reader has taken every byte sent before the cut, as a reset connection would.
    const reset = (): unknown =>
      out.readableLength > 0 ? setImmediate(reset) : out.destroy(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }));
    source.on("data", (chunk: Buffer) => {
      if (sent >= limit) return;
      out.write(chunk.subarray(0, limit - sent));
      sent += chunk.length;
      if (sent < limit) return;
      source.destroy();
      if (cut !== undefined) reset(); // a stall sends nothing more, and never ends
    });
    source.on("end", () => {
      if (sent < limit) out.end();
    });
    return out;
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  write(key: string, body: Body, condition?: Condition) {
    this.writes.push(key);
    return this.inner.write(key, body, condition);
  }
  copy(sourceKey: string, destKey: string, expected?: SourceExpectation) {
    this.copies.push([sourceKey, destKey]);
    return this.inner.copy(sourceKey, destKey, expected);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  /** In the layers (the stall test puts it there), a cut stream is a network failure. */
  classify(err: unknown): StoreError {
    return err instanceof StoreError ? err : new StoreError("unavailable", (err as Error)?.message ?? String(err), { temporary: true, cause: err });
  }
  secrets(): string[] {
    return [];
  }
}

/** Passes bytes through, with the one at offset `at` flipped. */
function flipByte(at: number): PassThrough {
  let seen = 0;
  return new PassThrough({
    transform(chunk: Buffer, _encoding, callback) {
      if (at >= seen && at < seen + chunk.length) {
        chunk = Buffer.from(chunk);
        chunk[at - seen]! ^= 0xff;
      }
      seen += chunk.length;
      callback(null, chunk);
    },
  });
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");
/** What a schema-2 meta lists for `data` cut in parts of `partSize`. */
const partHashes = (data: Buffer, partSize: number) =>
  Array.from({ length: Math.ceil(data.length / partSize) }, (_, i) => sha256(data.subarray(i * partSize, (i + 1) * partSize)));
const transfers = (overrides: Partial<ReturnType<typeof transferSettings>> = {}) =>
  new Transfers({ ...transferSettings({ ...DEFAULT_TUNING, concurrency: 4, partSize: PART }), ...overrides });

/** Who writes and hashes verified parts: both run in every part test, whatever this machine's cores choose. */
const PART_WRITERS = [
  ["the hash worker", false],
  ["the event loop", true],
] as const;

async function download(store: Store, key: string, expected: Expected, engine = transfers()): Promise<Buffer> {
  const dest = path.join(await mkdtemp(path.join(tmpdir(), "assetkit-dl-")), "out");
  await engine.download((range) => store.openRead(key, range), dest, expected, key);
  return readFile(dest);
}

for (const factory of factories) {
  describe(`transfers: ${factory.name}`, { skip: skipReason(factory) }, () => {
    it("ranged downloads give identical bytes and hash across part boundaries (odd sizes, below one part, exact multiples)", async () => {
      const { store, seed } = await factory.create();
      for (const size of [1, PART - 1, PART, PART + 1, 3 * PART, 7 * PART + 333]) {
        const data = randomBytes(size);
        await seed.write(`obj/${size}`, data);
        const recording = new RecordingStore(store);
        const got = await download(recording, `obj/${size}`, { size, sha256: sha256(data) });
        assert.ok(got.equals(data), `${size} bytes`);
        const parts = Math.ceil(size / PART);
        assert.equal(recording.ranges.length, parts, `${size} bytes in ${parts} request(s)`);
        if (parts > 1) {
          const covered = recording.ranges.map((r) => [r!.start, r!.end]).sort((a, b) => a[0]! - b[0]!);
          assert.deepEqual(
            covered,
            Array.from({ length: parts }, (_, i) => [i * PART, Math.min(size, (i + 1) * PART) - 1]),
          );
        }
      }
    });

    it("a part cut mid-way is resumed from the bytes already written", async () => {
      const { store, seed } = await factory.create();
      const data = randomBytes(5 * PART + 17);
      await seed.write("cut", data);
      const recording = new RecordingStore(store);
      let cuts = 0;
      // The first response of the third part breaks after 300 bytes; the retry must ask for the rest only.
      recording.cutAfter = (range) => (range?.start === 2 * PART && cuts++ === 0 ? 300 : undefined);
      const got = await download(recording, "cut", { size: data.length, sha256: sha256(data) });
      assert.ok(got.equals(data));
      assert.ok(
        recording.ranges.some((r) => r?.start === 2 * PART + 300 && r.end === 3 * PART - 1),
        JSON.stringify(recording.ranges),
      );

      // A small object (one request, no range at first) resumes with a range too.
      const small = randomBytes(PART - 10);
      await seed.write("cut-small", small);
      const again = new RecordingStore(store);
      let smallCuts = 0;
      again.cutAfter = (range) => (range === undefined && smallCuts++ === 0 ? 123 : undefined);
      assert.ok((await download(again, "cut-small", { size: small.length, sha256: sha256(small) })).equals(small));
      assert.deepEqual(again.ranges, [undefined, { start: 123, end: small.length - 1 }]);
    });

    it("a stalled response fails after the stall timeout and is resumed", async () => {
      const { store, seed } = await factory.create();
      const data = randomBytes(3 * PART);
      await seed.write("stall", data);
      const recording = new RecordingStore(store);
      let stalls = 0;
      recording.stallAfter = (range) => (range?.start === PART && stalls++ === 0 ? 10 : undefined);
      // The stall guard is the store layers': put the recording store in them, with a short idle timeout.
      const guarded = inLayers(recording, { ...DEFAULT_TUNING, idleTimeoutMs: 200 });
      const got = await download(guarded, "stall", { size: data.length, sha256: sha256(data) });
      assert.ok(got.equals(data));
      assert.ok(
        recording.ranges.some((r) => r?.start === PART + 10),
        JSON.stringify(recording.ranges),
      );
    });

    it("detects a corrupted byte, a short object and a long one, and does not retry them", async () => {
      const { store, seed } = await factory.create();
      const data = randomBytes(4 * PART + 5);
      const corrupted = Buffer.from(data);
      corrupted[2 * PART + 7]! ^= 0x01;
      await seed.write("bad", corrupted);
      const recording = new RecordingStore(store);
      await assert.rejects(
        download(recording, "bad", { size: data.length, sha256: sha256(data) }),
        (err: unknown) => err instanceof AssetError && /integrity check failed for bad/.test(err.message),
      );
      assert.equal(recording.ranges.length, 5, "one request per part, no retry");
      await seed.write("short", data.subarray(0, data.length - 1));
      // A store that checks ranges itself (HTTP: 206 with Content-Range) says so before we count the bytes.
      await assert.rejects(
        download(store, "short", { size: data.length, sha256: sha256(data) }),
        /integrity check failed for short|answered a different range/,
      );
      await seed.write("long", Buffer.concat([data.subarray(0, 10), Buffer.from("x")]));
      await assert.rejects(download(store, "long", { size: 10, sha256: sha256(data.subarray(0, 10)) }), /integrity check failed for long: the store sent more/);
    });

    for (const [writer, partsOnEventLoop] of PART_WRITERS) {
      const engine = transfers({ partsOnEventLoop });
      it(`per-part hashes, ${writer}: a byte flipped on the way in one part is detected, and only that part is read again`, async () => {
        const { store, seed } = await factory.create();
        const data = randomBytes(6 * PART + 123);
        await seed.write("parts", data);
        const expected = { size: data.length, parts: partHashes(data, PART), partSize: PART };
        const recording = new RecordingStore(store);
        let flips = 0;
        recording.flipAt = (range) => (range?.start === 3 * PART && flips++ === 0 ? 500 : undefined);
        const got = await download(recording, "parts", expected, engine);
        assert.ok(got.equals(data));
        const starts = recording.ranges.map((r) => r!.start).sort((a, b) => a - b);
        assert.deepEqual(starts, [0, PART, 2 * PART, 3 * PART, 3 * PART, 4 * PART, 5 * PART, 6 * PART], "part 4 read twice, every other part once");
      });

      it(`per-part hashes, ${writer}: a part cut mid-way is resumed, its hash continued from the bytes already written`, async () => {
        const { store, seed } = await factory.create();
        const data = randomBytes(5 * PART + 17);
        await seed.write("cut-parts", data);
        const recording = new RecordingStore(store);
        let cuts = 0;
        recording.cutAfter = (range) => (range?.start === 2 * PART && cuts++ === 0 ? 300 : undefined);
        const got = await download(recording, "cut-parts", { size: data.length, parts: partHashes(data, PART), partSize: PART }, engine);
        assert.ok(got.equals(data));
        const starts = recording.ranges.map((r) => r!.start).sort((a, b) => a - b);
        assert.deepEqual(starts, [0, PART, 2 * PART, 2 * PART + 300, 3 * PART, 4 * PART, 5 * PART], "the cut part resumed, none read again whole");
      });

      it(`per-part hashes, ${writer}: a part that fails twice fails the download, naming the part; the other parts are read once`, async () => {
        const { store, seed } = await factory.create();
        const data = randomBytes(4 * PART + 5);
        const stored = Buffer.from(data);
        stored[2 * PART + 7]! ^= 0x01;
        await seed.write("bad-part", stored);
        const recording = new RecordingStore(store);
        await assert.rejects(
          download(recording, "bad-part", { size: data.length, parts: partHashes(data, PART), partSize: PART }, engine),
          (err: unknown) => err instanceof AssetError && /integrity check failed for bad-part: part 3 of 5 \(bytes 2000-2999\)/.test(err.message),
        );
        const starts = recording.ranges.map((r) => r!.start).sort((a, b) => a - b);
        assert.deepEqual(starts, [0, PART, 2 * PART, 2 * PART, 3 * PART, 4 * PART]);
      });
    }

    it("a missing object fails at once with not-found", async () => {
      const { store } = await factory.create();
      const recording = new RecordingStore(store);
      await assert.rejects(download(recording, "absent", { size: 3 * PART }), (err: unknown) => err instanceof StoreError && err.code === "not-found");
    });

    it("republishing copies unchanged files inside the store and uploads only the changed one", async (t) => {
      const { store } = await factory.create();
      if (!store.writable) return t.skip("read-only store");
      const recording = new RecordingStore(store);
      const registry = new Registry(recording, { settings: TEST_SETTINGS, versioning: "semver" });
      const files: Record<string, Buffer> = { "big.bin": randomBytes(64 * 1024) };
      for (let i = 0; i < 20; i++) files[`part/${String(i).padStart(2, "0")}.bin`] = randomBytes(1024);
      const dir = await writeTree(await mkdtemp(path.join(tmpdir(), "assetkit-in-")), files);
      // As the CLI does: uploads start while the input is still being hashed; possibly unchanged files wait for their hash.
      const publish = async () => registry.publish({ name: "ds", input: await startHashing(dir), createdBy: "test", source: {}, metadata: {} });
      const first = await publish();
      assert.deepEqual(first.copied, { files: 0, bytes: 0 });
      assert.equal(first.uploaded.files, 21);

      await writeFile(path.join(dir, "part/07.bin"), randomBytes(1024));
      recording.writes.length = 0;
      const second = await publish();
      assert.equal(second.version, "1.1.0");
      assert.deepEqual(second.uploaded, { files: 1, bytes: 1024 });
      assert.deepEqual(second.copied, { files: 20, bytes: 64 * 1024 + 19 * 1024 });
      assert.deepEqual(
        recording.writes.filter((k) => k.startsWith("ds/1.1.0/")),
        ["ds/1.1.0/part/07.bin"],
      );
      assert.ok(recording.copies.every(([from, to]) => from.startsWith("ds/1.0.0/") && to === from.replace("ds/1.0.0/", "ds/1.1.0/")));
      assert.equal(recording.copies.length, 20);

      // The copies are real objects of the new version: a fresh registry fetches them verified.
      const reader = new Registry(store, { settings: TEST_SETTINGS, versioning: "semver" });
      const meta = await reader.meta("ds", "1.1.0");
      for (const f of meta.files) {
        const got = await download(store, `ds/1.1.0/${f.path}`, f);
        assert.equal(sha256(got), f.sha256);
      }
    });
  });
}

/**
 * A body read by views of one buffer, which it overwrites as soon as each call to the consumer returns: what the
 * TAKE_CHUNKS contract allows (src/store/chunk-body.ts), and what the HTTP/1.1 client does in effect when a
 * response's last view outlives its call (its connection serves the next request). A consumer that keeps a view
 * past its call reads 0xee there.
 */
function scribblingBody(data: Buffer, viewBytes: number): Readable {
  return Object.assign(new Readable({ read() {} }), {
    [TAKE_CHUNKS]: async (take: TakeChunk) => {
      const view = Buffer.alloc(viewBytes);
      for (let at = 0; at < data.length; at += viewBytes) {
        const n = data.copy(view, 0, at, at + viewBytes);
        const next = take(view.subarray(0, n));
        view.fill(0xee);
        await next;
      }
    },
  });
}

describe("the transfer engine uses a body's view only during its call", () => {
  // Views of 100,000 bytes: batches (256 KiB written by the thread pool or the event loop, 2 MiB by the hash worker)
  // fill inside them.
  const MiB = 1024 * 1024;
  const data = randomBytes(9 * MiB + 333);
  const open = (range?: { start: number; end: number }): Promise<Readable> =>
    Promise.resolve(scribblingBody(range ? data.subarray(range.start, range.end + 1) : data, 100_000));
  const into = async (expected: Expected, partsOnEventLoop = false): Promise<Buffer> => {
    const dest = path.join(await mkdtemp(path.join(tmpdir(), "assetkit-dl-")), "out");
    await transfers({ partSize: 4 * MiB, partsOnEventLoop }).download(open, dest, expected, "scribbled");
    return readFile(dest);
  };

  it("whole-file sha256 (ranged parts written by the thread pool): every byte as sent", async () => {
    assert.ok((await into({ size: data.length, sha256: sha256(data) })).equals(data));
  });

  for (const [writer, partsOnEventLoop] of PART_WRITERS) {
    it(`per-part hashes (parts written by ${writer}): every byte as sent`, async () => {
      assert.ok((await into({ size: data.length, parts: partHashes(data, 4 * MiB), partSize: 4 * MiB }, partsOnEventLoop)).equals(data));
    });
  }
});

describe("resolving reads each asset's index once per registry", () => {
  it("50 partial specs over 10 assets cost 10 requests; a modelkit-written index falls back to the meta", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "assetkit-memo-"));
    const { store: inner } = await factories[0]!.create();
    const writer = new Registry(inner, { settings: TEST_SETTINGS, versioning: "semver" });
    const input = await prepareInput(await writeTree(dir, { "f.txt": "content" }));
    for (let a = 0; a < 10; a++) {
      for (let v = 0; v < 3; v++) await writer.publish({ name: `a${a}`, input, createdBy: "test", source: {}, metadata: {} });
    }
    const recording = new RecordingStore(inner);
    const reader = new Registry(recording, { settings: TEST_SETTINGS, versioning: "semver" });
    const specs = Array.from({ length: 50 }, (_, i) => parseSpec(`a${i % 10}:${["1", "1.1", "1.2.0", "", "^1"][Math.floor(i / 10)]}`.replace(/:$/, "")));
    const resolved = await Promise.all(specs.map((s) => reader.resolveDigest(s)));
    assert.equal(recording.reads.length, 10, recording.reads.join(" "));
    assert.ok(resolved.every((r) => r.digest === input.digest));

    // modelkit rewrites the index without digests: the digest then comes from the meta.
    await inner.write("a0.versions", Buffer.from(JSON.stringify({ versions: ["1.2.0", "1.1.0", "1.0.0"] })));
    const fallback = new RecordingStore(inner);
    assert.equal((await new Registry(fallback, { settings: TEST_SETTINGS, versioning: "semver" }).resolveDigest(parseSpec("a0:1"))).digest, input.digest);
    assert.deepEqual(fallback.reads, ["a0.versions", "a0/1.2.0.meta"]);
  });
});
