#!/usr/bin/env node
import { createRequire as __assetkitRequire } from 'node:module'; const require = __assetkitRequire(import.meta.url);
import{a as o}from"./chunks/chunk-6XO5ENMH.js";import{b as e}from"./chunks/chunk-A672W72A.js";import"./chunks/chunk-N5OR7MSM.js";o("assetkit");var{enableCompileCache:i}=await import("node:module");i();process.argv.includes("--debug")||(process.noDeprecation=!0);var{runCli:r}=await import("./chunks/cli-BGBCE35K.js");e();process.exitCode=await r(process.argv.slice(2));
