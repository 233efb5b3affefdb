#!/usr/bin/env node
import { runCli } from "./cli.ts";

// The SDKs' own deprecation notices (the GCS client's punycode, url.parse) are nothing a user can act on, and
// would break the one-line error on stderr; --debug shows them.
if (!process.argv.includes("--debug")) process.noDeprecation = true;

process.exitCode = await runCli(process.argv.slice(2));
