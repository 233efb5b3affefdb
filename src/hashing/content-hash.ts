// The hashes a meta records of one file, computed from its bytes as they pass in order (a stream, a copy): the
// sha256 of the whole, and the BLAKE3 of each `partSize` bytes when the file is larger than one part (schema 3).
import { createHash } from "node:crypto";
import { blake3Kind, createHasher, type Hasher } from "./part-hash.ts";

export interface ContentHashes {
  size: number;
  sha256: string;
  parts?: string[];
}

export class ContentHasher {
  private readonly whole = createHash("sha256");
  private readonly parts: string[] = [];
  private readonly part: Hasher | undefined;
  private inPart = 0;
  private size = 0;
  private readonly partSize: number | undefined;

  /** Without `partSize`, only the whole file is hashed. */
  static async create(partSize?: number): Promise<ContentHasher> {
    return new ContentHasher(partSize, partSize === undefined ? undefined : await createHasher(blake3Kind()));
  }

  private constructor(partSize: number | undefined, part: Hasher | undefined) {
    this.partSize = partSize;
    this.part = part;
  }

  update(chunk: Buffer): void {
    this.whole.update(chunk);
    this.size += chunk.length;
    if (this.partSize === undefined) return;
    for (let at = 0; at < chunk.length;) {
      const take = Math.min(chunk.length - at, this.partSize - this.inPart);
      this.part!.update(chunk.subarray(at, at + take));
      at += take;
      this.inPart += take;
      if (this.inPart === this.partSize) this.endPart();
    }
  }

  digest(): ContentHashes {
    if (this.inPart > 0) this.endPart();
    const sha256 = this.whole.digest("hex");
    return { size: this.size, sha256, ...(this.partSize !== undefined && this.size > this.partSize ? { parts: this.parts } : {}) };
  }

  private endPart(): void {
    this.parts.push(this.part!.digest());
    this.inPart = 0;
  }
}
