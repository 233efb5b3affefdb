import { createRequire as __assetkitRequire } from 'node:module'; const require = __assetkitRequire(import.meta.url);
var r=class extends Error{code;constructor(e,o,n){super(o,n),this.name="StoreError",this.code=e}};function i(t,e){return new r("not-found",`${t}: no object at ${e}`)}export{r as a,i as b};
