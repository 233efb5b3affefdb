// The one shape test the parsers of signatures and policies share: a JSON or YAML mapping (not null, not a list).
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
