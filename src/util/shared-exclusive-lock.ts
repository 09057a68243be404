// A FIFO shared/exclusive lock, for a resource many may use at once but one must
// sometimes take away: pod network ADD/DEL calls share the CNI bridge, removing it takes
// the lock exclusively (the bridge never vanishes between the bridge plugin finding it
// and attaching a new pod's veth); cgroup creates share the cgroup tree, pruning its
// empty ancestors takes it exclusively (sandbox/resources/cgroups.ts).

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
