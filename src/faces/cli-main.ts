#!/usr/bin/env -S node --max-semi-space-size=4
// The CLI's entry: it loads the bundle dynamically, so an old Node.js is told which version it needs before any
// import fails to link.
//
// --max-semi-space-size=4 (MiB; V8 lets the young generation grow to 3 × 16 MiB otherwise): a publish or fetch of
// many small files leaves garbage per file (requests, streams, buffers' wrappers) that a large young generation
// keeps, with the buffers it holds, until it fills; a smaller one frees them sooner. 100,000 × 4 KiB to a folder
// store: publish peaked at 194 MiB instead of 298, fetch at 180 instead of 343, at the same CPU time or less (see
// README, "Many small files"). It must be given at start-up (v8.setFlagsFromString is too late), hence here.
import { exitUnlessSupportedNode } from "./supported-node.ts";

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
process.exitCode = await runCli(process.argv.slice(2));
