// The steps of a destroy path (S7, STYLE.md §8): every step runs even when an earlier
// one failed; the failures are kept, each named by its step, and thrown together at the
// end, so the caller learns everything that is left to clean up.
import { wrapError } from '../../errors.js';

export class DestroySteps {
  readonly errors: Error[] = [];

  /** Runs one step; a failure is recorded (wrapped with `what`), not thrown. */
  async run(what: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      this.errors.push(wrapError(what, e));
    }
  }

  /** Throws an AggregateError of the recorded failures, if any: `<doing>: <a>; <b>`. */
  throwIfFailed(doing: string): void {
    if (this.errors.length > 0) {
      throw new AggregateError(this.errors, `${doing}: ${this.errors.map((e) => e.message).join('; ')}`);
    }
  }
}
