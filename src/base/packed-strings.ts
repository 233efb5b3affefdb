// Many short strings held at once (a large version's etags, one a file, until its meta is written) as the UTF-8
// bytes of a few large buffers: a 34-character etag as a string in an array takes ~64 bytes, here 46.

/** Bytes of a chunk: filled, the next string starts a new one (grown by doubling, one buffer held both copies at once). */
const CHUNK_BYTES = 1024 * 1024;

/** Strings by index (0 to count - 1), packed; an index never set, or set to "", reads as undefined. */
export class PackedStrings {
  private readonly chunks: Buffer[] = [];
  /** Bytes used of the last chunk. */
  private used = 0;
  private readonly chunkOf: Uint32Array;
  private readonly starts: Uint32Array;
  private readonly lengths: Uint32Array;

  constructor(count: number) {
    this.chunkOf = new Uint32Array(count);
    this.starts = new Uint32Array(count);
    this.lengths = new Uint32Array(count);
  }

  set(index: number, text: string): void {
    const length = Buffer.byteLength(text);
    const last = this.chunks.at(-1);
    if (!last || this.used + length > last.length) {
      this.chunks.push(Buffer.allocUnsafe(Math.max(CHUNK_BYTES, length)));
      this.used = 0;
    }
    this.chunks.at(-1)!.write(text, this.used);
    this.chunkOf[index] = this.chunks.length - 1;
    this.starts[index] = this.used;
    this.lengths[index] = length;
    this.used += length;
  }

  get(index: number): string | undefined {
    const length = this.lengths[index];
    if (!length) return undefined;
    const start = this.starts[index]!;
    return this.chunks[this.chunkOf[index]!]!.toString("utf8", start, start + length);
  }
}
