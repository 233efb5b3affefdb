// HTTP(S) requests for the read-only HTTP store and the Hub, over Node's http and https modules, following
// redirects. Not fetch(): the undici bundled with Node 24.21 fails an assertion in its parser and ends the process
// when a server closes the connection while the reader holds the body back (any HTTP/1.0 or `Connection: close`
// server, Python's http.server among them: ~15% of 3 MiB imports crashed). Node's own parser reads such
// responses, and bodies delimited by the connection's close, as it reads any other.
import http from "node:http";
import https from "node:https";

export interface HttpRequest {
  method: "GET" | "HEAD" | "POST";
  headers?: Record<string, string>;
  /** A small request body, sent whole. */
  body?: string;
  signal?: AbortSignal;
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
  for (let hops = 0; ; hops++) {
    const res = await send(current, method, headers, body, request.signal);
    const location = res.headers.location;
    if (!REDIRECTS.has(res.statusCode!) || !location) {
      // A body nobody reads holds its connection (and keeps the process alive): a HEAD's, empty, is read here.
      if (method === "HEAD") res.resume();
      return { status: res.statusCode!, statusText: res.statusMessage ?? "", headers: res.headers, url: current, redirected: hops > 0, body: res };
    }
    res.destroy();
    if (hops >= MAX_REDIRECTS) throw Object.assign(new Error(`more than ${MAX_REDIRECTS} redirects`), { code: "ERR_TOO_MANY_REDIRECTS" });
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
  body: string | undefined,
  signal: AbortSignal | undefined,
): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const client = url.protocol === "https:" ? https : url.protocol === "http:" ? http : undefined;
    if (!client) return reject(new Error(`${url.protocol} is not http or https`));
    const req = client.request(url, {
      method,
      headers: body === undefined ? headers : { ...headers, "content-length": String(Buffer.byteLength(body)) },
      ...(signal ? { signal } : {}),
    });
    req.once("response", resolve);
    // Kept after the answer: an error once the body flows reaches the body too (the socket closes under it).
    req.on("error", reject);
    req.end(body);
  });
}

/** A header's value (the first of a repeated one), or undefined. */
export function headerOf(res: HttpResponse, name: string): string | undefined {
  const value = res.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}
