// The hashes of a file's parts in a meta, and what computes them here. Schema 2 hashed parts with sha256; schema 3
// (what assetkit writes) with BLAKE3, ~4-20× faster per core. BLAKE3 runs natively (native-blake3.ts) where the
// addon loads and ASSETKIT_NATIVE_HASH is not 0; elsewhere it runs as WebAssembly (hash-wasm: the same hashes,
// ~5× slower than sha256 with SHA extensions), which publishing needs (equal content, equal digest on every
// platform), while fetching and verifying check the whole-file sha256 instead, which is as bound to the digest.
import { createHash } from "node:crypto";
import { nativeBlake3 } from "./native-blake3.ts";

export type PartAlgorithm = "sha256" | "blake3";

/** What a hash job computes and with which implementation: chosen on the main thread, followed by the workers. */
export type HashKind = "sha256" | "blake3-native" | "blake3-wasm";

/** A running hash: `digest` returns the hex digest and starts afresh. */
export interface Hasher {
  update(data: Buffer): void;
  digest(): string;
}

let nativeAllowed = true;

/** ASSETKIT_NATIVE_HASH=0 turns the addon off (read once into the context's tuning). */
export function allowNativeHash(allowed: boolean): void {
  nativeAllowed = allowed;
}

/** How BLAKE3 runs here: natively when allowed and the addon loads, else as WebAssembly. */
export function blake3Kind(): HashKind {
  return nativeAllowed && nativeBlake3().ok ? "blake3-native" : "blake3-wasm";
}

/** How to check parts hashed with `algorithm` faster than the whole file, or undefined: then check the whole-file sha256. */
export function partCheckKind(algorithm: PartAlgorithm): HashKind | undefined {
  if (algorithm === "sha256") return "sha256";
  return blake3Kind() === "blake3-native" ? "blake3-native" : undefined;
}

/** One line for --debug: which hash implementation runs, and why not the native one. */
export function describeHashing(): string {
  const native = nativeBlake3();
  if (!nativeAllowed) return "part hashes: BLAKE3 as WebAssembly (ASSETKIT_NATIVE_HASH=0); downloads check whole-file sha256";
  if (native.ok) return `part hashes: BLAKE3 native (${native.file})`;
  return `part hashes: BLAKE3 as WebAssembly (${native.why}); downloads check whole-file sha256`;
}

/** A hasher of `kind` for this thread (a worker creates its own). */
export async function createHasher(kind: HashKind): Promise<Hasher> {
  if (kind === "sha256") {
    let sha256 = createHash("sha256");
    return restarting({ update: (data) => sha256.update(data), digest: () => sha256.digest("hex") }, () => (sha256 = createHash("sha256")));
  }
  if (kind === "blake3-native") {
    const native = nativeBlake3();
    if (!native.ok) throw new Error(`native BLAKE3: ${native.why}`);
    const hash = new native.Hasher();
    return restarting(hash, () => hash.reset());
  }
  const { createBLAKE3 } = await import("hash-wasm"); // the fallback: loaded only where the addon cannot run
  const hash = await createBLAKE3();
  return restarting(hash, () => hash.init());
}

/** `hash` as a Hasher: `restart` makes it start afresh after each digest. */
function restarting(hash: { update(data: Buffer): unknown; digest(format: "hex"): string }, restart: () => void): Hasher {
  return {
    update: (data) => void hash.update(data),
    digest: () => {
      const hex = hash.digest("hex");
      restart();
      return hex;
    },
  };
}
