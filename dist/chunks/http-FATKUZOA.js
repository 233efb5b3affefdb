import { createRequire as __assetkitRequire } from 'node:module'; const require = __assetkitRequire(import.meta.url);
import{c as a,d as b,e as c}from"./chunk-46YRYXUO.js";import"./chunk-L7LG66RP.js";import"./chunk-3MK4MMMJ.js";import"./chunk-A672W72A.js";import"./chunk-XU6NUPVM.js";import"./chunk-N5OR7MSM.js";export{b as HttpStore,a as openHttpStore,c as retryAfter};
