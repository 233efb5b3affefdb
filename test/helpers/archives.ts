// Builds test archives with the same well-kept libraries users' tools interoperate with (tar-stream, yazl),
// including the hostile entries a safe unpacker must refuse.
import { createGzip } from "node:zlib";
import type { Readable } from "node:stream";
import tarStream from "tar-stream";
import yazl from "yazl";

export interface TarEntry {
  name: string;
  content?: string | Buffer;
  type?: "file" | "directory" | "symlink" | "link" | "character-device" | "fifo";
  linkname?: string;
}

async function collect(stream: Readable | AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

export async function tarArchive(entries: TarEntry[], gzip = false): Promise<Buffer> {
  const pack = tarStream.pack();
  for (const e of entries) {
    const content = e.content === undefined ? undefined : Buffer.from(e.content);
    pack.entry(
      { name: e.name, type: e.type ?? "file", ...(e.linkname ? { linkname: e.linkname } : {}), ...(content ? { size: content.length } : {}) },
      content ?? "",
    );
  }
  pack.finalize();
  const out = gzip ? (pack as unknown as Readable).pipe(createGzip()) : (pack as unknown as AsyncIterable<Buffer>);
  return collect(out);
}

export interface ZipEntry {
  name: string;
  content: string | Buffer;
  /** Unix mode with file type bits (0o120777 for a symlink). */
  mode?: number;
}

export async function zipArchive(entries: ZipEntry[]): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const e of entries) zip.addBuffer(Buffer.from(e.content), e.name, { compress: true, ...(e.mode ? { mode: e.mode } : {}) });
  zip.end();
  return collect(zip.outputStream as unknown as Readable);
}
