import pkg from "../../package.json" with { type: "json" };

export const VERSION: string = pkg.version;
/** Written into every meta's `created_by`. */
export const CREATED_BY = `assetkit ${VERSION}`;
