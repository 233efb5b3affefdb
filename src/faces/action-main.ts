import { keepHeapSmall } from "../base/heap-size.ts";
import { runAction } from "./action.ts";

keepHeapSmall(); // after the static imports are evaluated (heap-size.ts says why)
await runAction();
