// A cell: one pod sandbox or container as an object that owns its record (through the
// store handle), its mutex, and its event sink, with one way to change it (S4):
//
//   update(action, allowed, fn, { to, event }):
//     lock → requireState(allowed) → fn(draft) → changeState(to) → atomic save
//     → commit to memory → publish(event)
//
// The draft is a copy: until the save succeeded nothing anyone reads has changed. A
// failed save is rolled back (the previous record written again, so disk and memory
// agree) and the ORIGINAL error is thrown, whatever the rollback met. The event is
// published only after the commit, so a listener that reads the record sees the new one.
import type { Logger } from 'pino';
import { NotFoundError } from '../../errors.js';
import type { KeyedMutex } from '../../util/mutex.js';
import { changeLifecycle, requireLifecycle, type LifecycleRecord, type LifecycleState } from './lifecycle.js';

/** What a cell needs of its store: read from memory, write to disk, commit to memory. */
export interface CellStore<R> {
  find(id: string): R | undefined;
  write(rec: R): Promise<void>;
  remember(rec: R): void;
}

export interface CellEvents<E extends string> {
  publish(type: E, id: string, podId: string): void;
}

export interface CellOptions<R, E extends string> {
  /** "sandbox" or "container", for messages. */
  kind: string;
  /** What an `unknown` record still allows, for messages ("RemoveContainer"). */
  unknownAllows: string;
  id: string;
  store: CellStore<R>;
  locks: KeyedMutex;
  events: CellEvents<E> | undefined;
  /** The pod an event names (the sandbox itself, or a container's pod). */
  podIdOf: (rec: R) => string;
  log: Pick<Logger, 'error'>;
}

export interface UpdateOptions<S extends LifecycleState, E extends string> {
  /** The state the change ends in (changeState: illegal → InternalError). */
  to?: S;
  /** Published after the commit. */
  event?: E;
}

export class Cell<S extends LifecycleState, R extends LifecycleRecord<S>, E extends string> {
  readonly id: string;

  constructor(private readonly opts: CellOptions<R, E>) {
    this.id = opts.id;
  }

  /** The committed record (a copy); NotFound when it is gone. */
  get record(): R {
    const rec = this.opts.store.find(this.id);
    if (rec === undefined) throw new NotFoundError(`${this.opts.kind} "${this.id}" not found`);
    return rec;
  }

  /** Runs `fn` holding the cell's mutex. */
  async locked<T>(fn: () => Promise<T>): Promise<T> {
    return this.opts.locks.runExclusive(this.id, fn);
  }

  /** The S4 guard on the committed record. */
  require(action: string, allowed: readonly S[]): R {
    const rec = this.record;
    requireLifecycle(this.opts.kind, rec, action, allowed, this.opts.unknownAllows);
    return rec;
  }

  /** The one way to change the record: takes the mutex, then as updateLocked. */
  async update<T>(action: string, allowed: readonly S[], fn: (draft: R) => T | Promise<T>, options: UpdateOptions<S, E> = {}): Promise<T> {
    return this.locked(() => this.updateLocked(action, allowed, fn, options));
  }

  /** update() for a caller that already holds the cell's mutex. */
  async updateLocked<T>(action: string, allowed: readonly S[], fn: (draft: R) => T | Promise<T>, options: UpdateOptions<S, E> = {}): Promise<T> {
    const before = this.require(action, allowed);
    const draft = structuredClone(before);
    const result = await fn(draft);
    if (options.to !== undefined) changeLifecycle(this.opts.kind, draft, options.to);
    await this.save(before, draft);
    if (options.event !== undefined) this.opts.events?.publish(options.event, this.id, this.opts.podIdOf(draft));
    return result;
  }

  private async save(before: R, draft: R): Promise<void> {
    try {
      await this.opts.store.write(draft);
    } catch (e) {
      try {
        await this.opts.store.write(before);
      } catch (rollbackErr) {
        this.opts.log.error({ err: rollbackErr, id: this.id }, `rolling back the record of ${this.opts.kind} "${this.id}" after a failed save`);
      }
      throw e;
    }
    this.opts.store.remember(draft);
  }
}
