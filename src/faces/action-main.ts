import { keepYoungGenerationSmall } from "../base/young-gc.ts";
import { runAction } from "./action.ts";

keepYoungGenerationSmall();
await runAction();
