#!/usr/bin/env node
import { createRequire as __assetkitRequire } from 'node:module'; const require = __assetkitRequire(import.meta.url);
import{a as e}from"./chunks/chunk-6XO5ENMH.js";import"./chunks/chunk-N5OR7MSM.js";e("assetkit");var{enableCompileCache:o}=await import("node:module");o();process.argv.includes("--debug")||(process.noDeprecation=!0);var{runCli:s}=await import("./chunks/cli-ML32OPYG.js");process.exitCode=await s(process.argv.slice(2));
