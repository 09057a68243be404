// App containers of pods (S1, S4–S11): CreateContainer, StartContainer, StopContainer,
// RemoveContainer, status, list, UpdateContainerResources, ReopenContainerLog, exit
// detection and recovery at start. Each container is a subcontainer of its pod: its
// spec joins the pod's namespaces and nests its cgroup under the pod cgroup (S12); it
// runs under a monitor (conmon for runc-like handlers) that keeps its CRI log, writes its
// exit file and outlives the daemon. This class holds the locking and name reservation;
// the steps live beside it: container-create.ts, container-destroy.ts (stop, remove),
// exit-books.ts and container-recovery.ts.
//
// Concurrency (STYLE.md §7): one async mutex per container; CreateContainer also holds
// its pod's mutex (so a pod cannot be stopped half-way through a create in it). No lock
// spans the whole store.
import { createHash, randomBytes } from 'node:crypto';
import fsSync from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { SandlotConfig } from '../../config/types.js';
import { errorMessage, wrapError } from '../../errors.js';
import { Conmon, conmonFiles, reopenConmonLog } from '../../oci/conmon.js';
import type { RuntimeDriver } from '../../oci/runtime.js';
import { RunscShim } from '../../oci/runsc-subcontainer.js';
import { buildResources, NODE_SPEC_LOOKUPS, type ContainerSpecExtensions, type CriContainerResources, type SpecLookups } from '../../oci/spec-container.js';
import { containerSpecExtensions } from '../../oci/spec-container-extensions.js';
import { withHookStages } from '../../oci/hook-stages.js';
import { KeyedMutex } from '../../util/mutex.js';
import { CgroupManager, conmonPlacement } from '../resources/cgroups.js';
import { containerNameKey, nsString, type ContainerPaths, type ContainerRecord } from './container.js';
import { createContainerLocked, type ContainerSetup, type CreateContainerInput } from './container-create.js';
import {
  finishStopLocked,
  removeContainerLocked,
  signalStopLocked,
  waitGrace,
  type ContainerImages,
  type ContainerPods,
  type ContainerTeardown,
} from './container-destroy.js';
import type { ContainerEventSink } from './container-events.js';
import { refreshLocked, type ContainerExitBooks } from './exit-books.js';
import { ExitWatcher, OomKillReader } from './container-exits.js';
import { filterContainers, type ContainerFilter } from './container-filter.js';
import { ConmonMonitor, type ContainerMonitor } from './container-monitor.js';
import { RunscMonitor } from './container-monitor-runsc.js';
import { PodOomScores } from '../resources/pod-oom-scores.js';
import { markStartedLocked, recoverContainers } from './container-recovery.js';
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
  private readonly images: ContainerImages;
  private readonly pods: ContainerPods;
  private readonly store: ContainerStore;
  private readonly names = new NameIndex({ what: 'container name', holder: 'container' });
  private readonly locks = new KeyedMutex();
  private readonly cgroups: CgroupManager;
  private readonly oom: OomScoreApplier;
  private readonly oomKills = new OomKillReader();
  private readonly lookups: SpecLookups;
  private readonly specExtensions: ContainerSpecExtensions;
  private readonly monitorFor: ContainerManagerOptions['monitorFor'];
  private readonly monitors = new Map<string, ContainerMonitor>();
  private readonly conmonOption: Conmon | undefined;
  private conmonInstance: Conmon | undefined;
  private readonly exitDir: string;
  private readonly socketDir: string;
  private readonly podScores: PodOomScores;
  private watcher: ExitWatcher | undefined;
  private readonly filestores: PodFilestores;
  /** GetContainerEvents: one publish per transition, after it is saved (wired by the daemon). */
  events: ContainerEventSink | undefined;

  constructor(options: ContainerManagerOptions) {
    this.config = options.config;
    this.log = options.log;
    this.images = options.images;
    this.pods = options.pods;
    this.store = new ContainerStore({ rootDir: options.config.root_dir });
    this.cgroups = options.cgroups;
    this.oom = options.oomScores ?? new OomScoreApplier({ logger: options.log });
    this.lookups = options.specLookups ?? NODE_SPEC_LOOKUPS;
    this.specExtensions = containerSpecExtensions(options.config, options.log);
    this.monitorFor = options.monitorFor;
    this.filestores = options.filestores ?? new PodFilestores({ log: options.log });
    this.conmonOption = options.conmon;
    this.exitDir = path.join(options.config.state_dir, 'container-exits');
    this.socketDir = path.join(options.config.state_dir, 'attach');
    this.podScores = new PodOomScores({
      oom: this.oom,
      log: this.log,
      pod: (podId) => this.pods.get(podId),
      // Only running containers count: a created one has no process yet, an exited one none any more.
      members: (podId) =>
        this.store
          .ofPod(podId)
          .filter((c) => c.state === 'running')
          .map((c) => ({ id: c.id, type: 'container' as const, ...(c.oomScoreAdj !== undefined ? { oomScoreAdj: c.oomScoreAdj } : {}) })),
    });
  }

  /** What the PodManager calls at StopPodSandbox / RemovePodSandbox. */
  podHook(): PodContainersHook {
    return {
      stopAll: (podId, timeoutMs) => this.stopAll(podId, timeoutMs),
      removeAll: (podId) => this.removeAll(podId),
    };
  }

  /** What recording an exit touches, with the event sink as the daemon wired it. */
  private books(): ContainerExitBooks {
    return {
      store: this.store,
      exitDir: this.exitDir,
      monitor: (handler) => this.monitor(handler),
      oomKills: this.oomKills,
      podScores: this.podScores,
    };
  }

  /** What CreateContainer touches. */
  private setup(): ContainerSetup {
    return { ...this.teardown(), lookups: this.lookups, specExtensions: this.specExtensions, paths: (id) => this.paths(id) };
  }

  /** What stop and remove touch. */
  private teardown(): ContainerTeardown {
    return {
      ...this.books(),
      names: this.names,
      log: this.log,
      images: this.images,
      pods: this.pods,
      cgroups: this.cgroups,
      filestores: this.filestores,
      socketDir: this.socketDir,
    };
  }

  private get conmon(): Conmon {
    this.conmonInstance ??= this.conmonOption ?? new Conmon({ path: this.config.conmon_path, ...conmonPlacement(this.config, this.cgroups) });
    return this.conmonInstance;
  }

  private monitor(handler: string): ContainerMonitor {
    const cached = this.monitors.get(handler);
    if (cached) return cached;
    const driver = this.pods.driver(handler);
    let m = this.monitorFor?.(driver);
    if (m === undefined) {
      m =
        driver.features.subcontainerMonitor === 'runsc-shim'
          ? new RunscMonitor({ conmon: this.conmon, driver, shim: new RunscShim({ runtime: driver }), pathsOf: (id) => this.paths(id) })
          : new ConmonMonitor({ conmon: this.conmon, driver });
    }
    // S6: poststart and poststop run by sandlot around the runtime's start and delete.
    m = withHookStages(m, { features: driver.features, handler, bundleOf: (id) => this.paths(id).bundle, log: this.log });
    this.monitors.set(handler, m);
    return m;
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

  paths(id: string): ContainerPaths {
    const dir = path.join(this.config.state_dir, 'containers', id);
    const bundle = path.join(dir, 'bundle');
    const files = conmonFiles(bundle, this.socketDir, id);
    return {
      dir,
      bundle,
      spec: path.join(bundle, 'config.json'),
      exitDir: this.exitDir,
      exitFile: path.join(this.exitDir, id),
      pidFile: path.join(dir, 'container.pid'),
      conmonPidFile: path.join(dir, 'conmon.pid'),
      conmonLog: path.join(dir, 'conmon.log'),
      persistDir: path.join(dir, 'persist'),
      socketDir: this.socketDir,
      attachSocket: files.attach,
      ctlFifo: files.ctl,
    };
  }

  // ── CreateContainer ────────────────────────────────────────────────────────────

  async create(input: CreateContainerInput): Promise<string> {
    const pod = this.pods.get(input.podId); // NotFound for an unknown pod
    this.pods.requireRunning(pod.id, 'create a container in');
    const imageRef = input.config.image.image;
    this.images.resolve(imageRef); // NotFound naming the image
    const metadata = { name: input.config.metadata.name, attempt: input.config.metadata.attempt ?? 0 };
    const key = containerNameKey(pod.id, metadata);
    const configHash = createHash('sha256')
      .update(stableJson({ pod: pod.id, config: input.config }))
      .digest('hex');
    const id = randomBytes(32).toString('hex');
    return this.names.runReserved(
      key,
      id,
      configHash,
      (holder) => this.store.find(holder)?.state === 'created',
      () =>
        this.pods.withSandbox(pod.id, (p) =>
          this.locks.runExclusive(id, () => createContainerLocked(this.setup(), this.cell(id), p, input, metadata, configHash)),
        ),
      () => this.log.info({ podSandboxId: pod.id, container: key }, 'waiting for the create in progress of the same container'),
    );
  }

  // ── StartContainer ─────────────────────────────────────────────────────────────

  async start(idOrPrefix: string): Promise<void> {
    const c = this.cell(this.store.resolve(idOrPrefix).id);
    await c.locked(async () => {
      await refreshLocked(this.books(), c);
      const rec = c.record;
      // The retried start of one whose start a crash lost succeeds; otherwise S4 holds.
      if (rec.state === 'running' && rec.startRecovered === true) return;
      c.require('start', ['created']);
      await this.startLocked(c, rec);
    });
    // S10: after every start.
    await this.adjustPodOom(c.record.podId);
  }

  /** The runtime's start, committed (→ running) or, when it failed, the container exited with StartError. */
  private async startLocked(c: Container, rec: ContainerRecord): Promise<void> {
    const { id } = rec;
    const monitor = this.monitor(rec.runtimeHandler);
    // Taken before the call: a quick container may exit (exit file mtime) before start returns.
    const startedAt = nsString(Date.now());
    try {
      await monitor.start(id);
    } catch (e) {
      // The runtime's word first: one that runs was started (a start the daemon lost).
      const st = await monitor.state(id).catch(() => undefined);
      if (st?.status === 'running' || st?.status === 'paused') {
        await markStartedLocked(c, st.pid);
        this.log.warn({ containerId: id, err: e }, 'start failed but the runtime runs the container; recorded as running');
        return;
      }
      // As containerd: a container whose start failed is exited (StartError), not left created.
      await monitor.kill(id, 'SIGKILL', { all: true }).catch(() => undefined);
      const startError = (d: ContainerRecord): void => {
        d.exitCode = 128;
        d.reason = 'StartError';
        d.message = errorMessage(e);
        d.finishedAt = nsString(Date.now());
      };
      await c.updateLocked('start', ['created'], startError, { to: 'stopped', event: 'CONTAINER_STOPPED_EVENT' });
      throw wrapError(`starting container "${id}"`, e);
    }
    const started = (d: ContainerRecord): void => {
      d.startedAt = startedAt;
    };
    await c.updateLocked('start', ['created'], started, { to: 'running', event: 'CONTAINER_STARTED_EVENT' });
    this.log.info({ containerId: id, podSandboxId: rec.podId }, 'container started');
    // S11: the monitor dedicated to this container gets its score.
    await this.oom
      .adjustHelper(rec.conmonPid, rec.oomScoreAdj)
      .catch((e: unknown) => this.log.warn({ err: e, containerId: id }, 'setting the monitor oom_score_adj'));
  }

  // ── StopContainer ──────────────────────────────────────────────────────────────

  /** Idempotent: a stopped or unknown container succeeds. `timeoutMs` 0 → SIGKILL at once. */
  async stop(idOrPrefix: string, timeoutMs: number): Promise<void> {
    const found = this.store.find(idOrPrefix);
    if (!found) return;
    const c = this.cell(found.id);
    const t = this.teardown();
    const graceful = await c.locked(async () => c.find() !== undefined && (await signalStopLocked(t, c, timeoutMs)));
    // The grace is waited for without the lock: Status and List answer, and a RemoveContainer
    // or a StopContainer with a shorter timeout escalates at once (as containerd's).
    if (graceful) await waitGrace(t, c, timeoutMs);
    await c.locked(() => finishStopLocked(t, c));
  }

  /** Refreshes every running container whose exit file exists (before Status/List answer). */
  async refresh(): Promise<void> {
    for (const rec of this.store.list()) {
      // A read never waits for a container's lock (a graceful stop holds it for its whole
      // timeout): the holder records the exit itself, or the next read does.
      if (this.locks.busy(rec.id)) continue;
      if ((rec.state === 'running' || rec.state === 'created') && fsSync.existsSync(rec.paths.exitFile)) await this.onExitFile(rec.id);
    }
  }

  private async onExitFile(id: string): Promise<void> {
    try {
      const c = this.cell(id);
      await c.locked(() => refreshLocked(this.books(), c));
    } catch (e) {
      this.log.warn({ err: e, containerId: id }, 'recording a container exit');
    }
  }

  // ── RemoveContainer ────────────────────────────────────────────────────────────

  /** S7: idempotent (an unknown ID succeeds, as the CRI requires), thorough, failures joined. */
  async remove(idOrPrefix: string): Promise<void> {
    const found = this.store.find(idOrPrefix);
    if (!found) return;
    const c = this.cell(found.id);
    await c.locked(async () => {
      if (c.find()) await removeContainerLocked(this.teardown(), c);
    });
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

  async status(idOrPrefix: string): Promise<ContainerRecord> {
    const rec = this.store.resolve(idOrPrefix);
    // Answered from memory: the lock (held by a create, a start or a graceful stop for
    // its whole timeout) is taken only for an exit to record, and not waited for.
    if (!this.locks.busy(rec.id) && (rec.state === 'running' || rec.state === 'created') && fsSync.existsSync(rec.paths.exitFile)) {
      await this.onExitFile(rec.id);
    }
    return this.store.resolve(rec.id);
  }

  /** The pod's containers as the store holds them now (no refresh: for event snapshots). */
  records(podId: string): ContainerRecord[] {
    return this.store.ofPod(podId);
  }

  async list(filter: ContainerFilter = {}): Promise<ContainerRecord[]> {
    await this.refresh();
    let podId = filter.podId;
    if (podId) {
      try {
        podId = this.pods.get(podId).id;
      } catch {
        // a removed pod: match its exact ID
      }
    }
    const recs = filterContainers(this.store.list(), { ...filter, ...(podId ? { podId } : {}) }, (id) => this.store.find(id));
    return recs;
  }

  /** Applies resources through the runtime's `update`; refused for a stopped container. */
  async updateResources(idOrPrefix: string, resources: CriContainerResources): Promise<void> {
    const id = this.store.resolve(idOrPrefix).id;
    const oci = buildResources(resources); // validates before anything changes
    const c = this.cell(id);
    await c.locked(async () => {
      await refreshLocked(this.books(), c);
      await c.updateLocked('update', ['created', 'running'], async (d) => {
        await this.monitor(d.runtimeHandler).update(id, oci);
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
      await refreshLocked(this.books(), c);
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
   * (container-recovery.ts), then watches for exits. Call once, after the PodManager's
   * own recovery.
   */
  async recover(): Promise<void> {
    await recoverContainers({
      ...this.teardown(),
      cell: (id) => this.cell(id),
      stateDir: this.config.state_dir,
      paths: (id) => this.paths(id),
      handlers: Object.keys(this.config.runtimes),
    });
    this.watcher = new ExitWatcher({ exitDir: this.exitDir, log: this.log, onExit: (id) => void this.onExitFile(id) });
    this.watcher.start();
  }

  close(): void {
    this.watcher?.close();
  }
}
