// The OMS in-toto statement (model_signing's `https://model_signing/signature/v1.0`, files serialization, sha256):
// built from a version's meta without reading a file, parsed back, and checked against a meta or hashed files.
import { createHash } from "node:crypto";
import { AssetError } from "../base/errors.ts";
import { comparePaths } from "../registry/paths.ts";
import { isObject } from "./json.ts";

export const STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
export const OMS_PREDICATE_TYPE = "https://model_signing/signature/v1.0";

/** assetkit's completion marker inside a fetched folder version: ignored so that model_signing verifies the folder as fetched. */
const IGNORED_IN_FOLDER = [".SUCCESS"];

const SHA256_HEX = /^[0-9a-f]{64}$/;

export interface OmsResource {
  /** POSIX path relative to the folder; "." for a single file. */
  name: string;
  algorithm: "sha256";
  digest: string;
}

/** What assetkit adds to bind a statement to one version: model_signing ignores it, assetkit requires it (by default). */
export interface VersionBinding {
  name: string;
  version: string;
  /** The meta's asset digest, `sha256:<hex>`: it covers sizes and part hashes, which OMS does not list. */
  digest: string;
}

export interface OmsStatement {
  _type: typeof STATEMENT_TYPE;
  subject: [{ name: string; digest: { sha256: string } }];
  predicateType: typeof OMS_PREDICATE_TYPE;
  predicate: {
    serialization: { method: "files"; hash_type: "sha256"; allow_symlinks: false; ignore_paths: string[] };
    resources: OmsResource[];
    assetkit?: VersionBinding;
  };
}

/** The files a statement is compared with: a meta's, or a local input's as hashed. */
export interface SignedContent {
  isDirectory: boolean;
  files: readonly { path: string; sha256?: string }[];
}

/** model_signing's resource order (PurePosixPath): segment by segment, so "a/b" < "a-b" < "a.txt". */
export function compareResourceNames(a: string, b: string): number {
  const x = a.split("/");
  const y = b.split("/");
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const c = comparePaths(x[i]!, y[i]!);
    if (c !== 0) return c;
  }
  return x.length - y.length;
}

/** sha256 over the resources' raw digests in the order listed, as model_signing computes the subject digest. */
function subjectDigest(resources: readonly OmsResource[]): string {
  const hash = createHash("sha256");
  for (const r of resources) hash.update(Buffer.from(r.digest, "hex"));
  return hash.digest("hex");
}

function resourceName(path: string): string {
  return path === "" ? "." : path;
}

/** The statement signing a version: one resource per meta file, the subject `name:version`, and the binding block. */
export function statementOf(content: SignedContent, binding: VersionBinding): OmsStatement {
  const resources = content.files
    .map((f): OmsResource => {
      if (!f.sha256) throw new AssetError(`${binding.name}:${binding.version} cannot be signed: its meta has no sha256 for ${f.path || "its file"}`);
      return { name: resourceName(f.path), algorithm: "sha256", digest: f.sha256 };
    })
    .sort((a, b) => compareResourceNames(a.name, b.name));
  return {
    _type: STATEMENT_TYPE,
    subject: [{ name: `${binding.name}:${binding.version}`, digest: { sha256: subjectDigest(resources) } }],
    predicateType: OMS_PREDICATE_TYPE,
    predicate: {
      serialization: { method: "files", hash_type: "sha256", allow_symlinks: false, ignore_paths: content.isDirectory ? IGNORED_IN_FOLDER : [] },
      resources,
      assetkit: { name: binding.name, version: binding.version, digest: binding.digest },
    },
  };
}

/**
 * A statement from a DSSE payload, checked for the form assetkit can compare with a meta (files, sha256) and for
 * a subject digest consistent with its resources. `bad(why)` throws the caller's error.
 */
export function parseStatement(payload: Buffer, bad: (why: string) => never): OmsStatement {
  let s: unknown;
  try {
    s = JSON.parse(payload.toString("utf8"));
  } catch {
    return bad("holds a statement that is not JSON");
  }
  if (!isObject(s) || s._type !== STATEMENT_TYPE) bad(`holds no in-toto statement (${STATEMENT_TYPE})`);
  const st = s as Record<string, unknown>;
  if (st.predicateType !== OMS_PREDICATE_TYPE) bad(`has predicate type ${JSON.stringify(st.predicateType)}, not ${OMS_PREDICATE_TYPE}`);
  const subject = st.subject;
  if (!Array.isArray(subject) || subject.length !== 1 || !isObject(subject[0]) || !isObject(subject[0].digest)) bad("does not have exactly one subject");
  const subjectSha = (subject as [{ digest: Record<string, unknown> }])[0].digest.sha256;
  if (typeof subjectSha !== "string" || !SHA256_HEX.test(subjectSha)) bad("has a subject without a sha256 digest");
  const predicate = st.predicate;
  if (!isObject(predicate) || !isObject(predicate.serialization) || !Array.isArray(predicate.resources))
    bad("has a predicate without serialization or resources");
  const { method, hash_type: hashType } = (predicate as { serialization: Record<string, unknown> }).serialization;
  if (method !== "files" || hashType !== "sha256") {
    bad(
      `uses ${String(method)} serialization with ${String(hashType)}, which assetkit cannot compare with a meta: re-sign with model_signing's default serialization (files, sha256)`,
    );
  }
  const names = new Set<string>();
  for (const r of (predicate as { resources: unknown[] }).resources) {
    if (!isObject(r) || typeof r.name !== "string" || r.algorithm !== "sha256" || typeof r.digest !== "string" || !SHA256_HEX.test(r.digest)) {
      bad("lists a resource that is not a name with a sha256 digest");
    }
    const name = (r as { name: string }).name;
    if (names.has(name)) bad(`lists ${name} twice`);
    names.add(name);
  }
  const statement = s as unknown as OmsStatement;
  if (subjectDigest(statement.predicate.resources) !== subjectSha) bad("has a subject digest that does not match its resources");
  const binding = statement.predicate.assetkit;
  if (
    binding !== undefined &&
    (!isObject(binding) || typeof binding.name !== "string" || typeof binding.version !== "string" || typeof binding.digest !== "string")
  ) {
    bad("has an assetkit binding that is not a name, version and digest");
  }
  return statement;
}

/** The first difference between the statement's resources and the files (same paths, same sha256), or undefined. */
export function contentDifference(statement: OmsStatement, content: SignedContent): string | undefined {
  const signed = new Map(statement.predicate.resources.map((r) => [r.name, r.digest]));
  for (const f of content.files) {
    const name = content.isDirectory ? f.path : ".";
    const digest = signed.get(name);
    if (digest === undefined) return `${name} is not signed`;
    if (digest !== f.sha256) return `${name}: sha256 ${f.sha256 ?? "unknown"}, signed ${digest}`;
    signed.delete(name);
  }
  const [extra] = signed.keys();
  return extra === undefined ? undefined : `${extra} is signed but not in the version`;
}

/** Why the statement's binding does not name this version, or undefined; a statement without one passes only when `required` is false. */
export function bindingDifference(statement: OmsStatement, expected: VersionBinding, required: boolean): string | undefined {
  const bound = statement.predicate.assetkit;
  if (!bound) return required ? "does not name a version (a model_signing signature binds content only: allow it with version-binding: content)" : undefined;
  if (bound.name !== expected.name || bound.version !== expected.version) return `is for ${bound.name}:${bound.version}`;
  if (bound.digest !== expected.digest) return `is for asset digest ${bound.digest}, not ${expected.digest}`;
  return undefined;
}
