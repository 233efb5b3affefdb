// The default settings, as the context would read them from an empty environment: for tests that build a
// registry, a store or an assets dir without a context (every one of them takes its settings explicitly).
import { DEFAULT_TUNING } from "../../src/store/tuning.ts";
import { Transfers, transferSettings } from "../../src/transfer/engine.ts";

export const TEST_TUNING = DEFAULT_TUNING;
export const TEST_SETTINGS = transferSettings(DEFAULT_TUNING);

export function testTransfers(): Transfers {
  return new Transfers(TEST_SETTINGS);
}
