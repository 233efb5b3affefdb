import { createRequire as __assetkitRequire } from 'node:module'; const require = __assetkitRequire(import.meta.url);
import{c as a,d as b,e as c}from"./chunk-YLMPO4BF.js";import"./chunk-YA7YKNW5.js";import"./chunk-EGULWYV3.js";import"./chunk-7DBUGON2.js";import"./chunk-XU6NUPVM.js";import"./chunk-N5OR7MSM.js";export{b as HttpStore,a as openHttpStore,c as retryAfter};
