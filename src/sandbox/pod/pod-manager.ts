// Pod sandboxes (S1–S9): RunPodSandbox, StopPodSandbox, RemovePodSandbox, status, list,
// and recovery at start. The infra container is `catatonit -P` created by the pod's
// runtime handler directly, without a conmon (issue 13), and watched by pidfd; the pod network is a pinned netns with CNI; the pod cgroup is
// made on cgroupfs under config.cgroup_root. This class is the registry (the store, the
// cells, the name reservation and the locks); the handlers and their probes are
// runtime-handlers.ts; the objects the steps use are made once here, and the steps live
// beside it: pod-run.ts, pod-destroy.ts (stop, remove) and pod-recovery.ts.
//
// Concurrency (STYLE.md §7): one async mutex per sandbox; the store and the name index
// are only touched between awaits, never locked across a call to an external program.
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import type { SandlotConfig } from '../../config/types.js';
import { readExitFile } from '../../oci/conmon.js';
import type { RuntimeDriver } from '../../oci/runtime.js';
import { resolveBinary } from '../../oci/command.js';
import { validateSysctls } from '../../oci/spec-sandbox.js';
import { PidWatches } from '../../../native/index.js';
import { KeyedMutex } from '../../util/mutex.js';
import type { CgroupManager } from '../resources/cgroups.js';
import type { ContainerEventSink } from '../container/container-events.js';
import { NameIndex } from '../store/name-index.js';
import { removePodLocked, stopPodLocked, type PodContainersHook, type PodNetwork, type PodTeardown } from './pod-destroy.js';
import { PodFilestores } from '../storage/pod-mounts-filestores.js';
import { RuntimeHandlers, type RuntimeHandlerStatus } from './runtime-handlers.js';
import { recoverPods } from './pod-recovery.js';
import { infraOomScoreAdj, runPodLocked, type PodSetup } from './pod-run.js';
import { nameKey, requireState, stableJson, type RunPodInput, type SandboxRecord } from './sandbox.js';
import { isSameProcess } from './infra-process.js';
import { SandboxStore } from '../store/sandbox-store.js';
import { Cell } from '../store/cell.js';
import type { PodSandbox } from '../store/cell-types.js';

export type { PodContainersHook, PodNetwork } from './pod-destroy.js';
export type { RuntimeHandlerStatus } from './runtime-handlers.js';
export { CONTAINERS_STOP_GRACE_MS } from './pod-destroy.js';

export interface PodManagerOptions {
  config: SandlotConfig;
  log: Logger;
  network: PodNetwork;
  /** The daemon's one manager: its tree lock orders every create and prune (S12). */
  cgroups: CgroupManager;
  /** Drivers by handler name; made from config.runtimes when absent. */
  runtimes?: Map<string, RuntimeDriver>;
  containers?: PodContainersHook;
  filestores?: PodFilestores;
}

export type { PodSandbox } from '../store/cell-types.js';

export interface PodFilter {
  id?: string;
  state?: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  labelSelector?: Record<string, string>;
}

export class PodManager {
  private readonly config: SandlotConfig;
  private readonly log: Logger;
  private readonly handlers: RuntimeHandlers;
  private readonly store: SandboxStore;
  private readonly names = new NameIndex({ what: 'pod sandbox name', holder: 'sandbox' });
  private readonly locks = new KeyedMutex();
  /** The objects RunPodSandbox's steps use, made once. */
  private readonly setup: PodSetup;
  /** The objects stop, remove and recovery use, made once. */
  private readonly teardown: PodTeardown;
  containers: PodContainersHook | undefined;
  /** GetContainerEvents: sandboxes send events too, as containerd's (wired by the daemon). */
  events: ContainerEventSink | undefined;
  /** Each running pod's infra process, by pidfd: its end pushes the infra's exit (NOTREADY); StopPodSandbox waits on it. */
  private readonly infras = new PidWatches((id) => void this.onInfraGone(id));
  /** The infra conmon of each running pod made by an earlier version (conmonPid > 0): its end pushes the infra's exit with its code. */
  private readonly infraMonitors = new PidWatches((id) => void this.onInfraMonitorGone(id));

  constructor(options: PodManagerOptions) {
    const { config, log, network, cgroups } = options;
    this.config = config;
    this.log = log;
    this.containers = options.containers;
    this.store = new SandboxStore({ rootDir: config.root_dir });
    this.handlers = new RuntimeHandlers({ config, log, cgroups, ...(options.runtimes !== undefined ? { runtimes: options.runtimes } : {}) });
    let catatonit: string | undefined;
    let oomScoreAdj: number | undefined;
    this.setup = {
      config,
      store: this.store,
      network,
      cgroups,
      catatonit: () => (catatonit ??= resolveBinary(config.catatonit_path)),
      infraOomScoreAdj: () => (oomScoreAdj ??= infraOomScoreAdj()),
      log,
    };
    this.teardown = {
      store: this.store,
      names: this.names,
      network,
      cgroups,
      filestores: options.filestores ?? new PodFilestores({ log }),
      runtimes: this.handlers.drivers,
      log,
      // Wired by the daemon after both managers exist.
      containers: () => this.containers,
      infraWatches: (id) => ({ infra: this.infras.get(id), monitor: this.infraMonitors.get(id) }),
    };
  }

  /** The cell of pod `id`: the one way its record changes. */
  cell(id: string): PodSandbox {
    return new Cell({
      kind: 'sandbox',
      unknownAllows: 'StopPodSandbox and RemovePodSandbox',
      id,
      store: this.store,
      locks: this.locks,
      events: this.events,
      podIdOf: (r) => r.id,
      log: this.log,
    });
  }

  // ── start ────────────────────────────────────────────────────────────────────────

  /** Probes every handler, then reconciles the books with what runs (recovery). */
  async start(): Promise<void> {
    await this.handlers.probeAll();
    await this.recover();
  }

  /** Every configured handler with its probe result (the CRI Status runtime_handlers). */
  runtimeHandlers(): RuntimeHandlerStatus[] {
    return this.handlers.statuses();
  }

  /** The driver for a handler name ("" = default); InvalidArgument listing the configured ones. */
  driver(handler: string): RuntimeDriver {
    return this.handlers.driver(handler);
  }

  // ── RunPodSandbox ───────────────────────────────────────────────────────────────

  async run(input: RunPodInput): Promise<string> {
    const driver = this.handlers.readyDriver(input.runtimeHandler);
    validateSysctls(input.sysctls, input.namespaces);
    const config: RunPodInput = { ...input, runtimeHandler: driver.name };
    const configHash = createHash('sha256').update(stableJson(config)).digest('hex');
    const key = nameKey(config.metadata);
    const id = randomBytes(32).toString('hex');
    const ran = await this.names.runReserved(
      key,
      id,
      configHash,
      (holder) => this.store.findKept(holder)?.state === 'running',
      () => this.locks.runExclusive(id, () => runPodLocked(this.setup, this.cell(id), config, configHash, driver)),
      () => this.log.info({ podSandboxId: this.names.holder(key), pod: key }, 'waiting for the run in progress of the same pod'),
    );
    this.watchInfra(ran);
    return ran;
  }

  /**
   * Watches a running pod's infra by pidfd, opened before the PID is checked against the
   * start time recorded at create (infra-process.ts): a PID found someone else's (the
   * infra died while the daemon was down and its PID was reused) is the infra's end. A
   * pod of an earlier version is watched through its infra conmon too, as it was made.
   */
  private watchInfra(id: string): void {
    const rec = this.store.findKept(id);
    if (rec?.state !== 'running') return;
    this.infras.watch(id, rec.pid);
    if (rec.conmonPid > 0) {
      this.infraMonitors.watch(id, rec.conmonPid);
      return;
    }
    if (!isSameProcess(rec.pid, rec.pidStartTicks)) {
      this.infras.forget(id);
      void this.onInfraGone(id);
    }
  }

  // ── Stop / Remove ───────────────────────────────────────────────────────────────

  /** Idempotent; an unknown ID succeeds (the CRI requires it). */
  async stop(idOrPrefix: string): Promise<void> {
    const found = this.store.findKept(idOrPrefix);
    if (!found) return;
    const pod = this.cell(found.id);
    await pod.locked(async () => {
      if (pod.find()) await stopPodLocked(this.teardown, pod);
    });
  }

  /** S7: idempotent, thorough, every step tried; failures joined. */
  async remove(idOrPrefix: string): Promise<void> {
    const found = this.store.findKept(idOrPrefix);
    if (!found) return;
    const pod = this.cell(found.id);
    await pod.locked(async () => {
      if (pod.find()) await removePodLocked(this.teardown, pod);
    });
    if (!this.store.has(found.id)) {
      this.infras.forget(found.id);
      this.infraMonitors.forget(found.id);
    }
  }

  // ── Status / List ───────────────────────────────────────────────────────────────

  /**
   * The infra process ended: the READY pod is NOTREADY now (Status and List answer from
   * memory). There is no exit code without a monitor (the infra is not our child), and
   * none is CRI-visible: the reason says the infra exited. A pod of an earlier version
   * waits for its conmon's end instead (onInfraMonitorGone), which has the code.
   */
  private async onInfraGone(id: string): Promise<void> {
    const pod = this.cell(id);
    try {
      await pod.locked(async () => {
        const rec = pod.find();
        if (rec?.state !== 'running' || rec.conmonPid > 0) return; // stopped by StopPodSandbox, gone, or conmon's to tell
        const record = (d: SandboxRecord): void => {
          d.reason = 'the infra process exited';
        };
        await pod.updateLocked('record the infra exit of', ['running'], record, { to: 'stopped', event: 'CONTAINER_STOPPED_EVENT' });
        this.log.warn({ podSandboxId: id, pid: rec.pid }, 'pod sandbox infra exited; the pod is not ready');
      });
    } catch (e) {
      this.log.warn({ err: e, podSandboxId: id }, 'recording a pod infra exit');
    }
  }

  /**
   * The infra conmon of a pod made by an earlier version ended, so the infra did and
   * conmon wrote its exit file: the READY pod is NOTREADY now, with the exit code.
   */
  private async onInfraMonitorGone(id: string): Promise<void> {
    const pod = this.cell(id);
    try {
      await pod.locked(async () => {
        const rec = pod.find();
        if (rec?.state !== 'running') return; // stopped by StopPodSandbox, or gone
        const code = await readExitFile(rec.paths.exitDir, rec.id).catch(() => undefined);
        if (code === undefined) {
          this.log.warn({ podSandboxId: id, conmonPid: rec.conmonPid }, 'the pod infra monitor ended without an exit file');
          return;
        }
        const record = (d: SandboxRecord): void => {
          d.exitCode = code;
          d.reason = `the infra process exited with ${code}`;
        };
        await pod.updateLocked('record the infra exit of', ['running'], record, { to: 'stopped', event: 'CONTAINER_STOPPED_EVENT' });
        this.log.warn({ podSandboxId: id, exitCode: code }, 'pod sandbox infra exited; the pod is not ready');
      });
    } catch (e) {
      this.log.warn({ err: e, podSandboxId: id }, 'recording a pod infra exit');
    }
  }

  /** The record (exact ID or unique prefix); NotFound otherwise; FailedPrecondition for an unreadable one. */
  get(idOrPrefix: string): SandboxRecord {
    const rec = this.store.resolve(idOrPrefix);
    if (rec.state === 'unknown') requireState(rec, 'read the status of');
    return rec;
  }

  /** get() for a status read: the kept record itself, frozen, no copy (AnswerMemo keys on it). */
  view(idOrPrefix: string): Readonly<SandboxRecord> {
    const rec = this.store.resolveKept(idOrPrefix);
    if (rec.state === 'unknown') requireState(rec, 'read the status of');
    return rec;
  }

  /** Runs `fn` holding the sandbox's mutex (for the container layer: creating in a pod), with the kept record (frozen). */
  async withSandbox<T>(idOrPrefix: string, fn: (rec: Readonly<SandboxRecord>) => Promise<T>): Promise<T> {
    const id = this.store.resolveKept(idOrPrefix).id;
    return this.locks.runExclusive(id, async () => fn(this.store.resolveKept(id)));
  }

  /** The pods matching `filter`, oldest first; the kept records (frozen), never copies. */
  list(filter: PodFilter = {}): ReadonlyArray<Readonly<SandboxRecord>> {
    let recs = this.store.listByCreation();
    if (filter.id) {
      let one: SandboxRecord | undefined;
      try {
        one = this.store.find(filter.id);
      } catch {
        one = undefined; // an ambiguous prefix matches nothing, like containerd
      }
      recs = one ? [one] : [];
    }
    if (filter.state) recs = recs.filter((r) => (r.state === 'running' ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY') === filter.state);
    const sel = Object.entries(filter.labelSelector ?? {});
    if (sel.length > 0) recs = recs.filter((r) => sel.every(([k, v]) => r.config.labels[k] === v));
    return recs;
  }

  /** S4: guards for callers from the container layer. */
  requireRunning(idOrPrefix: string, action: string): Readonly<SandboxRecord> {
    const rec = this.store.resolveKept(idOrPrefix);
    requireState(rec, action, 'running');
    return rec;
  }

  // ── Recovery ────────────────────────────────────────────────────────────────────

  /**
   * Reconciles metadata with the runtimes and the network at start: half-made pods are
   * undone, pods whose infra died are NOTREADY, leftovers without metadata are released.
   */
  async recover(): Promise<void> {
    await recoverPods({
      ...this.teardown,
      cell: (id) => this.cell(id),
      stateDir: this.config.state_dir,
      defaultCgroupParent: path.join(this.config.cgroup_root, this.config.default_cgroup_parent),
    });
    // Infra exits from now on are pushed (recovery found those of the time the daemon was down).
    for (const rec of this.store.list()) this.watchInfra(rec.id);
  }

  /** Stops watching (the daemon's shutdown). */
  close(): void {
    this.infras.close();
    this.infraMonitors.close();
  }
}
