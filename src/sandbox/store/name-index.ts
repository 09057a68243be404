// Name indexes: pods by (name, namespace, uid, attempt), containers by (pod, name,
// attempt) → the object holding the name. A name is reserved before any side effect of
// RunPodSandbox/CreateContainer and released when that fails or the object is removed.
// While a run is in progress its promise is kept, so a kubelet retry of the same request
// (it gives up after its own timeout and sends it again) waits for that run and gets its
// result, instead of "name is reserved" in a loop (containerd#9947).
import { AlreadyExistsError } from '../../errors.js';

export interface NameHolder {
  id: string;
  configHash: string;
  /** Set while the run that reserved the name is in progress. */
  pending: Promise<string> | undefined;
}

export type Reservation = { kind: 'reserved' } | { kind: 'wait'; pending: Promise<string> } | { kind: 'existing'; id: string };

export interface NameIndexOptions {
  /** What a name is, for messages: "pod sandbox name", "container name". */
  what: string;
  /** What holds one: "sandbox", "container". */
  holder: string;
}

export class NameIndex {
  private readonly holders = new Map<string, NameHolder>();

  constructor(private readonly opts: NameIndexOptions) {}

  /**
   * Reserves `key` for `id`; or, when a run of the same config holds it, says to wait
   * for that run (in progress) or to answer with its object (done, and `reusable` says
   * it may be: a READY pod, a container still created). A different config →
   * AlreadyExists naming the holder.
   */
  reserve(key: string, id: string, configHash: string, reusable: (holderId: string) => boolean): Reservation {
    const h = this.holders.get(key);
    if (h === undefined) {
      this.holders.set(key, { id, configHash, pending: undefined });
      return { kind: 'reserved' };
    }
    if (h.configHash === configHash) {
      if (h.pending !== undefined) return { kind: 'wait', pending: h.pending };
      if (reusable(h.id)) return { kind: 'existing', id: h.id };
    }
    throw new AlreadyExistsError(`${this.opts.what} "${key}" is reserved by ${this.opts.holder} "${h.id}"`);
  }

  /**
   * Runs `create` under `key` reserved for `id`, keeping its promise as the pending run;
   * or answers a retry of the same request with the run in progress (`onWait` is told)
   * or the finished object. A failed run releases the name.
   */
  async runReserved(
    key: string,
    id: string,
    configHash: string,
    reusable: (holderId: string) => boolean,
    create: () => Promise<string>,
    onWait?: () => void,
  ): Promise<string> {
    const r = this.reserve(key, id, configHash, reusable);
    if (r.kind === 'wait') {
      onWait?.();
      return r.pending;
    }
    if (r.kind === 'existing') return r.id;
    const pending = create();
    this.setPending(key, id, pending);
    try {
      const result = await pending;
      this.setPending(key, id, undefined);
      return result;
    } catch (e) {
      this.release(key, id);
      throw e;
    }
  }

  setPending(key: string, id: string, pending: Promise<string> | undefined): void {
    const h = this.holders.get(key);
    if (h?.id === id) h.pending = pending;
  }

  /** Records a holder loaded from metadata (recovery). */
  restore(key: string, id: string, configHash: string): void {
    this.holders.set(key, { id, configHash, pending: undefined });
  }

  /** Releases `key` if `id` still holds it. */
  release(key: string, id: string): void {
    if (this.holders.get(key)?.id === id) this.holders.delete(key);
  }

  holder(key: string): string | undefined {
    return this.holders.get(key)?.id;
  }
}
