import { createRequire as __assetkitRequire } from 'node:module'; const require = __assetkitRequire(import.meta.url);
import{a as r,c as i}from"./chunk-N5OR7MSM.js";var o=i((p,e)=>{e.exports=r("node:http")});export{o as a};
