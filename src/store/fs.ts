// The local (or mounted) directory store: the embedded default, needing no server and no credentials.
import { createHash } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import type { Readable } from "node:stream";
import lockfile from "proper-lockfile";
import { TEMP_MARK, tempSibling } from "../temp-path.ts";
import { StoreError, notFound, type Backend, type Body, type ByteRange, type Condition, type StoredObject } from "./store.ts";

export class FsStore implements Backend {
  readonly url: string;
  readonly writable = true;
  readonly listable = true;
  readonly root: string;

  constructor(root: string, url?: string) {
    this.root = path.resolve(root);
    this.url = url ?? this.root;
  }

  private pathOf(key: string): string {
    const segments = key.split("/");
    if (segments.some((s) => s === "" || s === "." || s === ".." || s.includes("\0"))) {
      throw new StoreError("failed", `refusing unsafe key ${JSON.stringify(key)}`);
    }
    return path.join(this.root, ...segments);
  }

  async head(key: string): Promise<StoredObject | undefined> {
    const stat = await statFile(this.pathOf(key));
    return stat && { key, size: Number(stat.size), etag: statEtag(stat) };
  }

  async read(key: string): Promise<{ data: Buffer; etag: string } | undefined> {
    try {
      const data = await fs.readFile(this.pathOf(key));
      return { data, etag: contentEtag(data) };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  async openRead(key: string, range?: ByteRange): Promise<Readable> {
    let handle;
    try {
      handle = await fs.open(this.pathOf(key), "r");
      if (!(await handle.stat()).isFile()) throw Object.assign(new Error("not a file"), { code: "EISDIR" });
    } catch (err) {
      await handle?.close();
      if (isMissing(err)) throw notFound();
      throw err;
    }
    return handle.createReadStream(range ? { start: range.start, end: range.end } : {});
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    const slash = prefix.lastIndexOf("/");
    const base = slash < 0 ? "" : prefix.slice(0, slash);
    const start = base ? this.pathOf(base) : this.root;
    for await (const [key, stat] of walk(start, base)) {
      if (key.startsWith(prefix)) yield { key, size: Number(stat.size), etag: statEtag(stat) };
    }
  }

  async write(key: string, body: Body, condition?: Condition): Promise<boolean> {
    const dest = this.pathOf(key);
    const temp = tempSibling(dest);
    try {
      await writeTemp(temp, body);
      if (!condition) {
        await fs.rename(temp, dest);
        return true;
      }
      if ("ifAbsent" in condition) return await linkIfAbsent(temp, dest);
      return await this.replaceIfMatch(temp, dest, condition.ifMatch);
    } finally {
      await fs.rm(temp, { force: true });
    }
  }

  // rename() cannot compare, so compare-and-swap holds a cross-process lock around compare + rename.
  private async replaceIfMatch(temp: string, dest: string, etag: string): Promise<boolean> {
    const release = await lockfile.lock(dest, {
      realpath: false,
      stale: 10_000,
      retries: { retries: 200, factor: 1.3, minTimeout: 5, maxTimeout: 200, randomize: true },
    });
    try {
      if ((await currentEtag(dest, etag)) !== etag) return false;
      await fs.rename(temp, dest);
      return true;
    } finally {
      await release();
    }
  }

  /** A hard link to the source (objects are never modified in place, only replaced by rename), else a copy. */
  async copy(sourceKey: string, destKey: string): Promise<void> {
    const source = this.pathOf(sourceKey);
    const dest = this.pathOf(destKey);
    const temp = tempSibling(dest);
    try {
      await fs.mkdir(path.dirname(temp), { recursive: true });
      await fs.link(source, temp).catch(async (err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") throw err;
        await fs.copyFile(source, temp, fs.constants.COPYFILE_EXCL); // another file system, or no links allowed
      });
      await fs.rename(temp, dest);
    } catch (err) {
      if (isMissing(err) && !(await statFile(source))) throw notFound();
      throw err;
    } finally {
      await fs.rm(temp, { force: true });
    }
  }

  async delete(key: string): Promise<void> {
    const file = this.pathOf(key);
    try {
      await fs.unlink(file);
    } catch (err) {
      if (isMissing(err)) return;
      throw err;
    }
    // Tidy now-empty parent folders so a deleted claim leaves nothing behind; a non-empty one stops us.
    for (let dir = path.dirname(file); dir.startsWith(this.root + path.sep); dir = path.dirname(dir)) {
      if (!(await fs.rmdir(dir).then(() => true, () => false))) break;
    }
  }

  /** File-system errors are never temporary: retrying a full disk or a denied folder cannot help. */
  classify(err: unknown): StoreError {
    const code = (err as NodeJS.ErrnoException).code;
    const kind = code === "EACCES" || code === "EPERM" ? "auth" : "failed";
    return new StoreError(kind, (err as Error)?.message ?? String(err), { cause: err });
  }

  secrets(): readonly string[] {
    return [];
  }
}

/**
 * Writes the body to a temporary file in the destination's folder. Another process's delete() may remove that
 * folder between our mkdir and our write (it tidies empty folders); once the temp file is in, it cannot.
 */
async function writeTemp(temp: string, body: Body): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await fs.mkdir(path.dirname(temp), { recursive: true });
      if (Buffer.isBuffer(body)) await fs.writeFile(temp, body, { flag: "wx" });
      else await fs.copyFile(body.file, temp, fs.constants.COPYFILE_EXCL);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT" || attempt >= 20) throw err;
    }
  }
}

/** Writes `temp` at `dest` only if nothing is there: link() fails with EEXIST atomically, across processes. */
async function linkIfAbsent(temp: string, dest: string): Promise<boolean> {
  try {
    await fs.link(temp, dest);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
}

// Two etag flavours, both accepted by ifMatch: read() gives a content hash (immune to inode and timestamp
// reuse, which makes stat tokens repeat under fast compare-and-swap), head()/list() give a cheap stat token.
function contentEtag(data: Buffer): string {
  return "sha256:" + createHash("sha256").update(data).digest("hex");
}

function statEtag(stat: import("node:fs").BigIntStats): string {
  return `${stat.ino}-${stat.mtimeNs}-${stat.size}`;
}

async function currentEtag(file: string, like: string): Promise<string | undefined> {
  if (!like.startsWith("sha256:")) {
    const stat = await statFile(file);
    return stat && statEtag(stat);
  }
  const data = await fs.readFile(file).catch((err) => (isMissing(err) ? undefined : Promise.reject(err)));
  return data && contentEtag(data);
}

async function statFile(file: string): Promise<import("node:fs").BigIntStats | undefined> {
  try {
    const stat = await fs.stat(file, { bigint: true });
    return stat.isFile() ? stat : undefined;
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
}

async function* walk(dir: string, keyPrefix: string): AsyncGenerator<[string, import("node:fs").BigIntStats]> {
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isMissing(err)) return;
    throw err;
  }
  for (const entry of entries) {
    if (entry.name.includes(TEMP_MARK)) continue;
    const key = keyPrefix ? `${keyPrefix}/${entry.name}` : entry.name;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(full, key);
    else if (entry.isFile()) {
      const stat = await statFile(full);
      if (stat) yield [key, stat];
    }
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR";
}
