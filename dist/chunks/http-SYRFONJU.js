import { createRequire as __assetkitRequire } from 'node:module'; const require = __assetkitRequire(import.meta.url);
import{c as a,d as b,e as c}from"./chunk-KFDNDNTA.js";import"./chunk-5EQAG572.js";import"./chunk-H5N2XY55.js";import"./chunk-XU6NUPVM.js";import"./chunk-N5OR7MSM.js";export{b as HttpStore,a as openHttpStore,c as retryAfter};
