// A channel's moves (or every channel's), newest first, from <name>.aliases.
import type { Context } from "./context.ts";
import { AssetError, UsageError } from "../base/errors.ts";
import { channelHistory, type HistoryResult } from "../registry/channels.ts";
import { parseSpec } from "../registry/spec.ts";

export async function historyCommand(ctx: Context, target: string): Promise<HistoryResult> {
  const parsed = parseSpec(target);
  if (parsed.subPath || (parsed.selector.kind !== "alias" && parsed.selector.kind !== "latest")) {
    throw new UsageError(`history takes name or name:channel, not ${target}`);
  }
  const only = parsed.selector.kind === "alias" ? parsed.selector.alias : undefined;
  const { table } = await ctx.registry.aliases(parsed.name);
  if (only !== undefined && !table[only]) throw new AssetError(`${parsed.name}:${only}: no channel ${only} for ${parsed.name} in ${ctx.registry.url}`);
  const channels = Object.keys(table)
    .filter((c) => only === undefined || c === only)
    .sort()
    .map((channel) => ({ channel, version: table[channel]!.version, history: channelHistory(table[channel]!), dropped: table[channel]!.history_dropped ?? 0 }));
  return { name: parsed.name, store: ctx.registry.url, channels };
}
