import { keepHeapSmall } from "../base/heap-size.ts";
import { runAction } from "./action.ts";

keepHeapSmall();
await runAction();
