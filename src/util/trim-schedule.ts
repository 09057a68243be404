// When the daemon gives glibc's free heap pages back (malloc_trim, src/daemon.ts): after
// calls, once they paused or at least every so often while they never pause. Pure: it is
// told the call counters and the time at each check, and answers whether to trim now.

export interface TrimScheduleOptions {
  /** Under calls that never pause (a kubelet's relists), a trim at least this often. */
  busyIntervalMs: number;
}

export interface CallCounters {
  /** Calls started since the daemon started. */
  started: number;
  /** Calls being served now. */
  inFlight: number;
}

export class TrimSchedule {
  private trimmedCalls: number;
  private seenCalls: number;
  private trimmedAt: number;

  /** `calls` and `nowMs` at the trim made when start-up was done. */
  constructor(
    private readonly opts: TrimScheduleOptions,
    calls: CallCounters,
    nowMs: number,
  ) {
    this.trimmedCalls = calls.started;
    this.seenCalls = calls.started;
    this.trimmedAt = nowMs;
  }

  /**
   * One periodic check: true (and counted as done) when calls came since the last trim,
   * none is in flight, and either none started since the previous check (a burst is over)
   * or busyIntervalMs passed since the last trim.
   */
  check(calls: CallCounters, nowMs: number): boolean {
    const quiet = calls.started === this.seenCalls;
    this.seenCalls = calls.started;
    if (calls.started === this.trimmedCalls || calls.inFlight > 0) return false;
    if (!quiet && nowMs - this.trimmedAt < this.opts.busyIntervalMs) return false;
    this.trimmedCalls = calls.started;
    this.trimmedAt = nowMs;
    return true;
  }
}
