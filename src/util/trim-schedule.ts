// When the daemon gives glibc's free heap pages back (malloc_trim, src/daemon.ts): after
// calls, once they paused or at least every so often while they never pause; and after
// V8 shrank its heap (a major GC, often the memory reducer's, seconds after a burst, frees
// the native memory of what it collected). When a burst that left V8's heap much bigger
// is over, a collection first: a major GC (the garbage the burst promoted to the old
// generation stays there until one, and V8's own memory reducer may come long after).
// "Much bigger" is what it uses or what it holds: a GC V8 made itself late in the burst
// can leave the used heap near its old size while the pages the burst added stay
// committed and half empty until a compacting GC (in one run, 100 pods removed after
// 200 rounds of reads among them left the daemon at 75.9 MiB RSS 2 s and 12 s later, and
// at 65.9 once V8's memory reducer had come, 32 s later). And
// a few more trims while the daemon stays idle after a burst's: what the burst leaves is
// freed after the trim that ends it too (V8 frees ArrayBuffer backing stores and its
// compilers' zones on background threads after the GC has returned): after 60 pod cycles
// with 20 readers and 10 s idle, a malloc_trim made then from outside still took the
// daemon from 89 to 60 MiB RSS (anonymous 42 → 14 MiB). Pure:
// it is told the call counters, the V8 heap sizes and the time at each check, and answers
// what to do now.

export interface TrimScheduleOptions {
  /** Under calls that never pause (a kubelet's relists), a trim at least this often. */
  busyIntervalMs: number;
  /** A V8 heap this much smaller than at the last trim means a GC freed memory since. */
  heapShrinkBytes: number;
  /** A burst over that left V8's heap this much bigger (in use or committed) than after the last collection: collect. */
  collectGrowthBytes: number;
  /** Further trims this long after a burst's trim (ascending), while no call came since. */
  settleTrimsMs?: readonly number[];
}

export interface CallCounters {
  /** Calls started since the daemon started. */
  started: number;
  /** Calls being served now. */
  inFlight: number;
  /** V8's heap size (v8.getHeapStatistics().total_heap_size). */
  heapBytes: number;
  /** What of it is in use (used_heap_size): live objects and garbage not yet collected. */
  heapUsedBytes: number;
}

/** What a check asks for: nothing, a malloc trim, or a full collection (then a trim). */
export type IdleAction = 'none' | 'trim' | 'collect';

export class TrimSchedule {
  private trimmedCalls: number;
  private seenCalls: number;
  private trimmedAt: number;
  private heapAtTrim: number;
  private usedAfterCollect: number;
  private heapAfterCollect: number;
  private collectedCalls: number;
  /** When the last burst's trim was made (undefined: none to follow up), and how many follow-ups were made. */
  private settleFrom: number | undefined;
  private settled = 0;

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
    this.usedAfterCollect = calls.heapUsedBytes;
    this.heapAfterCollect = calls.heapBytes;
    this.collectedCalls = calls.started;
    // Start-up's trim is followed up too: its compilations and preloads free memory after it.
    this.settleFrom = nowMs;
  }

  /**
   * One periodic check. Nothing while a call is in flight. 'collect' (a trim too) when
   * calls came since the last collection, none started since the previous check (a
   * burst is over) and V8's used or committed heap grew by collectGrowthBytes since the
   * last collection. Otherwise 'trim'
   * (counted as done) when V8's heap shrank by heapShrinkBytes since the last trim, or
   * calls came since the last trim and either the burst is over or busyIntervalMs passed
   * since the last trim. Else a follow-up 'trim' at each of settleTrimsMs after the
   * burst's trim, while no call came since it.
   */
  check(calls: CallCounters, nowMs: number): IdleAction {
    const quiet = calls.started === this.seenCalls;
    this.seenCalls = calls.started;
    if (calls.inFlight > 0) return 'none';
    const growth = this.opts.collectGrowthBytes;
    const grown = calls.heapUsedBytes >= this.usedAfterCollect + growth || calls.heapBytes >= this.heapAfterCollect + growth;
    const collect = quiet && grown && calls.started !== this.collectedCalls;
    const shrunk = calls.heapBytes <= this.heapAtTrim - this.opts.heapShrinkBytes;
    const called = calls.started !== this.trimmedCalls && (quiet || nowMs - this.trimmedAt >= this.opts.busyIntervalMs);
    if (!shrunk && !called && !collect) return this.settleCheck(calls, nowMs, quiet);
    this.trimmedCalls = calls.started;
    this.trimmedAt = nowMs;
    this.heapAtTrim = calls.heapBytes;
    if (called || collect) {
      this.settleFrom = nowMs;
      this.settled = 0;
    }
    if (!collect) return 'trim';
    this.collectedCalls = calls.started;
    return 'collect';
  }

  /** A follow-up trim after a burst's when its time has come and no call came since. */
  private settleCheck(calls: CallCounters, nowMs: number, quiet: boolean): IdleAction {
    const delays = this.opts.settleTrimsMs ?? [];
    if (this.settleFrom === undefined || this.settled >= delays.length) return 'none';
    if (!quiet || calls.started !== this.trimmedCalls) {
      this.settleFrom = undefined; // calls came: the trim that ends them starts the follow-ups again
      return 'none';
    }
    if (nowMs - this.settleFrom < delays[this.settled]) return 'none';
    this.settled += 1;
    this.trimmedAt = nowMs;
    this.heapAtTrim = calls.heapBytes;
    return 'trim';
  }

  /** After a collection: the sizes it left, the base of the next growth and shrink. */
  collected(calls: Pick<CallCounters, 'heapBytes' | 'heapUsedBytes'>): void {
    this.usedAfterCollect = calls.heapUsedBytes;
    this.heapAfterCollect = calls.heapBytes;
    this.heapAtTrim = calls.heapBytes;
  }
}
