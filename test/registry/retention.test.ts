// The retention policy as a pure function: which versions a channel protects, in both alias table shapes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { channelReasons, channelVersions, planRetention } from "../../src/registry/retention.ts";

describe("retention", () => {
  it("a channel with history protects where it points and the versions of its last K entries (newest first)", () => {
    const entry = {
      version: "5.0.0",
      previous: "4.0.0",
      history: [{ version: "5.0.0", previous: "4.0.0" }, { version: "4.0.0", previous: "2.0.0" }, { version: "2.0.0" }, { version: "1.0.0" }],
    };
    assert.deepEqual(channelVersions(entry, 3), ["5.0.0", "4.0.0", "2.0.0"]);
    assert.deepEqual(channelVersions(entry, 0), ["5.0.0"]);
  });

  it("a table written before history existed reads as the history [version, previous]; junk is ignored", () => {
    assert.deepEqual(channelVersions({ version: "3.0.0", previous: "2.0.0" }, 5), ["3.0.0", "2.0.0"]);
    assert.deepEqual(channelVersions({ version: "3.0.0", previous: "2.0.0" }, 1), ["3.0.0"]);
    assert.deepEqual(channelVersions({ version: "3.0.0", history: [null, 7, { version: 1 }, { version: "1.0.0" }] } as never, 5), ["3.0.0", "1.0.0"]);
    assert.deepEqual([...channelReasons({ broken: "x", prod: { version: "1.0.0" } }, 5).keys()], ["1.0.0"]);
  });

  it("keep-last per series, keep-within and the latest version", () => {
    const versions = ["2.1.0", "2.0.0", "1.2.0", "1.1.0", "1.0.0"];
    const now = new Date("2026-12-01T00:00:00Z");
    const pushed = Object.fromEntries(versions.map((v, i) => [v, new Date(now.getTime() - i * 10 * 86_400_000)]));
    const perSeries = planRetention({ name: "m", versions, pushed }, { keepLast: 1, perSeries: true, keepHistory: 5 }, new Map(), [], now);
    assert.deepEqual(perSeries.remove, ["2.0.0", "1.1.0", "1.0.0"]);
    const dates = ["2026-11-03T00-00-00Z", "2026-11-02T00-00-00Z", "2026-11-01T00-00-00Z"];
    const datesPerSeries = planRetention({ name: "d", versions: dates, pushed: {} }, { keepLast: 2, perSeries: true, keepHistory: 5 }, new Map(), [], now);
    assert.deepEqual(datesPerSeries.remove, ["2026-11-01T00-00-00Z"], "date versions are one series");
    assert.deepEqual(datesPerSeries.keep[1], { version: "2026-11-02T00-00-00Z", reasons: ["among the last 2"] });
    const within = planRetention(
      { name: "m", versions, pushed: { ...pushed, "1.0.0": undefined } },
      { keepWithinMs: 15 * 86_400_000, keepHistory: 5 },
      new Map(),
      [],
      now,
    );
    assert.deepEqual(within.remove, ["1.2.0", "1.1.0"]);
    assert.deepEqual(within.keep.find((k) => k.version === "1.0.0")?.reasons, ["no readable push date"]);
    assert.deepEqual(within.keep.find((k) => k.version === "2.1.0")?.reasons[0], "latest");
  });
});
