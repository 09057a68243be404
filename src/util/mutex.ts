// A minimal async mutex and a keyed variant (one lock per sandbox/container id), as
// STYLE.md §7 asks: serialize work on one object without a store-wide lock.

/** A FIFO async mutex: `runExclusive(fn)` runs fn after every earlier holder is done. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  private holders = 0;

  /** Number of callers holding or waiting for the lock. */
  get pending(): number {
    return this.holders;
  }

  async runExclusive<T>(fn: () => T | Promise<T>): Promise<T> {
    this.holders++;
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    try {
      await previous;
      return await fn();
    } finally {
      this.holders--;
      release();
    }
  }
}

/** One Mutex per key, dropped when nobody holds or waits for it (no leak per id). */
export class KeyedMutex {
  private readonly locks = new Map<string, Mutex>();

  async runExclusive<T>(key: string, fn: () => T | Promise<T>): Promise<T> {
    let lock = this.locks.get(key);
    if (lock === undefined) {
      lock = new Mutex();
      this.locks.set(key, lock);
    }
    try {
      return await lock.runExclusive(fn);
    } finally {
      if (lock.pending === 0 && this.locks.get(key) === lock) this.locks.delete(key);
    }
  }

  /** True while someone holds or waits for the key's lock. */
  busy(key: string): boolean {
    return (this.locks.get(key)?.pending ?? 0) > 0;
  }

  /** Keys currently held or awaited (for tests and diagnostics). */
  get size(): number {
    return this.locks.size;
  }
}
