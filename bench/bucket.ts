// Direct bucket housekeeping between measured runs (never timed): check what an upload stored, and delete it so
// that repeated uploads do not fill the disk; write objects a case starts from (an index of 10,000 versions).
import { readdir, rm } from "node:fs/promises";
import path from "node:path";
import { DeleteObjectsCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import type { S3Target } from "./tools.ts";

export interface Bucket {
  /** Bytes stored under `prefix` (every object, metadata included). */
  bytesUnder(prefix: string): Promise<number>;
  deleteUnder(prefix: string): Promise<void>;
  put(key: string, body: string): Promise<void>;
  close(): void;
}

/**
 * `minioData`: MinIO's data folder. MinIO moves deleted objects to a trash folder there and frees them later, on its
 * own schedule: in another tool's measured run, and in RAM meanwhile when the data is on tmpfs (a full run filled
 * 24 GiB). The trash is emptied right after each deletion instead.
 */
export function openBucket(target: S3Target, minioData: string): Bucket {
  const trash = path.join(minioData, ".minio.sys/tmp/.trash");
  const client = new S3Client({
    endpoint: target.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: target.accessKey, secretAccessKey: target.secretKey },
  });
  async function* pages(prefix: string) {
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: target.bucket, Prefix: `${prefix}/`, ContinuationToken: token }));
      yield page.Contents ?? [];
      token = page.NextContinuationToken;
    } while (token);
  }
  return {
    async bytesUnder(prefix) {
      let total = 0;
      for await (const objects of pages(prefix)) total += objects.reduce((sum, o) => sum + (o.Size ?? 0), 0);
      return total;
    },
    async deleteUnder(prefix) {
      for await (const objects of pages(prefix)) {
        if (objects.length === 0) continue;
        await client.send(new DeleteObjectsCommand({ Bucket: target.bucket, Delete: { Objects: objects.map((o) => ({ Key: o.Key! })), Quiet: true } }));
      }
      const entries = await readdir(trash).catch(() => []);
      await Promise.all(entries.map((entry) => rm(path.join(trash, entry), { recursive: true, force: true, maxRetries: 3 })));
    },
    async put(key, body) {
      await client.send(new PutObjectCommand({ Bucket: target.bucket, Key: key, Body: body }));
    },
    close: () => client.destroy(),
  };
}
