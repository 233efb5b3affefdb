import { createRequire as __assetkitRequire } from 'node:module'; const require = __assetkitRequire(import.meta.url);
var s="22.8.0";function d(r){let o=process.versions.node.split(".").map(Number),n=s.split(".").map(Number);(o.map((e,t)=>e-n[t]).find(e=>e!==0)??0)>=0||(process.stderr.write(`error: ${r} needs Node.js ${s} or later; this is Node.js ${process.versions.node}
`),process.exit(2))}export{d as a};
