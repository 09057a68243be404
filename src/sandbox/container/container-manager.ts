// App containers of pods (S1, S4–S11): CreateContainer, StartContainer, StopContainer,
// RemoveContainer, status, list, UpdateContainerResources, ReopenContainerLog, exit
// detection and recovery at start. Each container is a subcontainer of its pod: its
// spec joins the pod's namespaces and nests its cgroup under the pod cgroup (S12); it
// runs under a monitor (conmon for runc-like handlers) that keeps its CRI log, writes its
// exit file and outlives the daemon. This class is the registry (the store, the cells,
// the name reservation and the locks); the objects the steps use are made once here
// (ContainerMonitors: the monitor per handler and the runtime files; ExitBooks: exits
// recorded; PodOomScores: S10), and the steps live beside it: container-create.ts,
// container-start.ts, container-destroy.ts (stop, remove), exit-books.ts and
// container-recovery.ts.
//
// Concurrency (STYLE.md §7): one async mutex per container; CreateContainer also holds
// its pod's mutex (so a pod cannot be stopped half-way through a create in it). No lock
// spans the whole store.
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { SandlotConfig } from '../../config/types.js';
import { errorMessage } from '../../errors.js';
import { reopenConmonLog, type Conmon } from '../../oci/conmon.js';
import type { RuntimeDriver } from '../../oci/runtime.js';
import { buildResources, NODE_SPEC_LOOKUPS, type CriContainerResources, type SpecLookups } from '../../oci/spec-container.js';
import { containerSpecExtensions } from '../../oci/spec-container-extensions.js';
import { PidWatches } from '../../../native/index.js';
import { KeyedMutex } from '../../util/mutex.js';
import type { CgroupManager } from '../resources/cgroups.js';
import { containerNameKey, type ContainerRecord } from './container.js';
import { createContainerLocked, type ContainerSetup, type CreateContainerInput } from './container-create.js';
import { finishStopLocked, removeContainerLocked, signalStopLocked, waitGrace, type ContainerImages, type ContainerPods } from './container-destroy.js';
import { ExitDeletes } from './container-runtime-delete.js';
import type { ContainerEventSink } from './container-events.js';
import { ExitBooks } from './exit-books.js';
import { filterContainers, type ContainerFilter } from './container-filter.js';
import type { ContainerMonitor } from './container-monitor.js';
import { ContainerMonitors } from './container-monitors.js';
import { PodOomScores } from '../resources/pod-oom-scores.js';
import { recoverContainers } from './container-recovery.js';
import { startContainerLocked } from './container-start.js';
import { ContainerStore } from '../store/container-store.js';
import { NameIndex } from '../store/name-index.js';
import { OomScoreApplier } from '../resources/oom-score.js';
import type { PodContainersHook } from '../pod/pod-manager.js';
import { PodFilestores } from '../storage/pod-mounts-filestores.js';
import { stableJson } from '../pod/sandbox.js';
import { Cell } from '../store/cell.js';
import type { Container } from '../store/cell-types.js';

export type { Container } from '../store/cell-types.js';

export type { ContainerImages, ContainerPods } from './container-destroy.js';

/** A read answered from memory, as a promise (a throw becomes its rejection). */
function fromMemory<T>(read: () => T): Promise<T> {
  return new Promise((resolve) => resolve(read()));
}
export type { CreateContainerInput } from './container-create.js';
export { UNKNOWN_EXIT_CODE } from './exit-books.js';

export interface ContainerManagerOptions {
  config: SandlotConfig;
  log: Logger;
  images: ContainerImages;
  pods: ContainerPods;
  conmon?: Conmon;
  /** The daemon's one manager: its tree lock orders every create and prune (S12). */
  cgroups: CgroupManager;
  oomScores?: OomScoreApplier;
  specLookups?: SpecLookups;
  /**
   * The monitor for a handler's containers; undefined → the default (conmon over the
   * handler's CLI). runsc handlers need one (the runsc subcontainer shim).
   */
  monitorFor?: (driver: RuntimeDriver) => ContainerMonitor | undefined;
  filestores?: PodFilestores;
}

export class ContainerManager {
  private readonly config: SandlotConfig;
  private readonly log: Logger;
  private readonly pods: ContainerPods;
  private readonly images: ContainerImages;
  private readonly store: ContainerStore;
  private readonly names = new NameIndex({ what: 'container name', holder: 'container' });
  private readonly locks = new KeyedMutex();
  private readonly oom: OomScoreApplier;
  private readonly monitors: ContainerMonitors;
  private readonly exits: ExitBooks;
  private readonly podScores: PodOomScores;
  /** The objects the steps (create, stop, remove, recovery) use, made once. */
  private readonly parts: ContainerSetup;
  /** Each created or running container's conmon, by pidfd: its end is the container's exit, pushed. */
  private readonly monitorEnds = new PidWatches((id) => void this.onMonitorGone(id));
  /** GetContainerEvents: one publish per transition, after it is saved (wired by the daemon). */
  events: ContainerEventSink | undefined;

  constructor(options: ContainerManagerOptions) {
    const { config, log, pods } = options;
    this.config = config;
    this.log = log;
    this.pods = pods;
    this.images = options.images;
    this.store = new ContainerStore({ rootDir: config.root_dir });
    this.oom = options.oomScores ?? new OomScoreApplier({ logger: log });
    this.monitors = new ContainerMonitors({
      config,
      cgroups: options.cgroups,
      driver: (handler) => pods.driver(handler),
      log,
      ...(options.conmon !== undefined ? { conmon: options.conmon } : {}),
      ...(options.monitorFor !== undefined ? { monitorFor: options.monitorFor } : {}),
    });
    this.podScores = new PodOomScores({
      oom: this.oom,
      log,
      pod: (podId) => pods.view(podId),
      // Only running containers count: a created one has no process yet, an exited one none any more.
      members: (podId) =>
        this.store
          .ofPod(podId)
          .filter((c) => c.state === 'running')
          .map((c) => ({ id: c.id, type: 'container' as const, ...(c.oomScoreAdj !== undefined ? { oomScoreAdj: c.oomScoreAdj } : {}) })),
    });
    const exitDeletes = new ExitDeletes(this.monitors, log);
    this.exits = new ExitBooks({ monitors: this.monitors, podScores: this.podScores, onRecorded: (rec) => exitDeletes.begin(rec) });
    this.parts = {
      exits: this.exits,
      exitDeletes,
      monitors: this.monitors,
      names: this.names,
      log,
      images: options.images,
      pods,
      cgroups: options.cgroups,
      filestores: options.filestores ?? new PodFilestores({ log }),
      monitorEnds: this.monitorEnds,
      lookups: options.specLookups ?? NODE_SPEC_LOOKUPS,
      specExtensions: containerSpecExtensions(config, log),
    };
  }

  /** What the PodManager calls at StopPodSandbox / RemovePodSandbox. */
  podHook(): PodContainersHook {
    return {
      stopAll: (podId, timeoutMs) => this.stopAll(podId, timeoutMs),
      removeAll: (podId) => this.removeAll(podId),
    };
  }

  /** The cell of container `id`: the one way its record changes. */
  cell(id: string): Container {
    return new Cell({
      kind: 'container',
      unknownAllows: 'RemoveContainer',
      id,
      store: this.store,
      locks: this.locks,
      events: this.events,
      podIdOf: (r) => r.podId,
      log: this.log,
    });
  }

  // ── CreateContainer ────────────────────────────────────────────────────────────

  async create(input: CreateContainerInput): Promise<string> {
    const pod = this.pods.view(input.podId); // NotFound for an unknown pod
    this.pods.requireRunning(pod.id, 'create a container in');
    const imageRef = input.config.image.image;
    this.images.resolve(imageRef); // NotFound naming the image
    const metadata = { name: input.config.metadata.name, attempt: input.config.metadata.attempt ?? 0 };
    const key = containerNameKey(pod.id, metadata);
    const configHash = createHash('sha256')
      .update(stableJson({ pod: pod.id, config: input.config }))
      .digest('hex');
    const id = randomBytes(32).toString('hex');
    const created = await this.names.runReserved(
      key,
      id,
      configHash,
      (holder) => this.store.findKept(holder)?.state === 'created',
      () =>
        this.pods.withSandbox(pod.id, (p) =>
          this.locks.runExclusive(id, () => createContainerLocked(this.parts, this.cell(id), p, input, metadata, configHash)),
        ),
      () => this.log.info({ podSandboxId: pod.id, container: key }, 'waiting for the create in progress of the same container'),
    );
    this.watchMonitor(created);
    return created;
  }

  // ── StartContainer ─────────────────────────────────────────────────────────────

  async start(idOrPrefix: string): Promise<void> {
    const c = this.cell(this.store.resolveKept(idOrPrefix).id);
    await c.locked(async () => {
      await this.exits.refreshLocked(c);
      const rec = c.record;
      // The retried start of one whose start a crash lost succeeds; otherwise S4 holds.
      if (rec.state === 'running' && rec.startRecovered === true) return;
      await startContainerLocked({ monitors: this.monitors, oom: this.oom, log: this.log }, c);
    });
    // S10: after every start.
    await this.adjustPodOom(c.record.podId);
  }

  // ── StopContainer ──────────────────────────────────────────────────────────────

  /** Idempotent: a stopped or unknown container succeeds. `timeoutMs` 0 → SIGKILL at once. */
  async stop(idOrPrefix: string, timeoutMs: number): Promise<void> {
    const found = this.store.findKept(idOrPrefix);
    if (!found) return;
    const c = this.cell(found.id);
    const t = this.parts;
    const graceful = await c.locked(async () => c.find() !== undefined && (await signalStopLocked(t, c, timeoutMs)));
    // The grace is waited for without the lock: Status and List answer, and a RemoveContainer
    // or a StopContainer with a shorter timeout escalates at once (as containerd's).
    if (graceful) await waitGrace(t, c, timeoutMs);
    await c.locked(() => finishStopLocked(t, c));
  }

  /** Watches the conmon of a created or running container (its exit is pushed from then on). */
  private watchMonitor(id: string): void {
    const rec = this.store.findKept(id);
    if (rec && (rec.state === 'created' || rec.state === 'running')) this.monitorEnds.watch(id, rec.conmonPid);
  }

  /** conmon is gone, so the exit file is written: record the exit (once, under the lock). */
  private async onMonitorGone(id: string): Promise<void> {
    try {
      const c = this.cell(id);
      await c.locked(async () => {
        await this.exits.refreshLocked(c);
        const rec = c.find();
        if (rec?.state === 'running') this.log.warn({ containerId: id, conmonPid: rec.conmonPid }, 'the container monitor ended without an exit file');
      });
    } catch (e) {
      this.log.warn({ err: e, containerId: id }, 'recording a container exit');
    }
  }

  // ── RemoveContainer ────────────────────────────────────────────────────────────

  /** S7: idempotent (an unknown ID succeeds, as the CRI requires), thorough, failures joined. */
  async remove(idOrPrefix: string): Promise<void> {
    const found = this.store.findKept(idOrPrefix);
    if (!found) return;
    const c = this.cell(found.id);
    await c.locked(async () => {
      if (c.find()) await removeContainerLocked(this.parts, c);
    });
    if (!this.store.has(found.id)) this.monitorEnds.forget(found.id);
    await this.adjustPodOom(found.podId); // S10: after every removal
  }

  // ── Pod hooks ──────────────────────────────────────────────────────────────────

  async stopAll(podId: string, timeoutMs: number): Promise<void> {
    // An unknown container (its record did not load) is refused a stop; the pod's remove removes it.
    const results = await Promise.allSettled(
      this.store
        .ofPod(podId)
        .filter((c) => c.state !== 'unknown')
        .map((c) => this.stop(c.id, timeoutMs)),
    );
    const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    if (errors.length > 0) throw new AggregateError(errors, errors.map(errorMessage).join('; '));
  }

  async removeAll(podId: string): Promise<void> {
    const errors: Error[] = [];
    for (const c of this.store.ofPod(podId)) {
      await this.remove(c.id).catch((e: unknown) => errors.push(e as Error));
    }
    this.podScores.forget(podId);
    if (errors.length > 0) throw new AggregateError(errors, errors.map(errorMessage).join('; '));
  }

  // ── Status / List / Update / Reopen ────────────────────────────────────────────

  /** From memory: exits are pushed (monitorEnds), nothing is read and no lock is taken. */
  status(idOrPrefix: string): Promise<ContainerRecord> {
    return fromMemory(() => this.store.resolve(idOrPrefix));
  }

  /** status() without the copy: the kept record itself, frozen (a status answer; AnswerMemo keys on it). */
  view(idOrPrefix: string): Promise<Readonly<ContainerRecord>> {
    return fromMemory(() => this.store.resolveKept(idOrPrefix));
  }

  /** The pod's containers as the store holds them now (no refresh: for event snapshots). */
  records(podId: string): ContainerRecord[] {
    return this.store.ofPod(podId);
  }

  /** From memory, like status. */
  list(filter: ContainerFilter = {}): Promise<ContainerRecord[]> {
    return fromMemory(() => this.listNow(filter));
  }

  private listNow(filter: ContainerFilter): ContainerRecord[] {
    let podId = filter.podId;
    if (podId) {
      try {
        podId = this.pods.get(podId).id;
      } catch {
        // a removed pod: match its exact ID
      }
    }
    const recs = filterContainers(this.store.listByCreation(), { ...filter, ...(podId ? { podId } : {}) }, (id) => this.store.find(id));
    return recs;
  }

  /** Applies resources through the runtime's `update`; refused for a stopped container. */
  async updateResources(idOrPrefix: string, resources: CriContainerResources): Promise<void> {
    const id = this.store.resolve(idOrPrefix).id;
    const oci = buildResources(resources); // validates before anything changes
    const c = this.cell(id);
    await c.locked(async () => {
      await this.exits.refreshLocked(c);
      await c.updateLocked('update', ['created', 'running'], async (d) => {
        await this.monitors.of(d.runtimeHandler).update(id, oci);
        // The score is fixed at create (the runtime cannot change it later): keep the old one.
        d.resources = { ...resources, oom_score_adj: d.resources.oom_score_adj ?? 0 };
      });
      this.log.info({ containerId: id }, 'container resources updated');
    });
  }

  /** Makes the monitor reopen the CRI log file (the kubelet's log rotation). */
  async reopenLog(idOrPrefix: string): Promise<void> {
    const id = this.store.resolve(idOrPrefix).id;
    const c = this.cell(id);
    await c.locked(async () => {
      await this.exits.refreshLocked(c);
      const rec = c.require('reopen the log of', ['running']);
      await reopenConmonLog(rec.paths.ctlFifo, { containerId: rec.id, logPath: rec.monitorLogPath });
    });
  }

  // ── S10 ────────────────────────────────────────────────────────────────────────

  private async adjustPodOom(podId: string): Promise<void> {
    await this.podScores.adjust(podId);
  }

  // ── Recovery ───────────────────────────────────────────────────────────────────

  /**
   * Reconciles metadata with the monitors' exit files and the runtimes at start
   * (container-recovery.ts), then watches each monitor for its exit. Call once, after the PodManager's
   * own recovery.
   */
  async recover(): Promise<void> {
    await recoverContainers({
      ...this.parts,
      store: this.store,
      cell: (id) => this.cell(id),
      stateDir: this.config.state_dir,
      handlers: Object.keys(this.config.runtimes),
    });
    // Exits from now on are pushed: recovery recorded those that happened while the daemon was down.
    for (const rec of this.store.list()) this.watchMonitor(rec.id);
  }

  close(): void {
    this.monitorEnds.close();
  }
}
