// S3 in the conformance matrix, against MinIO (or any S3-compatible endpoint): scripts/test.ts starts MinIO and
// exports ASSETKIT_TEST_S3_ENDPOINT, _ACCESS_KEY, _SECRET_KEY and _BUCKET (created). Each store is a fresh prefix
// in that bucket, opened from the URI a user would write, with the test credentials given as the store's env
// (a user would export them as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { openS3Store } from "../../../src/store/s3/s3.ts";
import { inLayers, uniquePrefix, type StoreFactory } from "../factory.ts";
import { TEST_TUNING } from "../../helpers/settings.ts";

/** The env a process (the CLI under test, say) needs to open s3Factory's URIs. */
export function s3TestEnv(): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: process.env.ASSETKIT_TEST_S3_ACCESS_KEY ?? "",
    AWS_SECRET_ACCESS_KEY: process.env.ASSETKIT_TEST_S3_SECRET_KEY ?? "",
    AWS_REGION: "us-east-1",
  };
}

/** Creates (once) another bucket on the test MinIO, for copies from bucket to bucket; returns its name. */
export async function extraS3Bucket(bucket: string): Promise<string> {
  const env = s3TestEnv();
  const client = new S3Client({
    endpoint: process.env.ASSETKIT_TEST_S3_ENDPOINT!,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
  });
  await client.send(new CreateBucketCommand({ Bucket: bucket })).catch((err: Error) => {
    if (err.name !== "BucketAlreadyOwnedByYou") throw err;
  });
  client.destroy();
  return bucket;
}

export const s3Factory: StoreFactory = {
  name: "s3 (MinIO)",
  unavailable() {
    if (!process.env.ASSETKIT_TEST_S3_ENDPOINT) return "ASSETKIT_TEST_S3_ENDPOINT is not set (no MinIO)";
    if (!process.env.ASSETKIT_TEST_S3_ACCESS_KEY || !process.env.ASSETKIT_TEST_S3_SECRET_KEY) {
      return "ASSETKIT_TEST_S3_ACCESS_KEY / ASSETKIT_TEST_S3_SECRET_KEY are not set";
    }
    return undefined;
  },
  async create() {
    const bucket = process.env.ASSETKIT_TEST_S3_BUCKET || "assetkit-test";
    const uri = `s3://${bucket}/${uniquePrefix()}?endpoint=${process.env.ASSETKIT_TEST_S3_ENDPOINT}`;
    const store = inLayers(openS3Store(new URL(uri), { tuning: TEST_TUNING, env: s3TestEnv() }));
    return { store, seed: store, uri };
  },
  faults: {
    upstream: () => process.env.ASSETKIT_TEST_S3_ENDPOINT!,
    async open(endpoint, tuning, how = {}) {
      const bucket = how.bucket ?? (process.env.ASSETKIT_TEST_S3_BUCKET || "assetkit-test");
      const prefix = uniquePrefix();
      const env = { ...s3TestEnv(), ...(how.badCredentials ? { AWS_SECRET_ACCESS_KEY: "wrong-secret-0123456789abcdef" } : {}) };
      const store = inLayers(openS3Store(new URL(`s3://${bucket}/${prefix}?endpoint=${endpoint}`), { env, tuning }), tuning);
      const seed = inLayers(
        openS3Store(new URL(`s3://${bucket}/${prefix}?endpoint=${process.env.ASSETKIT_TEST_S3_ENDPOINT}`), { tuning: TEST_TUNING, env: s3TestEnv() }),
      );
      return { store, seed, secrets: [env.AWS_SECRET_ACCESS_KEY, s3TestEnv().AWS_SECRET_ACCESS_KEY].filter((s): s is string => Boolean(s)) };
    },
  },
};
