// Parallel work whose failure is cleaned up after: the cleanup must not race the items still running.
import pMap from "p-map";

/**
 * pMap that, when one item fails, starts no other and waits for those already running to settle before it
 * rejects: the caller then removes what the items wrote knowing none of them will write again.
 */
export async function mapSettling<T>(items: Iterable<T> | AsyncIterable<T>, each: (item: T) => Promise<void>, concurrency: number): Promise<void> {
  const running = new Set<Promise<void>>();
  try {
    await pMap(
      items,
      (item) => {
        const work = each(item);
        running.add(work);
        return work.finally(() => running.delete(work));
      },
      { concurrency },
    );
  } catch (err) {
    await Promise.allSettled(running);
    throw err;
  }
}
