import { createRequire as __assetkitRequire } from 'node:module'; const require = __assetkitRequire(import.meta.url);
var t=class extends Error{constructor(r){super(r),this.name="UsageError"}},e=class extends Error{constructor(r,s){super(r,s),this.name="AssetError"}};function o(n){return n instanceof t?2:1}export{t as a,e as b,o as c};
