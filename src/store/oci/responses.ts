// What a registry's answers mean: a failing status (with the distribution spec's error body) as a StoreError, the
// upload Range header, and the tag list's Link header. Shared by the requests of client.ts.
import type { HttpResponse } from "../http-client.ts";
import { headerOf } from "../http-client.ts";
import { retryAfter } from "../http.ts";
import { StoreError } from "../store.ts";

/** Answers worth another try (the retry layer decides how many), honouring their Retry-After. */
export const RETRY_STATUS: ReadonlySet<number> = new Set([408, 425, 429, 500, 502, 503, 504]);
/** An error body is read up to this many bytes: enough for the spec's `{"errors":[…]}`, never a hostile flood. */
const ERROR_BODY_BYTES = 16 * 1024;

/** Network failures worth another try; any other raw error (a local file's, say) is not. */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ECONNABORTED",
  "UND_ERR_SOCKET",
]);

/**
 * The StoreError for a failing answer, its body read (bounded) for the registry's own error code and message.
 * 404 → not-found; 401/403 → auth (with `deniedHint`: what would help); 405 → unsupported (deletes disabled, as on ghcr.io); 408, 425, 429, 5xx →
 * unavailable and temporary (with Retry-After); anything else (400 DIGEST_INVALID, MANIFEST_INVALID…) → failed.
 */
export async function statusError(
  res: HttpResponse,
  method: string,
  deniedHint = "check the credentials and the repository's access rights",
): Promise<StoreError> {
  return answerError({ status: res.status, statusText: res.statusText, retryAfter: headerOf(res, "retry-after"), body: res.body }, method, deniedHint);
}

/** statusError of an answer as any client gives it: status, reason, Retry-After and the body, read here. */
export async function answerError(
  res: { status: number; statusText?: string; retryAfter?: string | undefined; body?: AsyncIterable<unknown> | undefined },
  method: string,
  deniedHint = "check the credentials and the repository's access rights",
): Promise<StoreError> {
  const detail = registryDetail(res.body ? await errorBody(res.body) : "");
  const what = `${method} answered ${res.status}${detail ? ` ${detail}` : res.statusText ? ` ${res.statusText}` : ""}`;
  switch (res.status) {
    case 404:
      return new StoreError("not-found", what);
    case 401:
    case 403:
      return new StoreError("auth", `${what}: access denied; ${deniedHint}`);
    case 405:
      return new StoreError("unsupported", `${what}: the registry does not allow this operation (deletes disabled, or not implemented)`);
  }
  if (RETRY_STATUS.has(res.status)) {
    const retryAfterMs = retryAfter(res.retryAfter);
    return new StoreError("unavailable", `${what}: the registry is failing or throttling; retry later`, {
      temporary: true,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }
  return new StoreError("failed", what);
}

/** A raw failure (no answer): the network's is temporary; an aborted try's too (its deadline passed). */
export function classifyRaw(err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const code = (err as { code?: unknown })?.code;
  if ((err as Error)?.name === "AbortError") return new StoreError("unavailable", "the request was abandoned", { temporary: true, cause: err });
  if (typeof code === "string" && NETWORK_CODES.has(code)) {
    return new StoreError("unavailable", `cannot reach the registry (${code}): check the host, the network and that the registry is up`, {
      temporary: true,
      cause: err,
    });
  }
  return new StoreError("failed", (err as Error)?.message ?? String(err), { cause: err });
}

async function errorBody(body: AsyncIterable<unknown>): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
      if (size >= ERROR_BODY_BYTES) break; // leaving the loop destroys the body
    }
  } catch {
    // a body cut short says nothing more than its status
  }
  return Buffer.concat(chunks).subarray(0, ERROR_BODY_BYTES).toString("utf8");
}

/** `CODE: message` of the first error of a distribution-spec error body, or "". */
function registryDetail(body: string): string {
  try {
    const first = (JSON.parse(body) as { errors?: { code?: unknown; message?: unknown }[] }).errors?.[0];
    if (!first) return "";
    const code = typeof first.code === "string" ? first.code : "";
    const message = typeof first.message === "string" ? first.message : "";
    return [code, message].filter(Boolean).join(": ").replace(/\s+/g, " ").slice(0, 300);
  } catch {
    return "";
  }
}

/**
 * The number of bytes an upload session holds, from its `Range: 0-<last>` header. distribution sends `0-0` for an
 * empty session as well as for one holding a byte: read as empty (a PATCH from the wrong offset is refused with
 * 416, which the chunked upload treats as a reason to ask again).
 */
export function uploadedBytes(rangeHeader: string | undefined): number {
  const range = /^(?:bytes=)?0-(\d+)$/.exec(rangeHeader?.trim() ?? "");
  if (!range) return 0;
  const last = Number(range[1]);
  return last === 0 ? 0 : last + 1;
}

/** The next page's URL from a `Link: <…>; rel="next"` header, or undefined on the last page. */
export function nextPage(res: HttpResponse): URL | undefined {
  const link = headerOf(res, "link");
  const next = link && /<([^>]+)>\s*;\s*rel="?next"?/.exec(link);
  return next ? new URL(next[1]!, res.url) : undefined;
}
