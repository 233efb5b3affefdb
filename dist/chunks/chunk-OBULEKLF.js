import { createRequire as __assetkitRequire } from 'node:module'; const require = __assetkitRequire(import.meta.url);
import{writeSync as t}from"node:fs";var i=64*1024;function m(r,e,o){for(let n=0;n<e.length;)n+=t(r,e,n,Math.min(i,e.length-n),o+n)}export{m as a};
