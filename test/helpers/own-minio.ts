// A MinIO of a test's own (the shared one keeps serving the other tests), which the test may stop and start
// again on the same port and data: a store that goes away and comes back.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { freePorts, goBinDir } from "../../scripts/test-servers.ts";

export interface OwnMinio {
  endpoint: string;
  bucket: string;
  /** The env a client needs (AWS_* credentials). */
  env: Record<string, string>;
  start(): Promise<void>;
  stop(): Promise<void>;
  dispose(): Promise<void>;
}

const USER = "own-minio-user";
const SECRET = "own-minio-secret";

export async function ownMinio(): Promise<OwnMinio> {
  const dir = await mkdtemp(path.join(tmpdir(), "assetkit-own-minio-"));
  const [port, consolePort] = await freePorts(2);
  const endpoint = `http://127.0.0.1:${port}`;
  const bucket = "own";
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const start = async (): Promise<void> => {
    child = spawn(
      path.join(goBinDir(), "minio"),
      ["server", path.join(dir, "data"), "--quiet", "--address", `127.0.0.1:${port}`, "--console-address", `127.0.0.1:${consolePort}`],
      {
        stdio: "ignore",
        env: { ...process.env, MINIO_ROOT_USER: USER, MINIO_ROOT_PASSWORD: SECRET, MINIO_BROWSER: "off", MINIO_UPDATE: "off", MINIO_CI_CD: "1" },
      },
    );
    const running = child;
    exited = new Promise((resolve) => running.once("exit", () => resolve()));
    const client = new S3Client({
      endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: USER, secretAccessKey: SECRET },
      maxAttempts: 1,
    });
    try {
      for (const deadline = Date.now() + 60_000; ;) {
        try {
          await client.send(new CreateBucketCommand({ Bucket: bucket }));
          return;
        } catch (err) {
          const name = (err as Error).name;
          if (name === "BucketAlreadyOwnedByYou" || name === "BucketAlreadyExists") return;
          if (running.exitCode !== null || Date.now() > deadline) throw new Error(`own MinIO did not start: ${(err as Error).message}`);
          await sleep(200);
        }
      }
    } finally {
      client.destroy();
    }
  };
  const stop = async (): Promise<void> => {
    child?.kill("SIGKILL");
    await exited;
  };
  await start();
  return {
    endpoint,
    bucket,
    env: { AWS_ACCESS_KEY_ID: USER, AWS_SECRET_ACCESS_KEY: SECRET, AWS_REGION: "us-east-1" },
    start,
    stop,
    dispose: async () => {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
