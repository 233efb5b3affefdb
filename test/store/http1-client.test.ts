// The hand-written HTTP/1.1 client (src/store/http1-client.ts) against real local servers: node:http, a raw TCP
// server for answers node:http would never send, and a TLS server with a certificate made by openssl for the run.
// The S3 store's use of it runs in the conformance and fault suites on MinIO; these are the edges they do not reach.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Readable } from "node:stream";
import tls from "node:tls";
import { after, before, describe, it } from "node:test";
import { pumpChunks, takesChunks } from "../../src/store/chunk-body.ts";
import { Http1Client } from "../../src/store/http1-client.ts";

const OPTIONS = { maxIdle: 4, connectionTimeoutMs: 2_000, socketTimeoutMs: 2_000 };
const DATA = randomBytes(3 * 1024 * 1024 + 17);

async function listen(server: net.Server): Promise<string> {
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

/** Reads a body by views (copying each, as the contract asks) or as a stream. */
async function readAll(body: Readable, byViews: boolean): Promise<Buffer> {
  const chunks: Buffer[] = [];
  if (byViews) {
    assert.ok(takesChunks(body));
    await pumpChunks(body, (chunk) => void chunks.push(Buffer.from(chunk)));
  } else {
    for await (const chunk of body) chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

describe("Http1Client over node:http", () => {
  let server: http.Server;
  let host: string;
  let connections = 0;
  const stored = new Map<string, Buffer>();
  before(async () => {
    server = http.createServer((req, res) => {
      if (req.method === "PUT" || req.method === "PATCH" || req.method === "POST") {
        const chunks: Buffer[] = [];
        req.on("data", (chunk: Buffer) => chunks.push(chunk));
        req.on("end", () => {
          stored.set(req.url!, Buffer.concat(chunks));
          res.writeHead(200, { "content-length": "0" }).end();
        });
        return;
      }
      if (stored.has(req.url!)) {
        res.writeHead(200, { "content-length": String(stored.get(req.url!)!.length) }).end(stored.get(req.url!));
        return;
      }
      if (req.url === "/chunked") {
        res.write("not");
        res.end(" this way");
        return;
      }
      if (req.url === "/missing") {
        res.writeHead(404, { "content-length": "9" }).end("not found");
        return;
      }
      const range = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? "");
      const body = range ? DATA.subarray(Number(range[1]), Number(range[2]) + 1) : DATA;
      res.writeHead(range ? 206 : 200, { "content-length": String(body.length) }).end(body);
    });
    server.keepAliveTimeout = 300;
    server.on("connection", () => connections++);
    host = await listen(server);
  });
  after(() => server.close());

  for (const byViews of [true, false]) {
    it(`reads whole objects and ranges ${byViews ? "by views" : "as a stream"}, over one kept-alive connection`, async () => {
      const client = new Http1Client(OPTIONS);
      const before = connections;
      const whole = await client.request("GET", new URL(`http://${host}`), "/o", { host });
      assert.equal(whole.status, 200);
      assert.ok((await readAll(whole.body!, byViews)).equals(DATA));
      const ranged = await client.request("GET", new URL(`http://${host}`), "/o", { host, range: "bytes=100-1048675" });
      assert.equal(ranged.status, 206);
      assert.ok((await readAll(ranged.body!, byViews)).equals(DATA.subarray(100, 1048676)));
      assert.equal(connections - before, 1, "the second GET reused the first connection");
    });
  }

  it("PUTs a body, and reads it back over the same connection (an empty answer frees it at once)", async () => {
    const client = new Http1Client(OPTIONS);
    const before = connections;
    const body = randomBytes(70_000);
    const put = await client.request("PUT", new URL(`http://${host}`), "/put/a", { host, "content-length": String(body.length) }, { body });
    assert.equal(put.status, 200);
    assert.equal((await readAll(put.body!, true)).length, 0);
    const back = await client.request("GET", new URL(`http://${host}`), "/put/a", { host });
    assert.ok((await readAll(back.body!, false)).equals(body));
    assert.equal(connections - before, 1);
  });

  it("sends a range of a file as a PATCH body (over several reads) and a whole small one as a POST's; HEADs answer without a body, over the same connection", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "assetkit-http1-"));
    const file = path.join(dir, "data.bin");
    await writeFile(file, DATA);
    const client = new Http1Client(OPTIONS);
    const before = connections;
    const range = { file, start: 17, end: DATA.length - 1 }; // 3 MiB: more reads than the client has buffers
    const patch = await client.request("PATCH", new URL(`http://${host}`), "/put/f", { host, "content-length": String(DATA.length - 17) }, { body: range });
    assert.equal(patch.status, 200);
    await readAll(patch.body!, true);
    assert.ok(stored.get("/put/f")!.equals(DATA.subarray(17)));
    const small = { file, start: 0, end: 99 };
    const post = await client.request("POST", new URL(`http://${host}`), "/put/s", { host, "content-length": "100" }, { body: small });
    await readAll(post.body!, true);
    assert.ok(stored.get("/put/s")!.equals(DATA.subarray(0, 100)));
    const head = await client.request("HEAD", new URL(`http://${host}`), "/put/s", { host });
    assert.deepEqual([head.status, head.length], [200, 100]);
    assert.equal((await readAll(head.body!, true)).length, 0);
    const absent = await client.request("HEAD", new URL(`http://${host}`), "/missing", { host }, { errorBody: true });
    assert.equal(absent.status, 404);
    await readAll(absent.body!, true);
    assert.equal(connections - before, 1, "every request went over the first connection");
  });

  it("with errorBody, a failing answer comes with its body; a file that is shorter than its range fails the request with its own error", async () => {
    const client = new Http1Client(OPTIONS);
    const missing = await client.request("GET", new URL(`http://${host}`), "/missing", { host }, { errorBody: true });
    assert.equal(missing.status, 404);
    assert.equal((await readAll(missing.body!, false)).toString(), "not found");
    const dir = await mkdtemp(path.join(tmpdir(), "assetkit-http1-"));
    const file = path.join(dir, "short.bin");
    await writeFile(file, "12345");
    await assert.rejects(
      client.request("PUT", new URL(`http://${host}`), "/put/short", { host, "content-length": "10" }, { body: { file, start: 0, end: 9 } }),
      /short\.bin ends before byte 10/,
    );
  });

  it("a kept-alive connection the server closed meanwhile: the next GET goes over a new one", async () => {
    const client = new Http1Client(OPTIONS);
    await readAll((await client.request("GET", new URL(`http://${host}`), "/o", { host })).body!, true);
    await new Promise((r) => setTimeout(r, 600)); // past the server's keep-alive timeout
    const again = await client.request("GET", new URL(`http://${host}`), "/o", { host });
    assert.ok((await readAll(again.body!, true)).equals(DATA));
  });

  it("answers it does not read (chunked, an error status) come back without a body", async () => {
    const client = new Http1Client(OPTIONS);
    assert.deepEqual(await client.request("GET", new URL(`http://${host}`), "/chunked", { host }), { status: 200 });
    assert.deepEqual(await client.request("GET", new URL(`http://${host}`), "/missing", { host }), { status: 404 });
  });

  it("a consumer's failure ends the read with that failure and closes the connection", async () => {
    const client = new Http1Client(OPTIONS);
    const { body } = await client.request("GET", new URL(`http://${host}`), "/o", { host });
    await assert.rejects(
      pumpChunks(body!, () => {
        throw new Error("disk full");
      }),
      /disk full/,
    );
  });

  it("an aborted GET fails with the abort's reason", async () => {
    const client = new Http1Client(OPTIONS);
    const controller = new AbortController();
    const { body } = await client.request("GET", new URL(`http://${host}`), "/o", { host }, { signal: controller.signal });
    let taken = 0;
    await assert.rejects(
      pumpChunks(body!, (chunk) => {
        taken += chunk.length;
        controller.abort(new Error("cancelled by the caller"));
        return undefined;
      }),
      /cancelled by the caller/,
    );
    assert.ok(taken < DATA.length);
  });
});

describe("Http1Client against answers node:http would not send (raw TCP server)", () => {
  let server: net.Server;
  let host: string;
  let answer: (socket: net.Socket) => void = () => undefined;
  before(async () => {
    server = net.createServer((socket) => socket.once("data", () => answer(socket)));
    host = await listen(server);
  });
  after(() => server.close());

  it("a body cut short: the read fails as a reset (so the transfer engine resumes it)", async () => {
    answer = (socket) => socket.end("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this");
    const { body } = await new Http1Client(OPTIONS).request("GET", new URL(`http://${host}`), "/o", { host });
    await assert.rejects(readAll(body!, true), (err: NodeJS.ErrnoException) => err.code === "ECONNRESET");
  });

  it("a response head split over several reads is put together", async () => {
    answer = (socket) => {
      socket.write("HTTP/1.1 200 OK\r\nContent-Le");
      setTimeout(() => socket.write("ngth: 5\r\n\r"), 50);
      setTimeout(() => socket.write("\nhel"), 100);
      setTimeout(() => socket.write("lo"), 150);
    };
    const { status, body } = await new Http1Client(OPTIONS).request("GET", new URL(`http://${host}`), "/o", { host });
    assert.equal(status, 200);
    assert.equal((await readAll(body!, true)).toString(), "hello");
  });

  it("more bytes than the Content-Length: refused", async () => {
    answer = (socket) => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n0123456789");
    const { body } = await new Http1Client(OPTIONS).request("GET", new URL(`http://${host}`), "/o", { host });
    await assert.rejects(readAll(body!, true), /more than the 4 bytes/);
  });

  it("reads the headers it needs whatever their case, spacing and order, among many others", async () => {
    const others = Array.from({ length: 12 }, (_, i) => `X-Other-${i}: e, t, c; content-length: 99\r\n`).join("");
    answer = (socket) => socket.end(`HTTP/1.1 200 OK\r\n${others}eTaG:  "abc-1" \r\nCONTENT-LENGTH:2\r\nconnection: Close\r\n\r\nok`);
    const ok = await new Http1Client(OPTIONS).request("GET", new URL(`http://${host}`), "/o", { host });
    assert.deepEqual([ok.status, ok.length, ok.etag], [200, 2, '"abc-1"']);
    assert.equal((await readAll(ok.body!, true)).toString(), "ok");
    answer = (socket) => socket.end("HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nRetry-After:  7\r\nContent-Length: 0\r\n\r\n");
    assert.deepEqual(await new Http1Client(OPTIONS).request("GET", new URL(`http://${host}`), "/o", { host }), { status: 503, retryAfter: "7" });
    answer = (socket) => socket.end("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\nok");
    assert.deepEqual(await new Http1Client(OPTIONS).request("GET", new URL(`http://${host}`), "/o", { host }), { status: 200 }, "chunked is not read here");
  });

  it("Connection: close is honoured: the next GET opens a new connection", async () => {
    let opened = 0;
    server.on("connection", () => opened++);
    answer = (socket) => socket.end("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    const client = new Http1Client(OPTIONS);
    for (let i = 0; i < 2; i++)
      assert.equal((await readAll((await client.request("GET", new URL(`http://${host}`), "/o", { host })).body!, false)).toString(), "ok");
    assert.equal(opened, 2);
  });

  it("no answer: the request fails after the socket timeout", async () => {
    answer = () => undefined;
    const started = Date.now();
    await assert.rejects(
      new Http1Client({ ...OPTIONS, socketTimeoutMs: 300 }).request("GET", new URL(`http://${host}`), "/o", { host }),
      (err: NodeJS.ErrnoException) => err.code === "ETIMEDOUT",
    );
    assert.ok(Date.now() - started < 5_000, "a hang guard, not a speed check");
  });
});

describe("Http1Client over TLS (a certificate made by openssl for this run)", () => {
  let server: tls.Server;
  let host: string;
  let ca: Buffer;
  before(async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "assetkit-tls-"));
    const [key, cert] = [path.join(dir, "key.pem"), path.join(dir, "cert.pem")];
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key,
        "-out",
        cert,
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost",
      ],
      { stdio: "ignore" },
    );
    ca = await readFile(cert);
    server = tls.createServer({ key: await readFile(key), cert: ca }, (socket) =>
      socket.once("data", () => socket.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${DATA.length}\r\n\r\n`), DATA]))),
    );
    host = (await listen(server)).replace("127.0.0.1", "localhost");
  });
  after(() => server.close());

  it("reads a body by views over TLS, checking the server's certificate", async () => {
    // Trust the run's certificate the way NODE_EXTRA_CA_CERTS would: through the default CA list (Node ≥ 22.19).
    const { setDefaultCACertificates, getCACertificates } = tls as unknown as {
      setDefaultCACertificates: (certs: (string | Buffer)[]) => void;
      getCACertificates: (kind: string) => string[];
    };
    const saved = getCACertificates("default");
    setDefaultCACertificates([...saved, ca.toString()]);
    try {
      const { status, body } = await new Http1Client(OPTIONS).request("GET", new URL(`https://${host}`), "/o", { host });
      assert.equal(status, 200);
      assert.ok((await readAll(body!, true)).equals(DATA));
    } finally {
      setDefaultCACertificates(saved);
    }
  });

  it("an untrusted certificate is refused", async () => {
    await assert.rejects(new Http1Client(OPTIONS).request("GET", new URL(`https://${host}`), "/o", { host }), /self-signed|certificate/i);
  });
});
