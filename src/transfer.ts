// Moving bytes between a store and local files: streamed, hashed in the same pass as the write, verified.
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { AssetError } from "./errors.ts";

export interface Expected {
  size?: number;
  sha256?: string;
}

/**
 * Streams `source` into a new file at `dest` while hashing it, then checks size and sha256 against the meta.
 * `label` names the object in the error; the caller removes `dest` on failure (it lives in a temporary folder).
 */
export async function downloadVerified(
  source: Readable,
  dest: string,
  expected: Expected,
  label: string,
  onBytes?: (n: number) => void,
): Promise<void> {
  const hash = createHash("sha256");
  let size = 0;
  await pipeline(
    source,
    async function* (chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) {
        size += chunk.length;
        hash.update(chunk);
        onBytes?.(chunk.length);
        yield chunk;
      }
    },
    createWriteStream(dest, { flags: "wx" }),
  );
  const sha256 = hash.digest("hex");
  if ((expected.size !== undefined && size !== expected.size) || (expected.sha256 !== undefined && sha256 !== expected.sha256)) {
    throw new AssetError(
      `integrity check failed for ${label}: expected ${expected.size ?? "?"} bytes with sha256 ${expected.sha256 ?? "?"}, ` +
        `got ${size} bytes with sha256 ${sha256}; nothing was kept`,
    );
  }
}
