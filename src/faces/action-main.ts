import { keepYoungGenerationSmall } from "../base/young-gc.ts";
import { runAction } from "./action.ts";

keepYoungGenerationSmall(); // after the static imports are evaluated (young-gc.ts says why)
await runAction();
