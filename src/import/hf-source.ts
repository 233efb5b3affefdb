export function openHfSource(_uri: string, _s: unknown): never { throw new Error("todo"); }
