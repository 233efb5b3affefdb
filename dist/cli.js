#!/usr/bin/env node
import { createRequire as __assetkitRequire } from 'node:module'; const require = __assetkitRequire(import.meta.url);
import{a as e,b as r}from"./chunks/chunk-PIJ2UO43.js";import{b as o}from"./chunks/chunk-A672W72A.js";import"./chunks/chunk-N5OR7MSM.js";e(process.stdout);e(process.stderr);r("assetkit");var{enableCompileCache:s}=await import("node:module");s();process.argv.includes("--debug")||(process.noDeprecation=!0);var{runCli:t}=await import("./chunks/cli-HSA6HAXO.js");o();process.exitCode=await t(process.argv.slice(2));
