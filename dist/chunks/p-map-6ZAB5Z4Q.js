import { createRequire as __assetkitRequire } from 'node:module'; const require = __assetkitRequire(import.meta.url);
import{a,b,c,d,e,f,g,h}from"./chunk-IEKKGFH7.js";import"./chunk-N5OR7MSM.js";h();export{a as default,e as pMapIterable,c as pMapKeyed,b as pMapSettled,d as pMapSettledKeyed,f as pMapSkip,g as pMapStop};
