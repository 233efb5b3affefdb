import { createRequire as __assetkitRequire } from 'node:module'; const require = __assetkitRequire(import.meta.url);
import{c as a,d as b,e as c}from"./chunk-QV5HERCI.js";import"./chunk-S5B5BFOD.js";import"./chunk-JJJURUDB.js";import"./chunk-N5OR7MSM.js";export{b as HttpStore,a as openHttpStore,c as retryAfter};
