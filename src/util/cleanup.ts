// A cleanup stack (STYLE.md §8, the seed's `cleanup.Make`): register an undo step as
// each resource is acquired; `release()` on success forgets them all, `run()` on failure
// undoes them newest first, trying every step and joining the failures.

export type CleanupStep = () => void | Promise<void>;

export class Cleanup {
  private steps: Array<{ what: string; fn: CleanupStep }> = [];

  /** Registers an undo step; `what` names it in the joined error. */
  add(what: string, fn: CleanupStep): void {
    this.steps.push({ what, fn });
  }

  /** Success: nothing is undone. */
  release(): void {
    this.steps = [];
  }

  /** Undoes every registered step, newest first; throws an AggregateError of the failures. */
  async run(): Promise<void> {
    const steps = this.steps.reverse();
    this.steps = [];
    const errors: Error[] = [];
    for (const step of steps) {
      try {
        await step.fn();
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        errors.push(new Error(`${step.what}: ${msg}`, { cause: e }));
      }
    }
    if (errors.length > 0) {
      throw new AggregateError(errors, `undoing: ${errors.map((e) => e.message).join('; ')}`);
    }
  }

  get size(): number {
    return this.steps.length;
  }
}
