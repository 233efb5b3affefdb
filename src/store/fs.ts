// The local (or mounted) directory store: the embedded default, needing no server and no credentials.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream, promises as fs } from "node:fs";
import path from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { TEMP_MARK, tempSibling } from "../base/temp-path.ts";
import {
  StoreError,
  notFound,
  readDocumentBody,
  type Backend,
  type Body,
  type ByteRange,
  type Condition,
  type IncompleteUpload,
  type ListOptions,
  type IncompleteUploads,
  type SourceExpectation,
  type Store,
  type StoredObject,
} from "./store.ts";

export class FsStore implements Backend, IncompleteUploads {
  readonly url: string;
  readonly writable = true;
  readonly listable = true;
  readonly root: string;
  private realRoot: string | undefined;

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

  /**
   * The file of `key`, refused when it, or a folder on its way, resolves outside the store's root through a
   * symbolic link: whoever can write into a shared folder must not make readers copy (or writers touch) files
   * elsewhere. `real` is where it resolves to (reads open that, so what was checked is what is read). With
   * `linkItself`, only the folders on the way are checked (removing a link touches the link, not its target).
   */
  private async fileOf(key: string, linkItself = false): Promise<{ file: string; real: string }> {
    const file = this.pathOf(key);
    try {
      const resolved = linkItself ? path.join(await realpathOfExisting(path.dirname(file)), path.basename(file)) : await realpathOfExisting(file);
      this.realRoot ??= await fs.realpath(this.root).catch(() => undefined); // kept once the root exists
      const root = this.realRoot ?? (await realpathOfExisting(this.root));
      if (resolved.startsWith(root + path.sep)) return { file, real: resolved };
    } catch (err) {
      if (!(err instanceof Error)) throw err;
      throw Object.assign(err, { message: `cannot resolve it: ${err.message}` });
    }
    throw new StoreError("failed", "it resolves outside the store through a symbolic link: refused");
  }

  async head(key: string): Promise<StoredObject | undefined> {
    const stat = await statFile((await this.fileOf(key)).real);
    return stat && { key, size: Number(stat.size), etag: statEtag(stat) };
  }

  async read(key: string): Promise<{ data: Buffer; etag: string } | undefined> {
    const { real } = await this.fileOf(key);
    let handle;
    try {
      handle = await fs.open(real, "r");
      const stat = await handle.stat();
      if (!stat.isFile()) return undefined;
      const data = await readDocumentBody(handle.createReadStream({ autoClose: false }), stat.size);
      return { data, etag: contentEtag(data) };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    } finally {
      await handle?.close();
    }
  }

  async openRead(key: string, range?: ByteRange): Promise<Readable> {
    let handle;
    try {
      handle = await fs.open((await this.fileOf(key)).real, "r");
      if (!(await handle.stat()).isFile()) throw Object.assign(new Error("not a file"), { code: "EISDIR" });
    } catch (err) {
      await handle?.close();
      if (isMissing(err)) throw notFound();
      throw err;
    }
    return handle.createReadStream(range ? { start: range.start, end: range.end } : {});
  }

  async *list(prefix: string, options?: ListOptions): AsyncIterable<StoredObject> {
    const slash = prefix.lastIndexOf("/");
    const base = slash < 0 ? "" : prefix.slice(0, slash);
    const start = base ? (await this.fileOf(base)).real : this.root;
    // Shallow: the prefix's own folder only (an asset's metas, not its versions' files: 1,000,000 stats for a large one).
    for await (const [key, stat] of walk(start, base, false, options?.shallow)) {
      if (key.startsWith(prefix)) yield { key, size: Number(stat.size), etag: statEtag(stat), modified: stat.mtime };
    }
  }

  async write(key: string, body: Body, condition?: Condition): Promise<boolean> {
    // The folder resolved, not the file: a rename replaces a link at `dest` itself, and a new file has no path to
    // resolve (its resolution failed, then its folder's: two realpaths, a readlink per component each).
    const dest = (await this.fileOf(key, true)).file;
    const temp = tempSibling(dest);
    let renamed = false; // then there is no temp left to remove (a removal that finds nothing still costs an lstat)
    try {
      await writeTemp(temp, body);
      if (!condition) {
        await fs.rename(temp, dest);
        return (renamed = true);
      }
      if ("ifAbsent" in condition) return await linkIfAbsent(temp, dest);
      return (renamed = await this.replaceIfMatch(temp, dest, condition.ifMatch));
    } finally {
      if (!renamed) await fs.rm(temp, { force: true });
    }
  }

  // rename() cannot compare, so compare-and-swap holds a cross-process lock around compare + rename.
  private async replaceIfMatch(temp: string, dest: string, etag: string): Promise<boolean> {
    // Loaded on the first compare-and-swap, not at start (assets-dir.ts says why).
    const { lock } = (await import("proper-lockfile")).default;
    const release = await lock(dest, {
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

  /**
   * A hard link to the source (objects are never modified in place, only replaced by rename), else a copy. With
   * `expected`, the link (or copy) is made under a temporary name and hashed there before it takes `destKey`: the
   * bytes checked are those of the very file linked, so a file damaged in place (its stat unchanged) is never
   * linked. False, with nothing written, when they do not hash to `expected.sha256` (or none is given).
   */
  async copy(sourceKey: string, destKey: string, expected?: SourceExpectation): Promise<boolean> {
    if (expected && !expected.sha256) return false;
    return this.copyPath(this, sourceKey, destKey, expected?.sha256);
  }

  /** Another folder store: linked or copied by the file system, as inside one store. */
  async copyFrom(source: Store, sourceKey: string, destKey: string, expected?: SourceExpectation): Promise<boolean> {
    if (!(source instanceof FsStore)) return false;
    if (expected && !expected.sha256) return false;
    return this.copyPath(source, sourceKey, destKey, expected?.sha256);
  }

  private async copyPath(from: FsStore, sourceKey: string, destKey: string, sha256?: string): Promise<boolean> {
    const source = (await from.fileOf(sourceKey)).real;
    const dest = (await this.fileOf(destKey)).file;
    const temp = tempSibling(dest);
    let renamed = false;
    try {
      await fs.mkdir(path.dirname(temp), { recursive: true });
      await fs.link(source, temp).catch(async (err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") throw err;
        await fs.copyFile(source, temp, fs.constants.COPYFILE_EXCL); // another file system, or no links allowed
      });
      if (sha256 !== undefined && (await fileSha256(temp)) !== sha256) return false;
      await fs.rename(temp, dest);
      return (renamed = true);
    } catch (err) {
      if (isMissing(err) && !(await statFile(source))) {
        if (sha256 !== undefined) return false;
        throw notFound();
      }
      throw err;
    } finally {
      if (!renamed) await fs.rm(temp, { force: true });
    }
  }

  async delete(key: string): Promise<void> {
    const { file } = await this.fileOf(key, true);
    try {
      await fs.unlink(file);
    } catch (err) {
      if (isMissing(err)) return;
      throw err;
    }
    // Tidy now-empty parent folders so a deleted claim leaves nothing behind; a non-empty one stops us.
    for (let dir = path.dirname(file); dir.startsWith(this.root + path.sep); dir = path.dirname(dir)) {
      if (
        !(await fs.rmdir(dir).then(
          () => true,
          () => false,
        ))
      )
        break;
    }
  }

  /** Temporary files of writes that never finished (their writer was killed before the rename). */
  async *incompleteUploads(prefix: string): AsyncIterable<IncompleteUpload> {
    for await (const [key, stat] of walk(this.root, "", true)) {
      if (key.startsWith(prefix) && path.basename(key).includes(TEMP_MARK)) yield { key, id: key, started: stat.mtime, size: Number(stat.size) };
    }
  }

  async abortUpload(upload: IncompleteUpload): Promise<void> {
    await fs.rm(path.join(this.root, ...upload.key.split("/")), { force: true });
  }

  /** File-system errors are never temporary: retrying a full disk or a denied folder cannot help. */
  classify(err: unknown): StoreError {
    if (err instanceof StoreError) return err;
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
      // The folder is made when the first try finds it missing: most writes go to a folder that exists.
      if (attempt > 1) await fs.mkdir(path.dirname(temp), { recursive: true });
      if (Buffer.isBuffer(body)) await fs.writeFile(temp, body, { flag: "wx" });
      else if ("file" in body) await fs.copyFile(body.file, temp, fs.constants.COPYFILE_EXCL);
      else await pipeline(await body.open(), createWriteStream(temp, { flags: "wx" }));
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

async function fileSha256(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest("hex");
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

/** Every file under `dir`, skipping temporary files unless `temps` (then: only files, temporaries included). */
async function* walk(dir: string, keyPrefix: string, temps = false, shallow = false): AsyncGenerator<[string, import("node:fs").BigIntStats]> {
  let entries;
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (isMissing(err)) return;
    throw err;
  }
  for (const entry of entries) {
    if (entry.name.includes(TEMP_MARK) && !temps) continue;
    const key = keyPrefix ? `${keyPrefix}/${entry.name}` : entry.name;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!shallow) yield* walk(full, key, temps);
    } else if (entry.isFile()) {
      const stat = await statFile(full);
      if (stat) yield [key, stat];
    }
  }
}

/** The real path of `file`, or, when it does not exist yet, of its nearest existing folder joined with the rest. */
async function realpathOfExisting(file: string): Promise<string> {
  try {
    return await fs.realpath(file);
  } catch (err) {
    const parent = path.dirname(file);
    if (!isMissing(err) || parent === file) throw err;
    return path.join(await realpathOfExisting(parent), path.basename(file));
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR";
}
