// S3-only behaviour (MinIO under the test command): multipart uploads with conditions, and URI reading. The
// byte-level contract and the failures are the conformance suites' (store.test.ts, faults.test.ts).
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { ListMultipartUploadsCommand, S3Client } from "@aws-sdk/client-s3";
import { MULTIPART_THRESHOLD, S3Store, openS3Store } from "../../../src/store/s3/s3.ts";
import { sdkSigningSetup, staticSigningSetup } from "../../../src/store/s3/signed.ts";
import { UsageError } from "../../../src/base/errors.ts";
import type { Store } from "../../../src/store/store.ts";
import { DEFAULT_TUNING } from "../../../src/store/tuning.ts";
import { skipReason } from "../../conformance/factory.ts";
import { FaultProxy } from "../../helpers/fault-proxy.ts";
import { s3Factory, s3TestEnv } from "../../conformance/factories/s3.ts";
import { TEST_TUNING } from "../../helpers/settings.ts";

const MiB = 1024 * 1024;
const endpoint = (): string => process.env.ASSETKIT_TEST_S3_ENDPOINT!;
const bucket = (): string => process.env.ASSETKIT_TEST_S3_BUCKET || "assetkit-test";

/** A file of `size` random bytes, written in 1 MiB chunks; returns its sha256. */
async function makeFile(file: string, size: number): Promise<string> {
  const hash = createHash("sha256");
  const out = createWriteStream(file);
  for (let written = 0; written < size;) {
    const chunk = randomBytes(Math.min(MiB, size - written));
    hash.update(chunk);
    if (!out.write(chunk)) await new Promise<void>((resolve) => out.once("drain", () => resolve()));
    written += chunk.length;
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  return hash.digest("hex");
}

async function sha256Of(store: Store, key: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of await store.openRead(key)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

describe("s3 store", { skip: skipReason(s3Factory) }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "assetkit-s3-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("uploads a file above the multipart threshold with ifAbsent; racing and later ifAbsent writers get false", async () => {
    const size = 40 * MiB + 12_345;
    assert.ok(size > MULTIPART_THRESHOLD);
    const [a, b] = [path.join(dir, "a.bin"), path.join(dir, "b.bin")];
    const [shaA, shaB] = await Promise.all([makeFile(a, size), makeFile(b, size)]);
    const { store } = await s3Factory.create();

    // Two multipart uploads race for one key: both pass the early HEAD, so CompleteMultipartUpload's
    // If-None-Match decides; exactly one wins and the loser's upload is aborted.
    const wins = await Promise.all([
      store.write("big/model.bin", { file: a, size }, { ifAbsent: true }),
      store.write("big/model.bin", { file: b, size }, { ifAbsent: true }),
    ]);
    assert.equal(wins.filter(Boolean).length, 1, `exactly one winner, got ${wins}`);
    const head = await store.head("big/model.bin");
    assert.equal(head?.size, size);
    assert.match(head.etag, /-3"$/, "a 3-part multipart ETag");
    assert.equal(await sha256Of(store, "big/model.bin"), wins[0] ? shaA : shaB);

    assert.equal(await store.write("big/model.bin", { file: b, size }, { ifAbsent: true }), false);
    assert.equal(await store.write("big/model.bin", { file: b, size }, { ifMatch: '"not-the-etag"' }), false);
    assert.equal(await store.write("big/other.bin", { file: b, size }, { ifMatch: head.etag }), false, "ifMatch on a missing key");
    assert.equal((await store.head("big/model.bin"))?.etag, head.etag, "unchanged");

    // ifMatch with the current etag replaces it through a multipart upload too.
    assert.equal(await store.write("big/model.bin", { file: b, size }, { ifMatch: head.etag }), true);
    assert.equal(await sha256Of(store, "big/model.bin"), shaB);

    // A range inside the second part.
    const ranged = await store.openRead("big/model.bin", { start: 20 * MiB, end: 20 * MiB + 9 });
    let bytes = 0;
    for await (const chunk of ranged) bytes += (chunk as Buffer).length;
    assert.equal(bytes, 10);

    const s3 = new S3Client({
      endpoint: endpoint(),
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: s3TestEnv().AWS_ACCESS_KEY_ID!, secretAccessKey: s3TestEnv().AWS_SECRET_ACCESS_KEY! },
    });
    try {
      const key = (store as unknown as { prefix: string }).prefix + "big/model.bin";
      const open = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket(), Prefix: key }));
      assert.deepEqual(open.Uploads ?? [], [], "no multipart upload left open");
    } finally {
      s3.destroy();
    }
  });

  it("sends small reads and writes, conditional ones too, as hand-signed requests; a refused condition is asked again through the SDK (counted at a proxy)", async () => {
    // A signature the server refused would only show as the slower path through the SDK: count who sent what.
    const proxy = await FaultProxy.start(endpoint());
    const agents: string[] = [];
    proxy.inject({
      fault: { kind: "stall" },
      when: (req) => {
        agents.push(`${req.method} ${req.headers["user-agent"] ? "sdk" : "signed"}`);
        return false; // observed, never faulted
      },
    });
    try {
      const { store } = await s3Factory.faults!.open(proxy.url, DEFAULT_TUNING);
      const file = path.join(dir, "small.bin");
      const sha = await makeFile(file, 70_000);
      assert.equal(await store.write("s/small.bin", { file, size: 70_000 }), true);
      assert.equal(await store.write("s/doc.json", Buffer.from("{}")), true);
      assert.equal(await sha256Of(store, "s/small.bin"), sha);
      const head = await store.head("s/small.bin");
      assert.equal(head?.size, 70_000);
      // A content-addressed blob is written if absent, a channel's document if it still has the ETag read.
      assert.equal(await store.write("s/blob", { file, size: 70_000 }, { ifAbsent: true }), true);
      assert.equal(await store.write("s/doc.json", Buffer.from("[]"), { ifMatch: (await store.head("s/doc.json"))!.etag }), true);
      assert.equal(await store.write("s/blob", Buffer.from("other"), { ifAbsent: true }), false, "refused: it exists");
      assert.equal(await sha256Of(store, "s/blob"), sha, "the refused write changed nothing");
      assert.deepEqual(agents.slice(0, 8), ["PUT signed", "PUT signed", "GET signed", "HEAD signed", "PUT signed", "HEAD signed", "PUT signed", "PUT signed"]);
      assert.equal(agents[8], "PUT sdk", "the refusal asked again through the SDK, which tells it from a failure");
      assert.ok(head?.etag);
    } finally {
      await proxy.stop();
    }
  });

  it("sends a multipart upload's parts from the file as hand-signed PUTs, a failed one tried again the same way; creates and completes through the SDK (counted at a proxy)", async () => {
    const proxy = await FaultProxy.start(endpoint());
    const requests: string[] = [];
    proxy.inject({
      fault: { kind: "stall" },
      when: (req) => {
        const url = new URL(req.url!, "http://proxy");
        const what = url.searchParams.has("partNumber")
          ? `part ${url.searchParams.get("partNumber")}`
          : url.searchParams.has("uploads")
            ? "create"
            : url.searchParams.has("uploadId")
              ? "complete"
              : "other";
        requests.push(`${req.method} ${what} ${req.headers["user-agent"] ? "sdk" : "signed"}`);
        return false; // observed, never faulted
      },
    });
    proxy.inject({ fault: { kind: "status", status: 503 }, times: 1, when: (req) => req.url!.includes("partNumber=2&") });
    try {
      const { store } = await s3Factory.faults!.open(proxy.url, DEFAULT_TUNING);
      const file = path.join(dir, "parts.bin");
      const size = 2 * DEFAULT_TUNING.partSize + 777;
      const sha = await makeFile(file, size);
      assert.equal(await store.write("m/parts.bin", { file, size }), true);
      assert.equal(await sha256Of(store, "m/parts.bin"), sha);
      assert.match((await store.head("m/parts.bin"))!.etag, /-3"$/, "a 3-part multipart ETag");
      const upload = requests.filter((r) => !r.startsWith("GET") && !r.startsWith("HEAD"));
      assert.deepEqual(upload.slice(0, 1), ["POST create sdk"]);
      assert.deepEqual(
        upload.filter((r) => r.includes("part")).sort(),
        ["PUT part 1 signed", "PUT part 2 signed", "PUT part 2 signed", "PUT part 3 signed"],
        "every part hand-signed, the one answered 503 tried again",
      );
      assert.deepEqual(upload.at(-1), "POST complete sdk");
    } finally {
      await proxy.stop();
    }
  });

  it("reads and writes small objects without loading the SDK when endpoint, region and credentials are given; lists through it", async () => {
    const at = `s3://${bucket()}/sdk-free-${Date.now()}?endpoint=${endpoint()}`;
    const store = new S3Store(new URL(at), { tuning: TEST_TUNING, env: s3TestEnv() });
    assert.equal(await store.write("doc.json", Buffer.from("{}")), true);
    assert.equal((await store.read("doc.json"))?.data.toString(), "{}");
    assert.equal(await sha256Of(store, "doc.json"), createHash("sha256").update("{}").digest("hex"));
    const head = await store.head("doc.json");
    assert.deepEqual(head, { key: "doc.json", size: 2, etag: (await store.read("doc.json"))?.etag });
    assert.equal(await store.head("missing.json"), undefined, "a missing key (the bucket checked by a signed HEAD too)");
    assert.equal(store.sdkLoaded, false, "a read, a small write and heads need no SDK");
    const listed = [];
    for await (const o of store.list("")) listed.push(o.key);
    assert.deepEqual(listed, ["doc.json"]);
    assert.equal(store.sdkLoaded, true);

    // Without a region the SDK's chain decides it (a profile may name one): the reads sign as the SDK resolves.
    const { AWS_REGION: _, ...noRegion } = s3TestEnv();
    const chained = new S3Store(new URL(at), { tuning: TEST_TUNING, env: noRegion });
    assert.equal((await chained.read("doc.json"))?.data.toString(), "{}");
    assert.equal(chained.sdkLoaded, true);
  });

  it("a small file whose size changed since publishing started is refused, not half sent; the next write still goes", async () => {
    const { store } = await s3Factory.faults!.open(endpoint(), DEFAULT_TUNING);
    const file = path.join(dir, "changing.bin");
    await makeFile(file, 5_000);
    await assert.rejects(store.write("s/changing.bin", { file, size: 4_000 }), /changing\.bin is 5000 bytes now, 4000 when publishing started/);
    assert.equal(await store.head("s/changing.bin"), undefined);
    const other = path.join(dir, "other.bin");
    const sha = await makeFile(other, 3_000);
    assert.equal(await store.write("s/other.bin", { file: other, size: 3_000 }), true);
    assert.equal(await sha256Of(store, "s/other.bin"), sha);
  });

  it("keeps etags consistent between head, read, list and ifMatch", async () => {
    const { store } = await s3Factory.create();
    await store.write("e/x", Buffer.from("x"));
    const head = await store.head("e/x");
    const read = await store.read("e/x");
    const listed = [];
    for await (const o of store.list("e/")) listed.push(o);
    assert.ok(head && read);
    assert.equal(read.etag, head.etag);
    assert.equal(listed[0]?.etag, head.etag);
    assert.equal(await store.write("e/x", Buffer.from("y"), { ifMatch: listed[0]!.etag }), true);
  });
});

describe("s3 signing without the SDK", () => {
  it("addresses and signs as the SDK's endpoint rules and signer do, for custom endpoints", async () => {
    const credentials = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" };
    const now = new Date("2026-03-04T05:06:07Z");
    for (const endpoint of ["http://127.0.0.1:9000", "http://127.0.0.1:9000/", "https://minio.example.com/s3/", "http://[::1]:9000"]) {
      for (const bucket of ["assetkit-test", "my.bucket"]) {
        const client = new S3Client({ endpoint, region: "eu-west-1", forcePathStyle: true, credentials, requestChecksumCalculation: "WHEN_REQUIRED" });
        try {
          const sdk = await sdkSigningSetup(client, bucket, endpoint);
          const ours = staticSigningSetup(endpoint, bucket, "eu-west-1", credentials);
          assert.equal(ours.base.href, sdk.base.href, `${endpoint} ${bucket}`);
          assert.equal(ours.crc32, sdk.crc32);
          const request = { method: "GET", path: `${ours.base.pathname}/k`, headers: { host: ours.base.host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD" } };
          assert.deepEqual(ours.signer.sign(request, await ours.credentials(), now), sdk.signer.sign(request, await sdk.credentials(), now));
        } finally {
          client.destroy();
        }
      }
    }
  });
});

describe("s3 store URLs", () => {
  it("keeps bucket and prefix, refuses credentials and unknown parameters", () => {
    const store = openS3Store(new URL("s3://bkt/a/b/?endpoint=http://127.0.0.1:9/&region=eu-west-1"), { tuning: TEST_TUNING, env: {} }) as unknown as Store & {
      bucket: string;
      prefix: string;
    };
    assert.equal(store.bucket, "bkt");
    assert.equal(store.prefix, "a/b/");
    assert.equal(openS3Store(new URL("s3://bkt"), { tuning: TEST_TUNING, env: {} }).url, "s3://bkt");
    assert.throws(
      () => openS3Store(new URL("s3://user:pw@bkt/p"), { tuning: TEST_TUNING, env: {} }),
      (err: unknown) => err instanceof UsageError && !err.message.includes("pw"),
    );
    assert.throws(() => openS3Store(new URL("s3://bkt/p?endpont=http://x"), { tuning: TEST_TUNING, env: {} }), /unknown parameter/);
    assert.throws(() => openS3Store(new URL("s3:///p"), { tuning: TEST_TUNING, env: {} }), /no bucket/);
  });
});
