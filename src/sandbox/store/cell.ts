// A cell: one pod sandbox or container as an object that owns its record (through the
// store handle), its mutex, and its event sink, with one way to change it (S4):
//
//   create(rec)                        first write, before any side effect (S5)
//   update(action, allowed, fn, { to, event }):
//     lock → requireState(allowed) → fn(draft) → changeState(to) → atomic save
//     → commit to memory → publish(event)
//   keepUnreadable(rec)                an `unknown` stand-in, in memory only
//   remove(event)                      disk first, then memory, then publish
//
// The draft is a copy: until the save succeeded nothing anyone reads has changed. A
// failed save is rolled back (the previous record written again, so disk and memory
// agree) and the ORIGINAL error is thrown, whatever the rollback met. The event is
// published only after the commit, so a listener that reads the record sees the new one.
// An `unknown` record (its meta.json did not load) is never written over: its changes
// are committed to memory only.
//
// Steps that undo or tear down read `record` (the committed record) when they run, never
// a copy taken earlier: what a later step committed (a pid, a netns) is what they undo.
import type { Logger } from 'pino';
import { InternalError, NotFoundError } from '../../errors.js';
import type { Cleanup } from '../../util/cleanup.js';
import type { KeyedMutex } from '../../util/mutex.js';
import { changeLifecycle, requireLifecycle, type LifecycleRecord, type LifecycleState } from './lifecycle.js';

/** What a cell needs of its store: read from memory, write to disk, commit to memory. */
export interface CellStore<R> {
  find(id: string): R | undefined;
  /** The committed record itself (frozen, exact ID): a read that copies nothing. */
  peek(id: string): Readonly<R> | undefined;
  /** `first`: the record's first write (S5: it must survive a machine crash); else a rewrite. */
  write(rec: R, options?: { first?: boolean }): Promise<void>;
  remember(rec: R): void;
  /** Disk first, then memory; idempotent. */
  delete(id: string): Promise<void>;
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
  /**
   * A state passed on the way to `to` in the same write (RunPodSandbox: creating, created,
   * running in one save), its event published before `event`.
   */
  via?: S;
  viaEvent?: E;
}

export class Cell<S extends LifecycleState, R extends LifecycleRecord<S>, E extends string> {
  readonly id: string;

  constructor(private readonly opts: CellOptions<R, E>) {
    this.id = opts.id;
  }

  /**
   * The committed record itself, deeply frozen (no copy: a lifecycle read it ~20 times,
   * each a structuredClone under the interpreter, issue 13); NotFound when it is gone.
   * Change it through update().
   */
  get record(): Readonly<R> {
    const rec = this.opts.store.peek(this.id);
    if (rec === undefined) throw new NotFoundError(`${this.opts.kind} "${this.id}" not found`);
    return rec;
  }

  /** The committed record itself (frozen, as `record`), or undefined once it is gone. */
  find(): Readonly<R> | undefined {
    return this.opts.store.peek(this.id);
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
    // The committed record as it is (frozen: the rollback writes it back), one copy as the draft.
    const before = this.opts.store.peek(this.id);
    if (before === undefined) throw new NotFoundError(`${this.opts.kind} "${this.id}" not found`);
    requireLifecycle(this.opts.kind, before, action, allowed, this.opts.unknownAllows);
    const draft = structuredClone(before) as R;
    const result = await fn(draft);
    if (options.via !== undefined) changeLifecycle(this.opts.kind, draft, options.via);
    if (options.to !== undefined) changeLifecycle(this.opts.kind, draft, options.to);
    await this.save(before, draft);
    const podId = this.opts.podIdOf(draft);
    if (options.viaEvent !== undefined) this.opts.events?.publish(options.viaEvent, this.id, podId);
    if (options.event !== undefined) this.opts.events?.publish(options.event, this.id, podId);
    return result;
  }

  /**
   * The first write of a new record (state creating), before any side effect (S5): a
   * crash from here on leaves a record that recovery undoes.
   */
  async create(rec: R): Promise<void> {
    if (rec.id !== this.id || this.opts.store.peek(this.id) !== undefined) {
      throw new InternalError(`creating the record of ${this.opts.kind} "${this.id}": it exists already`);
    }
    await this.opts.store.write(rec, { first: true });
    this.opts.store.remember(rec);
  }

  /** Keeps the stand-in of a record that did not load (state unknown), in memory only. */
  keepUnreadable(rec: R): void {
    if (rec.id !== this.id || rec.state !== 'unknown') throw new InternalError(`keeping ${this.opts.kind} "${rec.id}" as unknown: state ${rec.state}`);
    this.opts.store.remember(rec);
  }

  /** Removes the record (disk first, then memory), then publishes `event`. Idempotent. */
  async remove(event?: E): Promise<void> {
    const last = this.find();
    await this.opts.store.delete(this.id);
    if (event !== undefined && last !== undefined) this.opts.events?.publish(event, this.id, this.opts.podIdOf(last));
  }

  private async save(before: Readonly<R>, draft: R): Promise<void> {
    if (before.state === 'unknown') {
      // Never written over (metadata-store.ts refuses it too): the change lives in memory.
      this.opts.store.remember(draft);
      return;
    }
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

/** What a monitor (conmon) reports of the process it made. */
export interface MadeProcess {
  pid: number;
  conmonPid: number;
}

/**
 * The "created" step of RunPodSandbox (the infra) and CreateContainer, written once: the
 * process the monitor made is committed (creating → created), then CONTAINER_CREATED_EVENT
 * is published. The caller holds the cell's mutex.
 */
export async function commitCreated<R extends LifecycleRecord & MadeProcess, E extends string>(
  cell: Cell<LifecycleState, R, E>,
  action: string,
  made: MadeProcess,
  event: E,
): Promise<void> {
  const record = (d: R): void => {
    d.pid = made.pid;
    d.conmonPid = made.conmonPid;
  };
  await cell.updateLocked(action, ['creating'], record, { to: 'created', event });
}

/**
 * The first step of RunPodSandbox and CreateContainer, written once: the new record
 * (state creating) saved before any side effect (S5), with its removal as the last undo.
 */
export async function beginCreate<S extends LifecycleState, R extends LifecycleRecord<S>, E extends string>(
  cell: Cell<S, R, E>,
  rec: R,
  cleanup: Cleanup,
): Promise<void> {
  await cell.create(rec);
  cleanup.add('removing metadata', () => cell.remove());
}
