// What the pod and container books say, as metrics and log lines: pods and containers
// by state (read at each scrape), container exits by reason and OOM kills (from the
// CONTAINER_STOPPED_EVENTs the sandbox layer publishes), and one log line for every exit
// nobody asked for. StopContainer, StopPodSandbox and the removals log their own stops;
// an exit on its own (the process ended, the OOM killer, a start that failed, an exit
// found at start that happened while the daemon was down) is said here, once.
//
//   managers ─publish(type, id, pod)─► tee (daemon.ts) ─┬─► ContainerEventBus (GetContainerEvents)
//                                                       └─► LifecycleObserver.published()
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';

/** A container as the books hold it (structurally the sandbox layer's record). */
export interface ObservedContainer {
  id: string;
  podId: string;
  name: string;
  pod: string;
  namespace: string;
  handler: string;
  /** The CRI state name: CONTAINER_CREATED, CONTAINER_RUNNING, CONTAINER_EXITED, CONTAINER_UNKNOWN. */
  state: string;
  exitCode: number;
  /** Completed, Error, OOMKilled, StartError (CRI ContainerStatus.reason). */
  reason: string;
}

export interface ObservedPod {
  /** The CRI state name: SANDBOX_READY or SANDBOX_NOTREADY. */
  state: string;
  handler: string;
}

/** Reads the books now (synchronously: publishers hold locks). */
export interface LifecycleSource {
  container(id: string): ObservedContainer | undefined;
  pods(): ObservedPod[];
  containers(): ObservedContainer[];
}

export interface LifecycleObserverOptions {
  registry: Registry;
  log: Logger;
  source: LifecycleSource;
}

/** What a stop request names: a container, or every container of a pod (ID or unique prefix). */
export interface StopScope {
  containerId?: string;
  podId?: string;
}

const EXITED = 'CONTAINER_EXITED';
const OOM_KILLED = 'OOMKilled';

export class LifecycleObserver {
  private readonly log: Logger;
  private readonly source: LifecycleSource;
  private readonly exits: Counter<'handler' | 'reason' | 'requested'>;
  private readonly ooms: Counter<'handler'>;
  private readonly requests = new Set<StopScope>();
  private recovering = false;
  private exitsFoundAtStart = 0;

  constructor(options: LifecycleObserverOptions) {
    this.log = options.log;
    this.source = options.source;
    const registers = [options.registry];
    const source = options.source;
    new Gauge({
      name: 'sandlot_pod_sandboxes',
      help: 'Pod sandboxes by CRI state (SANDBOX_READY, SANDBOX_NOTREADY) and runtime handler.',
      labelNames: ['state', 'handler'],
      registers,
      collect() {
        this.reset();
        for (const p of source.pods()) this.inc({ state: p.state, handler: p.handler });
      },
    });
    new Gauge({
      name: 'sandlot_containers',
      help: 'Containers by CRI state (CONTAINER_CREATED, CONTAINER_RUNNING, CONTAINER_EXITED, CONTAINER_UNKNOWN) and runtime handler.',
      labelNames: ['state', 'handler'],
      registers,
      collect() {
        this.reset();
        for (const c of source.containers()) this.inc({ state: c.state, handler: c.handler });
      },
    });
    this.exits = new Counter({
      name: 'sandlot_container_exits_total',
      help: 'Container exits by handler, reason (Completed, Error, OOMKilled, StartError) and whether a stop or remove call asked for them (requested="true").',
      labelNames: ['handler', 'reason', 'requested'],
      registers,
    });
    this.ooms = new Counter({
      name: 'sandlot_containers_oom_killed_total',
      help: 'Containers that ended because the OOM killer killed their process (reason OOMKilled).',
      labelNames: ['handler'],
      registers,
    });
  }

  /**
   * Marks the exits of `scope` as requested until the returned function is called
   * (when the stop or remove call has finished).
   */
  requestStop(scope: StopScope): () => void {
    this.requests.add(scope);
    return () => this.requests.delete(scope);
  }

  /** Exits recorded until endRecovery() happened while the daemon was down. */
  beginRecovery(): void {
    this.recovering = true;
    this.exitsFoundAtStart = 0;
  }

  /** Ends the recovery phase; returns how many exits it found. */
  endRecovery(): number {
    this.recovering = false;
    return this.exitsFoundAtStart;
  }

  /** The tee's half: called for every transition the managers publish; never throws. */
  published(type: string, containerId: string, podId: string): void {
    if (type !== 'CONTAINER_STOPPED_EVENT' || containerId === podId) return; // the pod's own: pod-manager logs it
    try {
      const c = this.source.container(containerId);
      if (c?.state === EXITED) this.exited(c);
    } catch (e) {
      this.log.warn({ err: e, containerId, podSandboxId: podId }, 'observing a container exit');
    }
  }

  private exited(c: ObservedContainer): void {
    const requested = this.isRequested(c);
    this.exits.inc({ handler: c.handler, reason: c.reason, requested: String(requested) });
    if (c.reason === OOM_KILLED) this.ooms.inc({ handler: c.handler });
    if (requested) return;
    if (this.recovering) this.exitsFoundAtStart += 1;
    const fields = {
      containerId: c.id,
      podSandboxId: c.podId,
      container: c.name,
      pod: c.pod,
      namespace: c.namespace,
      handler: c.handler,
      exitCode: c.exitCode,
      reason: c.reason,
      oomKilled: c.reason === OOM_KILLED,
      ...(this.recovering ? { whileDaemonDown: true } : {}),
    };
    if (c.reason === 'Completed') this.log.info(fields, 'container exited');
    else this.log.warn(fields, 'container exited');
  }

  private isRequested(c: ObservedContainer): boolean {
    for (const r of this.requests) {
      if (r.containerId !== undefined && r.containerId !== '' && c.id.startsWith(r.containerId)) return true;
      if (r.podId !== undefined && r.podId !== '' && c.podId.startsWith(r.podId)) return true;
    }
    return false;
  }
}
