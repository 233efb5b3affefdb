// sync: keeps the versions specs name (usually channels, name:production) live in a dir on a serving machine.
// Each asset gets <dir>/<name>/current, switched atomically to a new version only once that version is complete
// and verified; the previous `keep` versions stay for in-flight readers and rollback. With a watch interval it
// keeps running: an unchanged store costs one HEAD per spec and poll, a failing store never touches what is
// served (errors are logged, polls back off), and the next good poll catches up.
import { realpath } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import pMap from "p-map";
import { Limiter } from "../store/limiter.ts";
import type { OpenFile, TrustRecord } from "../local/assets-dir.ts";
import type { Context } from "./context.ts";
import { AssetError, UsageError } from "../base/errors.ts";
import { verifyInPlace } from "../local/in-place.ts";
import type { VersionMeta } from "../registry/manifest.ts";
import { runOnChange, sendSignal, type SignalTarget } from "../local/serving/hooks.ts";
import { ServedDir } from "../local/serving/served-dir.ts";
import { writeStatusFile, type ServedStatus } from "../local/serving/status.ts";
import type { AssetSpec } from "../registry/spec.ts";
import { inPlaceRoot } from "./fetch-in-place.ts";
import { checkTrusted, parseSpecs, specsOrDefaults, trustRecord } from "./resolution.ts";

const SPEC_CONCURRENCY = 4;
/** Failing polls back off exponentially up to this (or the interval, when longer). */
const MAX_BACKOFF_MS = 60_000;

export interface SyncOptions {
  dir: string;
  /** Previous versions kept beside the current one. */
  keep: number;
  /** Poll interval in ms; without it, one pass. */
  watchMs?: number;
  /** Serve a local or mounted store's own files (checked once), copying nothing. */
  inPlace?: boolean;
  statusFile?: string;
  /** A shell command run after each swap, with ASSETKIT_SPEC/_NAME/_VERSION/_DIGEST/_PATH/_CURRENT/_PREVIOUS set. */
  onChange?: string;
  signals?: SignalTarget[];
  /**
   * Aborted (with an AssetError saying why) to stop, e.g. on SIGTERM: downloads in progress are abandoned and
   * their temporary files removed; nothing is swapped. A watch then ends normally; a single pass fails.
   */
  stop?: AbortSignal;
}

/** What a sync reports per spec (the status file has more: checks and errors). */
export type SyncedAsset = Pick<ServedStatus, "spec" | "name" | "version" | "digest" | "path" | "current">;

interface Target {
  spec: string;
  parsed: AssetSpec;
  status: ServedStatus;
  /** The store's revision for this spec when it was last handled (served, or found unservable). */
  revision?: string;
  /** What the spec names at `revision` cannot be served (it failed its checks): not retried until the store changes. */
  unservable?: boolean;
  failure?: unknown;
  /** The pin of the trust policy the served version passed under in this process (see recheckServed). */
  recheckedUnder?: string;
}

export async function syncCommand(ctx: Context, specs: string[], options: SyncOptions): Promise<{ synced: SyncedAsset[] }> {
  const wanted = parseSpecs(specsOrDefaults(ctx, specs, undefined));
  if (wanted.length === 0) throw new UsageError("nothing to sync: give specs, or list them under assets: in assetkit.yml");
  const names = wanted.map((w) => w.parsed.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw new UsageError(`${twice} is named by two specs: one sync serves one version of each asset (its 'current' link)`);
  const storeRoot = options.inPlace ? inPlaceRoot(ctx) : undefined;
  const served = new ServedDir(ctx.assetsDirAt(options.dir));
  const { stop } = options;
  // Stops the work: the caller's stop (SIGTERM), or a watch that failed unexpectedly.
  const halt = new AbortController();
  if (stop?.aborted) halt.abort(stop.reason);
  stop?.addEventListener("abort", () => halt.abort(stop.reason), { once: true });

  const targets: Target[] = await Promise.all(
    wanted.map(async ({ spec, parsed }) => {
      const current = served.linkOf(parsed.name);
      const state = await served.state(parsed.name);
      const status: ServedStatus = {
        spec,
        name: parsed.name,
        version: state?.version ?? null,
        digest: state?.digest ?? null,
        path: state ? await realPath(current) : null,
        current,
        swappedAt: null,
        lastSuccess: null,
        lastCheck: null,
        lastError: null,
        ok: false,
      };
      return { spec, parsed, status };
    }),
  );

  /** Brings `version` in (downloaded and verified, or checked in place), swaps `current` to it, tells the server. */
  const bring = async (t: Target, version: string, meta: VersionMeta, trust: TrustRecord | undefined): Promise<void> => {
    const started = Date.now();
    const { name, subPath } = t.parsed;
    const what = `${name}:${version}`;
    const versionPath = storeRoot
      ? (await verifyInPlace(storeRoot, served.assets.root, name, version, meta, subPath)).path
      : (
          await served.assets.materialise(
            name,
            version,
            meta,
            stoppable((rel, range) => ctx.registry.openFile(name, version, rel, range), halt.signal),
            subPath,
            (p) => ctx.reporter.progress?.(p.bytes, p.totalBytes, what, { done: p.files, total: p.totalFiles }),
            trust,
          )
        ).path;
    const digest = meta.digest ?? null;
    const { before, changed } = await served.swap(name, { spec: t.spec, version, digest, target: served.targetFor(name, versionPath) }, options.keep);
    const previous = t.status.version;
    Object.assign(t.status, { version, digest, path: versionPath, swappedAt: new Date().toISOString() });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    ctx.reporter.info(
      changed
        ? `swapped ${name}: ${before?.version ?? "(none)"} → ${version} (${digest ?? "no digest"}) in ${seconds} s`
        : `serving ${name}: ${previous ?? "(none)"} → ${version} (${digest ?? "no digest"}), swapped by another sync of ${served.assets.root}`,
    );
    if (previous === version) return;
    const env = {
      ASSETKIT_SPEC: t.spec,
      ASSETKIT_NAME: name,
      ASSETKIT_VERSION: version,
      ASSETKIT_DIGEST: digest ?? "",
      ASSETKIT_PATH: versionPath,
      ASSETKIT_CURRENT: t.status.current,
      ASSETKIT_PREVIOUS: previous ?? "",
    };
    const problems = [options.onChange ? await runOnChange(options.onChange, env) : undefined, ...(options.signals ?? []).map(sendSignal)];
    for (const problem of problems) if (problem) ctx.reporter.warn(`${t.spec}: ${problem}`);
  };

  /**
   * The served version, checked once under a policy its copy was not verified under (one brought in before the
   * policy existed, or changed): recorded in its marker when it passes, so later polls and restarts cost nothing.
   * When it fails it is not removed (that would stop the service with nothing to replace it), but the spec is
   * failed: a single pass exits 1, a watch records the error and `ok: false` until a version that passes is served.
   */
  const recheckServed = async (t: Target, version: string, meta: VersionMeta): Promise<void> => {
    const policy = ctx.config.trust;
    if (!policy || t.recheckedUnder === policy.pin) return;
    const { name, subPath } = t.parsed;
    if ((await served.assets.localCopy(name, version, subPath))?.trust === policy.pin) return;
    const trusted = await checkTrusted(
      ctx,
      name,
      version,
      meta,
      `served before this trust policy required it: still serving it until a version that passes is served`,
    );
    t.recheckedUnder = policy.pin;
    await served.assets.recordTrust(name, version, subPath, trustRecord(trusted)!);
  };

  // Versions brought in at once, as a pass without --watch does: every watch's first check finds a version to bring
  // in, and 100 assets downloading together peaked at 160 MiB (folder store; 232 against MinIO), 4 at a time ~105.
  // Checks are not held back, only downloads.
  const bringing = new Limiter(SPEC_CONCURRENCY);

  /** One check of one spec. True when it failed in a way worth retrying soon (store down); the error is recorded either way. */
  const check = async (t: Target): Promise<boolean> => {
    let revision: string | undefined;
    try {
      revision = await ctx.registry.revision(t.parsed);
      if (revision !== t.revision) {
        ctx.registry.forget(t.parsed.name);
        const { version, meta } = await ctx.registry.resolve(t.parsed);
        if (version !== t.status.version || (meta.digest ?? null) !== t.status.digest) {
          // Only a version about to be brought in is checked: one that is served already costs nothing per poll.
          const trusted = await checkTrusted(ctx, t.parsed.name, version, meta, `not brought in, still serving ${t.status.version ?? "nothing"}`);
          await bringing.run(() => bring(t, version, meta, trustRecord(trusted)));
        } else await recheckServed(t, version, meta);
        t.revision = revision;
        t.unservable = false;
      }
      const now = new Date().toISOString();
      t.status.lastCheck = now;
      if (!t.unservable) Object.assign(t.status, { lastSuccess: now, lastError: null, ok: true });
      t.failure = undefined;
      return false;
    } catch (err) {
      if (halt.signal.aborted) throw halt.signal.reason;
      const at = new Date().toISOString();
      const message = (err as Error).message;
      Object.assign(t.status, { lastCheck: at, lastError: { at, message }, ok: false });
      t.failure = err;
      if (options.watchMs !== undefined) ctx.reporter.warn(message.startsWith(t.spec) ? message : `${t.spec}: ${message}`); // a single pass throws it
      // A version that fails its checks (or a spec naming nothing) stays so until the store changes: not retried before.
      if ((err instanceof AssetError || err instanceof UsageError) && revision !== undefined) {
        t.revision = revision;
        t.unservable = true;
        return false;
      }
      return true;
    }
  };

  const report = async (): Promise<void> => {
    if (options.statusFile)
      await writeStatusFile(
        options.statusFile,
        targets.map((t) => t.status),
      );
  };

  /** One spec's watch: its own polls and backoff, so a long download of one asset delays no other's checks. */
  const watch = async (t: Target, watchMs: number): Promise<void> => {
    for (let failures = 0; ;) {
      failures = (await check(t)) ? failures + 1 : 0;
      await report();
      const delay = failures === 0 ? watchMs : Math.min(Math.max(MAX_BACKOFF_MS, watchMs), watchMs * 2 ** failures);
      if (failures > 0)
        ctx.reporter.warn(
          `${t.spec}: the store could not be checked (${failures} time(s) in a row): still serving what was there; next try in ${(delay / 1000).toFixed(1)} s`,
        );
      if (await sleep(delay, false, { signal: halt.signal }).catch(() => true)) return;
    }
  };

  if (options.watchMs === undefined) {
    try {
      await pMap(targets, check, { concurrency: SPEC_CONCURRENCY });
    } finally {
      await report();
    }
    const failed = targets.find((t) => t.failure !== undefined);
    if (failed) throw failed.failure;
  } else {
    const { watchMs } = options;
    const ends = await Promise.allSettled(
      targets.map((t) =>
        watch(t, watchMs).catch((err: unknown) => {
          halt.abort(err); // an unexpected failure (the status file cannot be written) ends every watch
          throw err;
        }),
      ),
    );
    const failure = ends.find((e) => e.status === "rejected");
    if (failure && !stop?.aborted) throw failure.reason; // stopped (mid-download or not): a watch ends normally
  }
  return { synced: targets.map(({ status: { spec, name, version, digest, path, current } }) => ({ spec, name, version, digest, path, current })) };
}

/** Opens files until `stop` is aborted; then open streams fail with its reason (an AssetError: not retried). */
function stoppable(open: OpenFile, stop: AbortSignal): OpenFile {
  return async (relPath, range) => {
    stop.throwIfAborted();
    const stream = await open(relPath, range);
    const abort = (): void => void stream.destroy(stop.reason as Error);
    if (stop.aborted) abort();
    else {
      stop.addEventListener("abort", abort, { once: true });
      stream.once("close", () => stop.removeEventListener("abort", abort));
    }
    return stream;
  };
}

async function realPath(link: string): Promise<string | null> {
  return realpath(link).catch(() => null);
}
