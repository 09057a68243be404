// When the daemon gives glibc's free heap pages back (malloc_trim, src/daemon.ts): after
// calls, once they paused or at least every so often while they never pause; and after
// V8 shrank its heap (a major GC, often the memory reducer's, seconds after a burst, frees
// the native memory of what it collected). Pure: it is told the call counters, the V8
// heap size and the time at each check, and answers whether to trim now.

export interface TrimScheduleOptions {
  /** Under calls that never pause (a kubelet's relists), a trim at least this often. */
  busyIntervalMs: number;
  /** A V8 heap this much smaller than at the last trim means a GC freed memory since. */
  heapShrinkBytes: number;
}

export interface CallCounters {
  /** Calls started since the daemon started. */
  started: number;
  /** Calls being served now. */
  inFlight: number;
  /** V8's heap size (v8.getHeapStatistics().total_heap_size). */
  heapBytes: number;
}

export class TrimSchedule {
  private trimmedCalls: number;
  private seenCalls: number;
  private trimmedAt: number;
  private heapAtTrim: number;

  /** `calls` and `nowMs` at the trim made when start-up was done. */
  constructor(
    private readonly opts: TrimScheduleOptions,
    calls: CallCounters,
    nowMs: number,
  ) {
    this.trimmedCalls = calls.started;
    this.seenCalls = calls.started;
    this.trimmedAt = nowMs;
    this.heapAtTrim = calls.heapBytes;
  }

  /**
   * One periodic check: true (and counted as done) when none is in flight and either V8's
   * heap shrank by heapShrinkBytes since the last trim, or calls came since the last trim
   * and none started since the previous check (a burst is over) or busyIntervalMs passed
   * since the last trim.
   */
  check(calls: CallCounters, nowMs: number): boolean {
    const quiet = calls.started === this.seenCalls;
    this.seenCalls = calls.started;
    if (calls.inFlight > 0) return false;
    const shrunk = calls.heapBytes <= this.heapAtTrim - this.opts.heapShrinkBytes;
    const called = calls.started !== this.trimmedCalls && (quiet || nowMs - this.trimmedAt >= this.opts.busyIntervalMs);
    if (!shrunk && !called) return false;
    this.trimmedCalls = calls.started;
    this.trimmedAt = nowMs;
    this.heapAtTrim = calls.heapBytes;
    return true;
  }
}
