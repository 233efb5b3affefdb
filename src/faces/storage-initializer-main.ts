#!/usr/bin/env node
// The storage initializer's entry: it loads the bundle dynamically, so an old Node.js is told which version it
// needs before any import fails to link.
import { keepHeapSmall } from "../base/heap-size.ts";
import { dropWritesToClosedPipe } from "./closed-pipe.ts";
import { exitUnlessSupportedNode } from "./supported-node.ts";

dropWritesToClosedPipe(process.stdout);
dropWritesToClosedPipe(process.stderr);
exitUnlessSupportedNode("assetkit-storage-initializer");

// The SDKs' own deprecation notices (the GCS client's punycode, url.parse) are nothing a user can act on, and
// would break the one-line error on stderr; --debug shows them.
if (!process.argv.includes("--debug")) process.noDeprecation = true;

const { runStorageInitializer } = await import("./storage-initializer.ts");
keepHeapSmall(); // once the modules are loaded (heap-size.ts says why)
process.exitCode = await runStorageInitializer(process.argv.slice(2));
