#!/usr/bin/env node
import { createRequire as __assetkitRequire } from 'node:module'; const require = __assetkitRequire(import.meta.url);
import{a as e,b as o}from"./chunks/chunk-PIJ2UO43.js";import{b as r}from"./chunks/chunk-A672W72A.js";import"./chunks/chunk-N5OR7MSM.js";e(process.stdout);e(process.stderr);o("assetkit-storage-initializer");process.argv.includes("--debug")||(process.noDeprecation=!0);var{runStorageInitializer:s}=await import("./chunks/storage-initializer-U4CNLC4F.js");r();process.exitCode=await s(process.argv.slice(2));
