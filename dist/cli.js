#!/usr/bin/env node
import { createRequire as __assetkitRequire } from 'node:module'; const require = __assetkitRequire(import.meta.url);
import{enableCompileCache as e}from"node:module";e();process.argv.includes("--debug")||(process.noDeprecation=!0);var{runCli:o}=await import("./chunks/cli-S65LYE3R.js");process.exitCode=await o(process.argv.slice(2));
