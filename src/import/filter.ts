// --include / --exclude: glob patterns over the paths inside the imported asset (like huggingface_hub's
// allow_patterns / ignore_patterns), matched by picomatch.
import picomatch from "picomatch";

export interface PathFilter {
  include: string[];
  exclude: string[];
}

/** True for a path to import: it matches an include pattern (or none is given) and no exclude pattern. */
export function pathMatcher(filter: PathFilter): (rel: string) => boolean {
  const options = { dot: true };
  const included = filter.include.length ? picomatch(filter.include, options) : () => true;
  const excluded = filter.exclude.length ? picomatch(filter.exclude, options) : () => false;
  return (rel) => included(rel) && !excluded(rel);
}
