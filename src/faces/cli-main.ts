#!/usr/bin/env node
// The CLI's entry: it loads the bundle dynamically, so an old Node.js is told which version it needs before any
// import fails to link.
import { keepHeapSmall } from "../base/heap-size.ts";
import { dropWritesToClosedPipe } from "./closed-pipe.ts";
import { exitUnlessSupportedNode } from "./supported-node.ts";

dropWritesToClosedPipe(process.stdout);
dropWritesToClosedPipe(process.stderr);
exitUnlessSupportedNode("assetkit");

// V8's compile cache (in the system's temporary folder; NODE_DISABLE_COMPILE_CACHE=1 turns it off): a command run
// again skips compiling the bundle, ~0.08 s of a 0.3 s `resolve` against S3. Enabled before the CLI's modules load
// (hence the dynamic import), so they are all cached.
const { enableCompileCache } = await import("node:module");
enableCompileCache();

// The SDKs' own deprecation notices (the GCS client's punycode, url.parse) are nothing a user can act on, and
// would break the one-line error on stderr; --debug shows them.
if (!process.argv.includes("--debug")) process.noDeprecation = true;

const { runCli } = await import("./cli.ts");
keepHeapSmall(); // once the modules are loaded (heap-size.ts says why)
process.exitCode = await runCli(process.argv.slice(2));
