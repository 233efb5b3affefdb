// The hashes a meta records of one file, computed from its bytes as they pass in order (a stream, a copy): the
// sha256 of the whole, and of each `partSize` bytes when the file is larger than one part.
import { createHash, type Hash } from "node:crypto";

export interface ContentHashes {
  size: number;
  sha256: string;
  parts?: string[];
}

export class ContentHasher {
  private readonly whole = createHash("sha256");
  private readonly parts: string[] = [];
  private part: Hash | undefined;
  private inPart = 0;
  private size = 0;
  private readonly partSize: number | undefined;

  /** Without `partSize`, only the whole file is hashed. */
  constructor(partSize?: number) {
    this.partSize = partSize;
  }

  update(chunk: Buffer): void {
    this.whole.update(chunk);
    this.size += chunk.length;
    if (this.partSize === undefined) return;
    for (let at = 0; at < chunk.length;) {
      const take = Math.min(chunk.length - at, this.partSize - this.inPart);
      (this.part ??= createHash("sha256")).update(chunk.subarray(at, at + take));
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
    this.parts.push(this.part!.digest("hex"));
    this.part = undefined;
    this.inPart = 0;
  }
}
