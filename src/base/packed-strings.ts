// Many short strings held at once (a large version's etags, one a file, until its meta is written) as the UTF-8
// bytes of one growing buffer: a 34-character etag as a string in an array takes ~64 bytes, here 42.

/** Strings by index (0 to count - 1), packed; an index never set, or set to "", reads as undefined. */
export class PackedStrings {
  private bytes = Buffer.alloc(64 * 1024);
  private used = 0;
  private readonly starts: Uint32Array;
  private readonly lengths: Uint32Array;

  constructor(count: number) {
    this.starts = new Uint32Array(count);
    this.lengths = new Uint32Array(count);
  }

  set(index: number, text: string): void {
    const length = Buffer.byteLength(text);
    if (this.used + length > this.bytes.length) this.bytes = Buffer.concat([this.bytes, Buffer.alloc(Math.max(this.bytes.length, length))]);
    this.bytes.write(text, this.used);
    this.starts[index] = this.used;
    this.lengths[index] = length;
    this.used += length;
  }

  get(index: number): string | undefined {
    const length = this.lengths[index];
    return length ? this.bytes.toString("utf8", this.starts[index], this.starts[index]! + length) : undefined;
  }
}
