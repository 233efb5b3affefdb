#!/usr/bin/env node
import { runStorageInitializer } from "./storage-initializer.ts";

process.exitCode = await runStorageInitializer(process.argv.slice(2));
