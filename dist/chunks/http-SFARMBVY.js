import { createRequire as __assetkitRequire } from 'node:module'; const require = __assetkitRequire(import.meta.url);
import{c as a,d as b,e as c}from"./chunk-O7SDHWGG.js";import"./chunk-GPLT7J4V.js";import"./chunk-T6GX5ZD4.js";import"./chunk-XU6NUPVM.js";import"./chunk-N5OR7MSM.js";export{b as HttpStore,a as openHttpStore,c as retryAfter};
