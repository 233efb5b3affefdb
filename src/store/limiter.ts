// A counting semaphore: at most `size` holders at once, served first come first served. Written by hand because
// p-map bounds one batch only, and a pool shared by many files, parts and batches needs acquire/release.

export class Limiter {
  readonly size: number;
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(size: number) {
    this.size = size;
    this.free = size;
  }

  /** Resolves once a slot is ours; give it back with release(). */
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }

  /** Runs `task` holding one slot. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await task();
    } finally {
      this.release();
    }
  }
}
