#!/usr/bin/env node
import { createRequire as __assetkitRequire } from 'node:module'; const require = __assetkitRequire(import.meta.url);
import{a as e}from"./chunks/chunk-6XO5ENMH.js";import"./chunks/chunk-N5OR7MSM.js";e("assetkit-storage-initializer");process.argv.includes("--debug")||(process.noDeprecation=!0);var{runStorageInitializer:i}=await import("./chunks/storage-initializer-QWQZ4ANT.js");process.exitCode=await i(process.argv.slice(2));
