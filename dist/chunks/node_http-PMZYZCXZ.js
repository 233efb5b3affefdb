import { createRequire as __assetkitRequire } from 'node:module'; const require = __assetkitRequire(import.meta.url);
import{a}from"./chunk-XU6NUPVM.js";import"./chunk-N5OR7MSM.js";export default a();
