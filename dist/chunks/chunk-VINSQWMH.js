import { createRequire as __assetkitRequire } from 'node:module'; const require = __assetkitRequire(import.meta.url);
import r from"node:path";import{fileURLToPath as i}from"node:url";var m=!import.meta.url.endsWith(".ts");function n(){let t=r.dirname(i(import.meta.url));return r.basename(t)==="chunks"?r.dirname(t):t}export{m as a,n as b};
