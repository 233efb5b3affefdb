// The error-context layer: every failure leaves a store as a StoreError with one message format, naming the store,
// the operation, the key and the cause, `${store}: cannot ${operation} ${key}: ${cause}`, with every credential
// scrubbed from the message, the cause and the stacks (--debug prints them).
import { scrub } from "../redact.ts";
import { StoreError, type Backend, type StoreOp } from "../store.ts";

/** What the context needs of a backend (or of any client that classifies its own failures). */
export type ErrorSource = Pick<Backend, "url" | "classify" | "secrets">;

export class ErrorContext {
  private readonly backend: ErrorSource;

  constructor(backend: ErrorSource) {
    this.backend = backend;
  }

  /** `err` (raw, or a backend's StoreError) as a StoreError of `op` on `key`; `what` is how messages say it ("read k"). */
  wrap(err: unknown, op: StoreOp, what: string, key?: string): StoreError {
    if (err instanceof StoreError && err.op !== undefined) return err; // in context already
    const classified = err instanceof StoreError ? err : this.backend.classify(err);
    const secrets = this.backend.secrets();
    const detail = classified.message.replace(/\s+/g, " ").trim();
    const message = scrub(`${this.backend.url}: cannot ${what}: ${detail}`, secrets);
    const rawCause = err instanceof StoreError ? err.cause : err;
    const out = new StoreError(classified.code, message, {
      temporary: classified.temporary,
      ...(classified.retryAfterMs !== undefined ? { retryAfterMs: classified.retryAfterMs } : {}),
      ...(rawCause !== undefined ? { cause: sanitised(rawCause, secrets) } : {}),
    });
    out.op = op;
    out.key = key;
    return out;
  }
}

/**
 * SDK errors carry request configurations, Authorization headers included: a cause keeps only its name, code,
 * HTTP status and scrubbed message and stack.
 */
function sanitised(err: unknown, secrets: readonly string[]): Error {
  const source = err as {
    name?: unknown;
    message?: unknown;
    stack?: unknown;
    code?: unknown;
    status?: unknown;
    statusCode?: unknown;
    $metadata?: { httpStatusCode?: unknown };
  };
  const message = typeof source?.message === "string" ? source.message : String(err);
  const out = new Error(scrub(message.replace(/\s+/g, " ").trim(), secrets));
  out.name = typeof source?.name === "string" ? source.name : "Error";
  out.stack = typeof source?.stack === "string" ? scrub(source.stack, secrets) : `${out.name}: ${out.message}`;
  const status = source?.status ?? source?.statusCode ?? source?.$metadata?.httpStatusCode;
  if (typeof source?.code === "string" || typeof source?.code === "number") Object.assign(out, { code: source.code });
  if (typeof status === "number") Object.assign(out, { status });
  return out;
}
