import { createRequire as __assetkitRequire } from 'node:module'; const require = __assetkitRequire(import.meta.url);
import{a as d}from"./chunk-O6YOWEVI.js";import{e as u}from"./chunk-N5OR7MSM.js";var t=u(d(),1);function i(e){let n={dot:!0},o=e.include.length?(0,t.default)(e.include,n):()=>!0,r=e.exclude.length?(0,t.default)(e.exclude,n):()=>!1;return c=>o(c)&&!r(c)}export{i as a};
