// HTTP(S) requests for the read-only HTTP store, the Hub and the OCI registry client, over Node's http and https modules, following
// redirects. Not fetch(): the undici bundled with Node 24.21 fails an assertion in its parser and ends the process
// when a server closes the connection while the reader holds the body back (any HTTP/1.0 or `Connection: close`
// server, Python's http.server among them: ~15% of 3 MiB imports crashed). Node's own parser reads such
// responses, and bodies delimited by the connection's close, as it reads any other.
import http from "node:http";
import type https from "node:https";
import { Readable } from "node:stream";

export interface HttpRequest {
  method: "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";
  headers?: Record<string, string>;
  /** A small request body, sent whole; or a stream, whose content-length the caller sets (not sent again on a redirect). */
  body?: string | Buffer | Readable;
  signal?: AbortSignal;
  /** Redirects followed before failing (default 20). */
  maxRedirects?: number;
}

export interface HttpResponse {
  status: number;
  statusText: string;
  /** Header names in lower case. */
  headers: http.IncomingHttpHeaders;
  /** The URL that answered, after redirects. */
  url: URL;
  redirected: boolean;
  /** The body: read it or destroy it, or its connection stays taken (a HEAD's, empty, is already read). */
  body: http.IncomingMessage;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 20;

/**
 * One request, redirects followed as fetch() follows them: a 303 (or a 301/302 answering a POST) becomes a GET
 * without body, and the Authorization header is not sent on to another origin (the Hub's token stays off its CDN).
 */
export async function httpRequest(url: URL, request: HttpRequest): Promise<HttpResponse> {
  let current = url;
  let { method, body } = request;
  const headers = { ...request.headers };
  const maxRedirects = request.maxRedirects ?? MAX_REDIRECTS;
  for (let hops = 0; ; hops++) {
    const res = await send(current, method, headers, body, request.signal);
    const location = res.headers.location;
    if (!REDIRECTS.has(res.statusCode!) || !location) {
      // A body nobody reads holds its connection (and keeps the process alive): a HEAD's, empty, is read here.
      if (method === "HEAD") res.resume();
      return { status: res.statusCode!, statusText: res.statusMessage ?? "", headers: res.headers, url: current, redirected: hops > 0, body: res };
    }
    res.destroy();
    if (hops >= maxRedirects) throw Object.assign(new Error(`more than ${maxRedirects} redirects`), { code: "ERR_TOO_MANY_REDIRECTS" });
    if (body instanceof Readable) throw new Error(`a redirect (${res.statusCode}) answered a streamed ${method}, whose body cannot be sent again`);
    const next = new URL(location, current);
    if (next.protocol !== "http:" && next.protocol !== "https:") throw new Error(`a redirect to ${next.protocol} (not http or https)`);
    if (next.origin !== current.origin) {
      for (const name of Object.keys(headers)) if (name.toLowerCase() === "authorization") delete headers[name];
    }
    if (res.statusCode === 303 || (method === "POST" && (res.statusCode === 301 || res.statusCode === 302))) {
      if (method !== "HEAD") method = "GET";
      body = undefined;
      for (const name of Object.keys(headers)) if (/^content-/i.test(name)) delete headers[name];
    }
    current = next;
  }
}

function send(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: string | Buffer | Readable | undefined,
  signal: AbortSignal | undefined,
): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    // https (and tls under it) loads on the first https URL: most runs never need it, and it costs start-up time.
    const client = url.protocol === "https:" ? (process.getBuiltinModule("node:https") as typeof https) : url.protocol === "http:" ? http : undefined;
    if (!client) return reject(new Error(`${url.protocol} is not http or https`));
    const sized = body === undefined || body instanceof Readable ? headers : { ...headers, "content-length": String(Buffer.byteLength(body)) };
    const req = client.request(url, { method, headers: sized, ...(signal ? { signal } : {}) });
    req.once("response", resolve);
    // Kept after the answer: an error once the body flows reaches the body too (the socket closes under it).
    req.on("error", reject);
    if (body instanceof Readable) {
      // A failing body fails the request with its own error (a source store's, say), not a bare "socket hang up".
      body.once("error", (err) => req.destroy(err));
      body.pipe(req);
    } else req.end(body);
  });
}

/** A header's value (the first of a repeated one), or undefined. */
export function headerOf(res: HttpResponse, name: string): string | undefined {
  const value = res.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}
