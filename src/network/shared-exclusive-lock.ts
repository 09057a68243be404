// A FIFO shared/exclusive lock. Pod network ADD/DEL calls share it; removing the bridge
// takes it exclusively, so the bridge never vanishes between the bridge plugin finding it
// and attaching a new pod's veth to it.

interface Waiter {
  exclusive: boolean;
  grant: () => void;
}

export class SharedExclusiveLock {
  private readers = 0;
  private writer = false;
  private readonly queue: Waiter[] = [];

  shared<T>(fn: () => Promise<T>): Promise<T> {
    return this.run(false, fn);
  }

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.run(true, fn);
  }

  private async run<T>(exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    await new Promise<void>((grant) => {
      this.queue.push({ exclusive, grant });
      this.dispatch();
    });
    try {
      return await fn();
    } finally {
      if (exclusive) this.writer = false;
      else this.readers--;
      this.dispatch();
    }
  }

  /** Grants waiters from the head of the queue while they are compatible (FIFO, no starvation). */
  private dispatch(): void {
    for (;;) {
      const head = this.queue[0];
      if (head === undefined || this.writer) return;
      if (head.exclusive) {
        if (this.readers > 0) return;
        this.writer = true;
      } else {
        this.readers++;
      }
      this.queue.shift();
      head.grant();
    }
  }
}
