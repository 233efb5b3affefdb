// BLAKE3 from @napi-rs/blake-hash's prebuilt addon. One `.node` per runner platform ships in dist/native/
// (scripts/build.ts takes them from the registry's tarballs, checked against pinned integrity hashes), because the
// Action runs from dist/ without an install; from src/ the installed platform package is used. Loading never
// throws: an addon that is missing, built for another platform or broken says why, and callers fall back.
import { createRequire } from "node:module";
import path from "node:path";
import { BUNDLED, distDir } from "./bundle-files.ts";

export interface NativeBlake3Hasher {
  update(data: Buffer): unknown;
  digest(format: "hex"): string;
  reset(): void;
}

export type NativeBlake3 = { ok: true; file: string; Hasher: new () => NativeBlake3Hasher } | { ok: false; why: string };

/** BLAKE3 of "abc": a loaded addon must compute it before it is trusted with a meta's hashes. */
const ABC = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85";

let loaded: NativeBlake3 | undefined;

/** The addon for this platform, loaded once per thread (napi-rs addons are context-aware: a worker loads its own). */
export function nativeBlake3(): NativeBlake3 {
  return (loaded ??= load());
}

function load(): NativeBlake3 {
  const platform = nativePlatform();
  if (!platform) return { ok: false, why: `no build for ${process.platform}-${process.arch}${process.platform === "linux" ? " (musl)" : ""}` };
  let file: string;
  try {
    file = BUNDLED ? path.join(distDir(), "native", `blake.${platform}.node`) : createRequire(import.meta.url).resolve(`@napi-rs/blake-hash-${platform}`);
  } catch {
    return { ok: false, why: `@napi-rs/blake-hash-${platform} is not installed` };
  }
  try {
    const module = { exports: {} as { Blake3Hasher?: new () => NativeBlake3Hasher } };
    process.dlopen(module, file);
    const Hasher = module.exports.Blake3Hasher;
    if (typeof Hasher !== "function") return { ok: false, why: `${file} has no Blake3Hasher` };
    const probe = new Hasher();
    probe.update(Buffer.from("abc"));
    if (probe.digest("hex") !== ABC) return { ok: false, why: `${file} computes a wrong BLAKE3` };
    return { ok: true, file, Hasher };
  } catch (err) {
    return { ok: false, why: `${file} does not load: ${(err as Error).message.split("\n")[0]}` };
  }
}

/**
 * napi-rs's name of this platform (linux-x64-gnu, darwin-arm64, win32-x64-msvc, ...), or undefined where no addon
 * ships: other architectures, and musl Linux (the Docker image is Debian-based, GitHub's runners are glibc).
 */
function nativePlatform(): string | undefined {
  const { platform, arch } = process;
  if (arch !== "x64" && arch !== "arm64") return undefined;
  if (platform === "darwin") return `darwin-${arch}`;
  if (platform === "win32") return `win32-${arch}-msvc`;
  // Node's report names the glibc it runs on; a musl Node has none (napi-rs's own loader asks the same way).
  const report = process.report.getReport() as { header?: { glibcVersionRuntime?: string } };
  if (platform === "linux" && report.header?.glibcVersionRuntime) return `linux-${arch}-gnu`;
  return undefined;
}
