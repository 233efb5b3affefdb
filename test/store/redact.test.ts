// No store URI's query value, user:pass, SAS or token is printed by any error path on any scheme, --debug
// included; URIs are read by one rule set (bad percent-escapes, credentials and unknown parameters are usage errors).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import path from "node:path";
import { describe, it } from "node:test";
import { redactUri, scrub, uriSecrets, uriWithoutQuery } from "../../src/store/redact.ts";
import { cleanEnv, runCli, scratch } from "../helpers/cli.ts";
import { closedPort } from "../helpers/fault-proxy.ts";

/** Small budgets, so unreachable stores fail at once. */
const QUICK = { ASSETKIT_RETRIES: "1", ASSETKIT_IDLE_TIMEOUT: "2", ASSETKIT_TIMEOUT: "10" };

describe("secrets in store URIs", () => {
  it("are never printed, with or without --debug, whatever the scheme", async () => {
    const port = await closedPort();
    const cases: { uri: string; secret: string; code: 1 | 2 }[] = [
      { uri: "s3://b/p?sig=SECRET-s3-sig", secret: "SECRET-s3-sig", code: 2 },
      { uri: "gs://b/p?sig=SECRET-gs-sig", secret: "SECRET-gs-sig", code: 2 },
      { uri: "az://c/p?sig=SECRET-az-sig", secret: "SECRET-az-sig", code: 2 },
      { uri: "s3://user:SECRET-s3-pass@b/p", secret: "SECRET-s3-pass", code: 2 },
      { uri: "gs://user:SECRET-gs-pass@b/p", secret: "SECRET-gs-pass", code: 2 },
      { uri: "az://user:SECRET-az-pass@c/p", secret: "SECRET-az-pass", code: 2 },
      { uri: `s3://b/p?endpoint=http://u:SECRET-endpoint@127.0.0.1:${port}`, secret: "SECRET-endpoint", code: 2 },
      { uri: `http://reader:SECRET-http-pass@127.0.0.1:${port}/p?token=SECRET-http-token`, secret: "SECRET-http", code: 1 },
      { uri: `https://acct0assetkit.blob.core.windows.net/models/p?sv=2024-01-01&sp=rl&sig=SECRET%2Bazure%3D`, secret: "SECRET", code: 1 },
      { uri: `https://user:SECRET-azure-pass@acct0assetkit.blob.core.windows.net/models/p`, secret: "SECRET-azure-pass", code: 2 },
    ];
    const cwd = await scratch();
    for (const { uri, secret, code } of cases) {
      for (const debug of [[], ["--debug"]]) {
        const r = await runCli(["resolve", "m", "--store", uri, ...debug], { cwd, env: QUICK });
        assert.equal(r.code, code, `${uri}: ${r.stderr}`);
        assert.ok(!`${r.stdout}${r.stderr}`.includes(secret), `${uri} ${debug.join("")} prints a secret:\n${r.stderr}`);
        const lines = r.stderr.split("\n").filter((line) => line && !/DeprecationWarning|--trace-deprecation/.test(line));
        if (debug.length === 0) assert.equal(lines.length, 1, `one line: ${r.stderr}`);
      }
    }
  });

  it("are never printed by the storage initializer either, ASSETKIT_DEBUG included", async () => {
    const port = await closedPort();
    const cases: [string, string, number][] = [
      ["assetkit://s3/b/p?sig=SECRET-init-sig#m:1", "SECRET-init-sig", 2],
      ["assetkit://http/reader:SECRET-init-pass@127.0.0.1:" + port + "/p?token=SECRET-init-token#m:1", "SECRET-init", 1],
      ["assetkit://http/reader:SECRET-init-bad@127.0.0.1:" + port + "/p", "SECRET-init-bad", 2],
    ];
    for (const [uri, secret, code] of cases) {
      const dest = path.join(await scratch(), "out");
      const r = await new Promise<{ code: number; output: string }>((resolve) =>
        execFile(
          process.execPath,
          [path.resolve("dist/storage-initializer.js"), uri, dest],
          { env: { ...cleanEnv(), ...QUICK, ASSETKIT_DEBUG: "1" } },
          (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr }),
        ),
      );
      assert.equal(r.code, code, `${uri}: ${r.output}`);
      assert.ok(!r.output.includes(secret), `${uri} prints a secret:\n${r.output}`);
    }
  });

  it("a bad percent-escape, an unknown parameter or credentials are usage errors (exit 2), the same for s3, gs and az", async () => {
    const cwd = await scratch();
    for (const scheme of ["s3", "gs", "az"]) {
      for (const [uri, says] of [
        [`${scheme}://bucket/pre%zzfix`, /bad percent-escape/],
        [`${scheme}://bucket/p?color=red`, /unknown parameter \?color=/],
        [`${scheme}://u:p@bucket/p`, /credentials do not belong/],
      ] as const) {
        const r = await runCli(["resolve", "m", "--store", uri], { cwd });
        assert.equal(r.code, 2, `${uri}: ${r.stderr}`);
        assert.match(r.stderr, says);
      }
    }
  });

  it("redactUri keeps locations and hides every other query value and userinfo; scrub hides credential patterns", () => {
    assert.equal(redactUri("s3://u:pw@b/p?endpoint=http://k:s@host:9/x?q=1&region=eu&sig=abc"), "s3://b/p?endpoint=http://host:9/x&region=eu&sig=***");
    assert.equal(redactUri("https://a.blob.core.windows.net/c/p?sv=1&sig=x%2By"), "https://a.blob.core.windows.net/c/p?sv=***&sig=***");
    assert.equal(redactUri("/plain/path"), "/plain/path");
    // An import's record: no query at all, for every kind of source.
    for (const [uri, recorded] of [
      ["s3://b/models/iris/?endpoint=http://127.0.0.1:9000&region=eu", "s3://b/models/iris/"],
      ["gs://b/m/w.bin?endpoint=http://127.0.0.1:4443", "gs://b/m/w.bin"],
      ["azure://c/m/?endpoint=http://127.0.0.1:10000/devstoreaccount1", "azure://c/m/"],
      ["https://a.blob.core.windows.net/c/m/?sv=2024&sig=x%2By", "https://a.blob.core.windows.net/c/m/"],
      ["https://u:pw@host/w.bin?token=abc#frag", "https://host/w.bin"],
      ["hf://org/repo@main/sub", "hf://org/repo@main/sub"],
    ])
      assert.equal(uriWithoutQuery(uri!), recorded);
    assert.deepEqual(uriSecrets("https://u:p%40ss-word@h/x?endpoint=http://e&sig=a%2Bsig&sv=2024"), ["p@ss-word", "a+sig", "2024"]);
    const text =
      "GET https://u:pw@h/x?sig=abc&x-amz-signature=def Authorization: AWS4-HMAC-SHA256 Credential=AKIAABCDEFGHIJKLMNOP AccountKey=k3y==; my-secret-value";
    const out = scrub(text, ["my-secret-value"]);
    for (const secret of ["pw@", "abc", "def", "AKIAABCDEFGHIJKLMNOP", "k3y==", "my-secret-value"]) assert.ok(!out.includes(secret), out);
  });
});
