// Downloads the version a spec resolves to straight into a folder, in the layout a model server expects (the
// version's own files, or those of its sub-part, at the top of the folder), not the assets dir's. Verified like
// fetch (its signature first, under a trust policy) and staged in a hidden folder inside the destination: the
// files appear only once all of them matched.
import { promises as fs } from "node:fs";
import path from "node:path";
import type { Context } from "./context.ts";
import { AssetError } from "../base/errors.ts";
import { parseSpec } from "../registry/spec.ts";
import { TEMP_MARK } from "../base/temp-path.ts";
import { checkTrusted } from "./resolution.ts";

export interface Downloaded {
  name: string;
  version: string;
  digest: string | null;
  /** Paths written under the destination, relative to it. */
  files: string[];
}

export async function downloadTo(ctx: Context, spec: string, dest: string): Promise<Downloaded> {
  const parsed = parseSpec(spec);
  const { name, version, meta } = await ctx.registry.resolve(parsed);
  await checkTrusted(ctx, name, version, meta);
  const what = `${name}:${version}`;
  await fs.mkdir(dest, { recursive: true });
  const staging = await fs.mkdtemp(path.join(dest, TEMP_MARK));
  try {
    const copy = await ctx.assetsDirAt(staging).materialise(
      name,
      version,
      meta,
      (rel, range) => ctx.registry.openFile(name, version, rel, range),
      parsed.subPath,
      (p) => ctx.reporter.progress?.(p.bytes, p.totalBytes, what, { done: p.files, total: p.totalFiles }),
    );
    // Paths relative to the part fetched; a single file (the asset, or a part naming one) is named after it.
    const prefix = parsed.subPath ? `${parsed.subPath}/` : "";
    const single = meta.files.find((f) => f.path === (parsed.subPath ?? ""));
    const files = single
      ? [path.posix.basename(parsed.subPath ?? name)]
      : meta.files.filter((f) => f.path.startsWith(prefix)).map((f) => f.path.slice(prefix.length));
    const tops = single ? files : [...new Set(files.map((f) => f.split("/")[0]!))];
    for (const top of tops) {
      if (
        await fs.lstat(path.join(dest, top)).then(
          () => true,
          () => false,
        )
      )
        throw new AssetError(`${dest} already holds ${top}: give an empty destination`);
    }
    for (const top of tops) await fs.rename(single ? copy.path : path.join(copy.path, top), path.join(dest, top));
    return { name, version, digest: meta.digest ?? null, files: files.sort() };
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
}
