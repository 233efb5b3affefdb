// What commands see of a store of assets, whatever its layout: the key-value layout over any Store (registry.ts)
// or an OCI registry's repositories and tags (oci/oci-layout.ts). Commands go through this interface only, so a
// layout is one implementation; what a layout cannot do yet it refuses with a usage error naming it.
import type { Readable } from "node:stream";
import type { AliasEntry, ChannelMoveOutcome, Promotion } from "./channels.ts";
import type { AssetMetaDocument, HashingInput, PreparedInput, Provenance, VersionMeta } from "./manifest.ts";
import type { AssetSpec, VersionSelector } from "./spec.ts";
import type { VersionIndex } from "./version-index.ts";
import type { Bump } from "./versioning.ts";
import type { ByteRange } from "../store/store.ts";
import type { TransferProgress } from "../transfer/engine.ts";

export interface Resolved {
  name: string;
  version: string;
  meta: VersionMeta;
}

/** A spec resolved to an exact version, as resolve, lock and fetch report it. */
export interface ResolvedAsset {
  spec: string;
  name: string;
  version: string;
  digest: string | null;
  size?: number;
}

export interface PublishRequest {
  name: string;
  /** Hashed, or being hashed: uploads start before hashing ends (unless `ifChanged` needs the digest first). */
  input: PreparedInput | HashingInput;
  series?: Extract<VersionSelector, { kind: "numeric" }>;
  bump?: Bump;
  version?: string;
  ifChanged?: boolean;
  createdBy: string;
  source: Provenance;
  metadata: Record<string, string>;
  /** Called as files are stored (uploaded or copied). */
  onProgress?: (progress: TransferProgress) => void;
  /** Signs the version once its files are stored: the bytes of its `.sig` (the registry knows no signature format). */
  sign?: (version: SignedVersion) => Buffer | undefined | Promise<Buffer | undefined>;
}

/** What a version's signature covers: its name, version and asset digest, and each file's path and sha256. */
export interface SignedVersion {
  name: string;
  version: string;
  digest: string;
  isDirectory: boolean;
  files: readonly { path: string; sha256: string }[];
}

export interface PublishOutcome {
  version: string;
  digest: string;
  published: boolean;
  /** Files sent from this machine. */
  uploaded: { files: number; bytes: number };
  /** Files equal to the previous version's, copied inside the store instead. */
  copied: { files: number; bytes: number };
  /** Content-addressed layout: files whose bytes the store held already (shared with other versions), neither sent nor copied. */
  kept?: { files: number; bytes: number };
}

/** Where a copied version came from: kept in its meta at the destination as `promoted_from`. */
export interface PromotedFrom {
  /** The source store's URI without credentials. */
  store: string;
  version: string;
  digest: string | null;
  at: string;
  by: string;
  run_url?: string;
}

export interface CopyVersionOutcome {
  /** False when the destination already held this version with the same digest. */
  copied: boolean;
  digest: string | null;
  /** Files copied by the service (no byte through this process) and files streamed through it. */
  serverSide: { files: number; bytes: number };
  streamed: { files: number; bytes: number };
  /** Content-addressed layout: files whose bytes the destination held already, not copied. */
  kept?: { files: number; bytes: number };
}

export interface AssetRegistry {
  /** Which layout: assetkit's on a key-value store (Registry), or an OCI registry's (OciLayout). */
  readonly kind: "store" | "oci";
  /** The store's URI without credentials: how messages, lockfiles and results name it. */
  readonly url: string;
  /** False for a read-only store (plain HTTP). */
  readonly writable: boolean;
  /** False when assets cannot be enumerated (plain HTTP): `list` then needs a name. */
  readonly listable: boolean;
  /** Whether publish takes files another store copies in itself (`copyTo` of an import from a store prefix). */
  readonly storeCopies: boolean;

  /** The committed versions of an asset, newest first, read once per command. */
  versions(name: string): Promise<VersionIndex>;
  /** A token that changes whenever what `spec` resolves to may have changed (what a watcher polls). */
  revision(spec: AssetSpec): Promise<string>;
  /** Drops what was read of an asset, so the next resolve asks the store again. */
  forget(name: string): void;
  /** Every asset, sorted by name. */
  assets(): Promise<string[]>;
  meta(name: string, version: string): Promise<VersionMeta>;
  /** The bytes of a version's signature, undefined when it is unsigned. */
  signature(name: string, version: string): Promise<Buffer | undefined>;
  /** Where a version's signature is kept, for messages (`models/m/1.0.0.sig in s3://…`). */
  signatureWhere(name: string, version: string): string;
  /** The exact version a spec names, with its meta. */
  resolve(spec: AssetSpec): Promise<Resolved>;
  /** The exact version a spec names and its meta document as stored (a sharded meta's shards listed, not read). */
  resolveDocument(spec: AssetSpec): Promise<{ name: string; version: string; document: AssetMetaDocument }>;
  /** The exact version a spec names and its digest (null: no checksums). */
  resolveDigest(spec: AssetSpec): Promise<{ name: string; version: string; digest: string | null }>;
  digestOf(name: string, version: string): Promise<string | null>;
  /** One file of a version (the transfer engine's source; it verifies what it reads against the meta). */
  openFile(name: string, version: string, relPath: string, range?: ByteRange): Promise<Readable>;
  /** Adds a version, race-free: never two versions under one number, never a half-written one visible. */
  publish(request: PublishRequest): Promise<PublishOutcome>;
  /** Copies `name:version` from another registry under the same version (promote --to). */
  copyVersion(
    source: AssetRegistry,
    name: string,
    version: string,
    promotion: Omit<PromotedFrom, "store" | "version" | "digest"> & { allowUnverified?: boolean; onProgress?: (p: TransferProgress) => void },
  ): Promise<CopyVersionOutcome>;
  /** The channels of an asset (empty when it has none). */
  aliases(name: string): Promise<{ table: Record<string, AliasEntry> }>;
  promote(name: string, alias: string, version: string, promotion: Promotion): Promise<{ previous?: string; changed: boolean }>;
  /** `expected`: the version the caller checked it goes back to; another one (the channel moved meanwhile) fails. */
  rollback(name: string, alias: string, promotion: Promotion, expected?: string): Promise<ChannelMoveOutcome>;
  /** Why an asset whose versions follow no known scheme can be neither resolved nor published onto. */
  foreignVersions(name: string, versions: string[], what: string): Error;
}
