#!/usr/bin/env node
import { createRequire as __assetkitRequire } from 'node:module'; const require = __assetkitRequire(import.meta.url);
import{a as i}from"./chunks/chunk-6XO5ENMH.js";import{b as e}from"./chunks/chunk-A672W72A.js";import"./chunks/chunk-N5OR7MSM.js";i("assetkit-storage-initializer");process.argv.includes("--debug")||(process.noDeprecation=!0);var{runStorageInitializer:r}=await import("./chunks/storage-initializer-HUTH6NYG.js");e();process.exitCode=await r(process.argv.slice(2));
