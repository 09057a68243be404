// TurboFan on only while image work runs (issue 13). The daemon starts with --no-opt
// (src/config/node-flags.ts): an idle daemon and its pod lifecycle run on the
// interpreter for the same CPU, and TurboFan's own code pages and
// optimized code are never paged in. A pull's and an archive import's JavaScript is
// different: fzstd decompresses zstd layers in JavaScript, 7-8x slower without TurboFan
// (30 MB: 0.45-0.6 s CPU with it, 3.3-4.1 s without). So while such work is in flight
// the flag is turned on (V8 reads it at each tiering decision, for every isolate, the
// layer workers' too) and off again when the last one is over; code optimized meanwhile
// stays until V8 drops it.
//
// Only for work that lasts: TurboFan comes on once work has held the switch for
// `delayMs`. A small pull or import (a pause or busybox image) is over before then and
// runs in the interpreter as the pod lifecycle does; with TurboFan on at once, even such
// a pull paged in the compiler's code (node's resident file pages 35.5 → 40.1 MiB) and
// left optimized code behind, in every daemon that ever pulled. Work known to be big (a
// layer large enough for a layer worker) holds it `now`: TurboFan at once, as a 200 MiB
// pull that waited the delay took 1.30 → 1.57 s and 1.46 → 1.61 s of CPU.
import v8 from 'node:v8';

/** Sets V8 flags (v8.setFlagsFromString; a test passes a recorder). */
export type SetFlags = (flags: string) => void;

/** Whether this process was started without TurboFan (the daemon's flags). */
export function startedWithoutOptimizer(execArgv: readonly string[] = process.execArgv): boolean {
  let off = false;
  // The last of these on the command line wins, as it does for V8.
  for (const a of execArgv) {
    if (a === '--no-opt' || a === '--no-turbofan') off = true;
    else if (a === '--opt' || a === '--turbofan') off = false;
  }
  return off;
}

export interface OptimizerSwitchOptions {
  /**
   * false: the process runs with TurboFan already (no --no-opt: unit tests, a daemon
   * started by hand without the flags) and nothing is switched. Default: from execArgv.
   */
  enabled?: boolean;
  setFlags?: SetFlags;
  /** TurboFan comes on once work has held the switch this long (0: at once). */
  delayMs?: number;
}

export class OptimizerSwitch {
  private holders = 0;
  private on = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly enabled: boolean;
  private readonly setFlags: SetFlags;
  private readonly delayMs: number;

  constructor(opts: OptimizerSwitchOptions = {}) {
    this.enabled = opts.enabled ?? startedWithoutOptimizer();
    this.setFlags = opts.setFlags ?? ((f) => v8.setFlagsFromString(f));
    this.delayMs = opts.delayMs ?? 0;
  }

  /** Runs `work` with TurboFan on; the switch goes off when no other work holds it. */
  async during<T>(work: () => Promise<T>): Promise<T> {
    const release = this.hold();
    try {
      return await work();
    } finally {
      release();
    }
  }

  /** Each item of `items` (a stream's answers), with TurboFan on until it ends or is left. */
  async *duringEach<T>(items: () => AsyncIterable<T> | Iterable<T>): AsyncGenerator<T> {
    const release = this.hold();
    try {
      yield* items();
    } finally {
      release();
    }
  }

  /**
   * Holds the switch: TurboFan comes on `delayMs` after the first holder (at once when
   * 0, or for a holder that says `now`) and goes off when the last one releases. The
   * function returned releases, once.
   */
  hold(now = false): () => void {
    if (!this.enabled) return () => undefined;
    if (now && !this.on) {
      this.holders++;
      clearTimeout(this.timer);
      this.turnOn();
    } else if (this.holders++ === 0) {
      if (this.delayMs <= 0) this.turnOn();
      else {
        // Each hold from idle starts the wait afresh: work held back to back does not add up.
        this.timer = setTimeout(() => this.turnOn(), this.delayMs);
        this.timer.unref();
      }
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.holders > 0) return;
      clearTimeout(this.timer);
      this.timer = undefined;
      if (!this.on) return;
      this.on = false;
      this.setFlags('--no-turbofan');
    };
  }

  private turnOn(): void {
    this.timer = undefined;
    this.on = true;
    this.setFlags('--turbofan');
  }

  /** Work holding TurboFan on now. */
  get active(): number {
    return this.holders;
  }
}
