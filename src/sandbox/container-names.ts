// Container names per pod: (pod ID, name, attempt) → the container holding it. Reserved
// before any side effect of CreateContainer, released when that create fails or the
// container is removed. While a create is in progress its promise is kept, so a kubelet
// retry of the same request (same pod, metadata and config: it gave up after its own
// timeout) waits for that create and gets the same ID instead of ALREADY_EXISTS in a
// loop; once done, the same request gets the created container back.
import { AlreadyExistsError } from '../errors.js';

interface Holder {
  id: string;
  configHash: string;
  pending: Promise<string> | undefined;
}

export type ContainerReservation =
  | { kind: 'reserved' }
  | { kind: 'wait'; pending: Promise<string> }
  | { kind: 'existing'; id: string };

export class ContainerNames {
  private readonly holders = new Map<string, Holder>();

  /**
   * Reserves `key` for `id`; the same config either waits for the create in progress or
   * gets the container when it is still `created` (`isFresh`); anything else → AlreadyExists.
   */
  reserve(key: string, id: string, configHash: string, isFresh: (holderId: string) => boolean): ContainerReservation {
    const h = this.holders.get(key);
    if (h === undefined) {
      this.holders.set(key, { id, configHash, pending: undefined });
      return { kind: 'reserved' };
    }
    if (h.configHash === configHash) {
      if (h.pending !== undefined) return { kind: 'wait', pending: h.pending };
      if (isFresh(h.id)) return { kind: 'existing', id: h.id };
    }
    throw new AlreadyExistsError(`container name "${key}" is reserved by container "${h.id}"`);
  }

  setPending(key: string, id: string, pending: Promise<string> | undefined): void {
    const h = this.holders.get(key);
    if (h?.id === id) h.pending = pending;
  }

  /** A holder loaded from metadata (recovery). */
  restore(key: string, id: string, configHash: string): void {
    this.holders.set(key, { id, configHash, pending: undefined });
  }

  release(key: string, id: string): void {
    if (this.holders.get(key)?.id === id) this.holders.delete(key);
  }
}
