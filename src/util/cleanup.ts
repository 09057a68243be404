// One cleanup mechanism (STYLE.md §8, the seed's `cleanup.Make`) for both shapes of
// path that must leave nothing behind:
// - a create path registers an undo step as each resource is acquired (`add`);
//   `release()` on success forgets them all, `undoAfter()` on failure undoes them newest
//   first, trying every step, and gives the error to throw (the original, with what the
//   undo could not do appended);
// - a destroy path (S7) runs its steps now (`run(what, fn)`): every step runs even when
//   an earlier one failed; the failures are kept, each named by its step, and
//   `throwIfFailed()` throws them together, so the caller learns all that is left.
import type { Logger } from 'pino';
import { errorMessage, wrapError } from '../errors.js';

export type CleanupStep = () => void | Promise<void>;

export class Cleanup {
  private steps: Array<{ what: string; fn: CleanupStep }> = [];
  /** The failures of destroy steps run so far, each named by its step. */
  readonly errors: Error[] = [];

  /** Registers an undo step; `what` names it in the joined error. */
  add(what: string, fn: CleanupStep): void {
    this.steps.push({ what, fn });
  }

  /** Success: nothing is undone. */
  release(): void {
    this.steps = [];
  }

  /** Undoes every registered step, newest first; throws an AggregateError of the failures. */
  async undo(): Promise<void> {
    const steps = this.steps.reverse();
    this.steps = [];
    const errors: Error[] = [];
    for (const step of steps) {
      try {
        await step.fn();
      } catch (e) {
        errors.push(new Error(`${step.what}: ${errorMessage(e)}`, { cause: e }));
      }
    }
    if (errors.length > 0) {
      throw new AggregateError(errors, `undoing: ${errors.map((e) => e.message).join('; ')}`);
    }
  }

  /**
   * The undo block of a failed create path, written once: `err` wrapped as `<doing>: …`
   * (its type kept), every step undone, and what the undo could not do logged and
   * appended to the message. Returns the error to throw.
   */
  async undoAfter(err: unknown, doing: string, log: Pick<Logger, 'error'>): Promise<Error> {
    const wrapped = wrapError(doing, err);
    try {
      await this.undo();
    } catch (undoErr) {
      log.error({ err: undoErr }, `undoing after a failure of ${doing}`);
      wrapped.message += `; ${errorMessage(undoErr)}`;
    }
    return wrapped;
  }

  /** Runs one destroy step now; a failure is recorded (wrapped with `what`), not thrown. */
  async run(what: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      this.errors.push(wrapError(what, e));
    }
  }

  /** Throws an AggregateError of the recorded destroy failures, if any: `<doing>: <a>; <b>`. */
  throwIfFailed(doing: string): void {
    if (this.errors.length > 0) {
      throw new AggregateError(this.errors, `${doing}: ${this.errors.map((e) => e.message).join('; ')}`);
    }
  }

  /** Undo steps registered and not yet released or undone. */
  get size(): number {
    return this.steps.length;
  }
}
