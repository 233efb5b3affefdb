import { createRequire as __assetkitRequire } from 'node:module'; const require = __assetkitRequire(import.meta.url);
function d(o){o.on("error",e=>{if(e.code!=="EPIPE")throw e})}var s="22.8.0";function c(o){let e=process.versions.node.split(".").map(Number),n=s.split(".").map(Number);(e.map((r,t)=>r-n[t]).find(r=>r!==0)??0)>=0||(process.stderr.write(`error: ${o} needs Node.js ${s} or later; this is Node.js ${process.versions.node}
`),process.exit(2))}export{d as a,c as b};
