// Container lifecycle events for GetContainerEvents (the kubelet's evented PLEG).
//
//   ContainerManager ─┐                        ┌─► subscriber queue (bounded) ─► stream 1
//                     ├─ publish(type, id, pod)┤
//   PodManager ───────┘   snapshot(pod) once   └─► subscriber queue (bounded) ─► stream 2
//
// As containerd's CRI: every event carries the status of its pod and of all the pod's
// containers, taken when the event is published (after the transition was saved), and
// sandboxes send events too, with their own ID as container_id. A subscriber that falls
// `bufferSize` events behind is dropped (its stream ends with RESOURCE_EXHAUSTED after
// what it had buffered) rather than letting the queue grow without bound: the kubelet
// then falls back to relisting, which is what a lost event would need anyway.
import type { Logger } from 'pino';
import { ResourceExhaustedError, UnavailableError } from '../../errors.js';
import type { ContainerRecord } from './container.js';
import type { SandboxRecord } from '../pod/sandbox.js';

/** The CRI ContainerEventType names. */
export type ContainerEventType = 'CONTAINER_CREATED_EVENT' | 'CONTAINER_STARTED_EVENT' | 'CONTAINER_STOPPED_EVENT' | 'CONTAINER_DELETED_EVENT';

export interface ContainerEvent {
  type: ContainerEventType;
  /** The container's ID, or the sandbox's for events of the sandbox itself. */
  containerId: string;
  podId: string;
  /** Unix nanoseconds; strictly increasing within one bus. */
  createdAtNs: bigint;
  /** The pod as it was at publish time; undefined once it is removed. */
  pod: SandboxRecord | undefined;
  /** Every container of the pod at publish time (a deleted one is no longer among them). */
  containers: ContainerRecord[];
}

/** What the managers publish to: one call per state transition, never throws. */
export interface ContainerEventSink {
  publish(type: ContainerEventType, containerId: string, podId: string): void;
}

export interface PodSnapshot {
  pod: SandboxRecord | undefined;
  containers: ContainerRecord[];
}

export interface ContainerEventBusOptions {
  log: Logger;
  /** The pod and its containers as the stores hold them now (synchronous: publishers hold locks). */
  snapshot: (podId: string) => PodSnapshot;
  /** Events one subscriber may have waiting before it is dropped. */
  bufferSize?: number;
  now?: () => bigint;
}

/** containerd's channel size for container events. */
export const DEFAULT_EVENT_BUFFER_SIZE = 2000;

export class ContainerEventBus implements ContainerEventSink {
  private readonly log: Logger;
  private readonly snapshot: (podId: string) => PodSnapshot;
  private readonly bufferSize: number;
  private readonly now: () => bigint;
  private readonly subs = new Set<ContainerEventSubscription>();
  private lastNs = 0n;
  private nextSubscriber = 1;

  constructor(options: ContainerEventBusOptions) {
    this.log = options.log;
    this.snapshot = options.snapshot;
    this.bufferSize = options.bufferSize ?? DEFAULT_EVENT_BUFFER_SIZE;
    if (!Number.isInteger(this.bufferSize) || this.bufferSize < 1) throw new RangeError(`bufferSize ${this.bufferSize} must be a positive integer`);
    this.now = options.now ?? (() => BigInt(Date.now()) * 1_000_000n);
  }

  get subscriberCount(): number {
    return this.subs.size;
  }

  publish(type: ContainerEventType, containerId: string, podId: string): void {
    if (this.subs.size === 0) return; // nobody listens: no snapshot to take
    let snap: PodSnapshot;
    try {
      // A copy: the stores' records change after this call returns.
      snap = structuredClone(this.snapshot(podId));
    } catch (e) {
      this.log.warn({ err: e, containerId, podSandboxId: podId }, 'taking the pod snapshot of a container event; sending it without statuses');
      snap = { pod: undefined, containers: [] };
    }
    let ns = this.now();
    if (ns <= this.lastNs) ns = this.lastNs + 1n;
    this.lastNs = ns;
    const event: ContainerEvent = { type, containerId, podId, createdAtNs: ns, pod: snap.pod, containers: snap.containers };
    for (const s of [...this.subs]) {
      if (!s.offer(event)) {
        this.subs.delete(s);
        this.log.warn(
          { subscriber: s.id, bufferSize: this.bufferSize, containerId, podSandboxId: podId },
          'container event subscriber fell behind; dropping it',
        );
      }
    }
  }

  subscribe(): ContainerEventSubscription {
    const s = new ContainerEventSubscription(this.nextSubscriber++, this.bufferSize, () => this.subs.delete(s));
    this.subs.add(s);
    return s;
  }

  /** Ends every subscription (daemon shutdown): their streams end with UNAVAILABLE. */
  close(): void {
    for (const s of [...this.subs]) s.end(new UnavailableError('container events: the daemon is shutting down'));
    this.subs.clear();
  }
}

/**
 * One subscriber's queue. `next()` waits for the next event; it resolves undefined once
 * the subscription is closed or the signal aborts, and throws once it was dropped (after
 * the events it had buffered).
 */
export class ContainerEventSubscription {
  private readonly queue: ContainerEvent[] = [];
  private waiter: (() => void) | undefined;
  private closed = false;
  private failure: Error | undefined;

  constructor(
    readonly id: number,
    private readonly bufferSize: number,
    private readonly detach: () => void,
  ) {}

  get buffered(): number {
    return this.queue.length;
  }

  /** For the bus: false when the queue is full (the subscriber is dropped then). */
  offer(event: ContainerEvent): boolean {
    if (this.closed || this.failure) return false;
    if (this.queue.length >= this.bufferSize) {
      this.failure = new ResourceExhaustedError(
        `container events: subscriber ${this.id} fell ${this.bufferSize} events behind and was dropped; subscribe again and relist`,
      );
      this.wake();
      return false;
    }
    this.queue.push(event);
    this.wake();
    return true;
  }

  /** For the bus: ends the subscription with `error` (after what was buffered). */
  end(error: Error): void {
    if (this.closed) return;
    this.failure ??= error;
    this.wake();
  }

  async next(signal?: AbortSignal): Promise<ContainerEvent | undefined> {
    for (;;) {
      const ev = this.queue.shift();
      if (ev) return ev;
      if (this.failure) {
        this.close();
        throw this.failure;
      }
      if (this.closed || signal?.aborted) return undefined;
      await new Promise<void>((resolve) => {
        const onAbort = (): void => resolve();
        signal?.addEventListener('abort', onAbort, { once: true });
        this.waiter = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
      });
      this.waiter = undefined;
      if (signal?.aborted) {
        this.close();
        return undefined;
      }
    }
  }

  /** Unsubscribes; idempotent. Buffered events are dropped. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.detach();
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }
}
