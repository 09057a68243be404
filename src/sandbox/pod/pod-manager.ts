// Pod sandboxes (S1–S9): RunPodSandbox, StopPodSandbox, RemovePodSandbox, status, list,
// and recovery at start. The infra container is `catatonit -P` run by the pod's runtime
// handler under conmon; the pod network is a pinned netns with CNI; the pod cgroup is
// made on cgroupfs under config.cgroup_root. This class holds the probes, locking and
// name reservation; the steps live beside it: pod-run.ts, pod-destroy.ts (stop, remove)
// and pod-recovery.ts.
//
// Concurrency (STYLE.md §7): one async mutex per sandbox; the store and the name index
// are only touched between awaits, never locked across a call to an external program.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { SandlotConfig } from '../../config/types.js';
import { FailedPreconditionError, InvalidArgumentError } from '../../errors.js';
import { Conmon, readExitFile } from '../../oci/conmon.js';
import { resolveBinary } from '../../oci/command.js';
import { probeContainerId, type ProbeResult, type RuntimeDriver } from '../../oci/runtime.js';
import { createRuntime } from '../../oci/runtimes.js';
import { validateSysctls } from '../../oci/spec-sandbox.js';
import { KeyedMutex } from '../../util/mutex.js';
import { CgroupManager, conmonPlacement } from '../resources/cgroups.js';
import type { ContainerEventSink } from '../container/container-events.js';
import { NameIndex } from '../store/name-index.js';
import { removePodLocked, stopPodLocked, type PodContainersHook, type PodNetwork, type PodTeardown } from './pod-destroy.js';
import { PodFilestores, runscOverlayConfig } from '../storage/pod-mounts-filestores.js';
import { recoverPods } from './pod-recovery.js';
import { runPodLocked, type PodSetup } from './pod-run.js';
import { nameKey, requireState, stableJson, type RunPodInput, type SandboxRecord } from './sandbox.js';
import { SandboxStore } from '../store/sandbox-store.js';
import { Cell } from '../store/cell.js';
import type { PodSandbox } from '../store/cell-types.js';

export type { PodContainersHook, PodNetwork } from './pod-destroy.js';
export { CONTAINERS_STOP_GRACE_MS } from './pod-destroy.js';

export interface PodManagerOptions {
  config: SandlotConfig;
  log: Logger;
  network: PodNetwork;
  /** The daemon's one manager: its tree lock orders every create and prune (S12). */
  cgroups: CgroupManager;
  conmon?: Conmon;
  /** Drivers by handler name; made from config.runtimes when absent. */
  runtimes?: Map<string, RuntimeDriver>;
  containers?: PodContainersHook;
  filestores?: PodFilestores;
}

export type { PodSandbox } from '../store/cell-types.js';

export interface RuntimeHandlerStatus {
  name: string;
  ready: boolean;
  reason: string;
  message: string;
}

export interface PodFilter {
  id?: string;
  state?: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  labelSelector?: Record<string, string>;
}

export class PodManager {
  private readonly config: SandlotConfig;
  private readonly log: Logger;
  private readonly network: PodNetwork;
  private readonly cgroups: CgroupManager;
  private readonly runtimes: Map<string, RuntimeDriver>;
  private readonly probes = new Map<string, ProbeResult>();
  private readonly store: SandboxStore;
  private readonly names = new NameIndex({ what: 'pod sandbox name', holder: 'sandbox' });
  private readonly locks = new KeyedMutex();
  private readonly filestores: PodFilestores;
  private conmonInstance: Conmon | undefined;
  private readonly conmonOption: Conmon | undefined;
  containers: PodContainersHook | undefined;
  /** GetContainerEvents: sandboxes send events too, as containerd's (wired by the daemon). */
  events: ContainerEventSink | undefined;

  constructor(options: PodManagerOptions) {
    this.config = options.config;
    this.log = options.log;
    this.network = options.network;
    this.cgroups = options.cgroups;
    this.conmonOption = options.conmon;
    this.containers = options.containers;
    this.store = new SandboxStore({ rootDir: options.config.root_dir });
    this.filestores = options.filestores ?? new PodFilestores({ log: options.log });
    this.runtimes =
      options.runtimes ??
      new Map(
        Object.entries(options.config.runtimes).map(([name, rc]) => [
          name,
          // S15: the handler's overlay setting as this runsc spells --overlay2 (a bad one stops the start).
          createRuntime({ name, config: runscOverlayConfig(rc), stateDir: options.config.state_dir, log: options.log }),
        ]),
      );
  }

  /** What RunPodSandbox touches. */
  private setup(): PodSetup {
    return {
      config: this.config,
      store: this.store,
      network: this.network,
      cgroups: this.cgroups,
      conmon: () => this.conmon,
      log: this.log,
    };
  }

  /** What stop and remove touch, with the hooks as the daemon wired them. */
  private teardown(): PodTeardown {
    return {
      store: this.store,
      names: this.names,
      network: this.network,
      cgroups: this.cgroups,
      filestores: this.filestores,
      runtimes: this.runtimes,
      log: this.log,
      containers: this.containers,
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

  private get conmon(): Conmon {
    this.conmonInstance ??= this.conmonOption ?? new Conmon({ path: this.config.conmon_path, ...conmonPlacement(this.config, this.cgroups) });
    return this.conmonInstance;
  }

  // ── start ────────────────────────────────────────────────────────────────────────

  /** Probes every handler, then reconciles the books with what runs (recovery). */
  async start(): Promise<void> {
    await this.probeAll();
    await this.recover();
  }

  async probeAll(): Promise<void> {
    const catatonit = resolveBinary(this.config.catatonit_path);
    const workDir = path.join(this.config.state_dir, 'probe');
    // One at a time: runsc and runc creates compete for the 2 cores otherwise.
    for (const [name, driver] of this.runtimes) {
      let result: ProbeResult;
      if (catatonit === undefined) {
        result = { ready: false, reason: 'CatatonitNotFound', message: `catatonit binary "${this.config.catatonit_path}" not found` };
      } else {
        const cgroupsPath = path.join(this.config.cgroup_root, this.config.default_cgroup_parent, probeContainerId(name));
        try {
          result = await driver.probe({ workDir, cgroupsPath, catatonitPath: catatonit });
        } finally {
          await this.cgroups.remove(cgroupsPath).catch((e: unknown) => this.log.warn({ err: e }, 'removing probe cgroup'));
        }
      }
      this.probes.set(name, result);
      if (result.ready) this.log.info({ handler: name }, 'runtime handler ready');
      else this.log.warn({ handler: name, reason: result.reason, detail: result.message }, 'runtime handler not ready');
    }
    await fs.rm(workDir, { recursive: true, force: true });
  }

  /** Every configured handler with its probe result (the CRI Status runtime_handlers). */
  runtimeHandlers(): RuntimeHandlerStatus[] {
    return [...this.runtimes.keys()].map((name) => {
      const p = this.probes.get(name) ?? { ready: false, reason: 'NotProbed', message: 'the handler has not been probed yet' };
      return { name, ready: p.ready, reason: p.reason, message: p.message };
    });
  }

  /** The driver for a handler name ("" = default); InvalidArgument listing the configured ones. */
  driver(handler: string): RuntimeDriver {
    const name = handler === '' ? this.config.default_runtime : handler;
    const d = this.runtimes.get(name);
    if (!d) {
      throw new InvalidArgumentError(`runtime_handler "${handler}" is not configured; configured handlers: ${[...this.runtimes.keys()].join(', ')}`);
    }
    return d;
  }

  private readyDriver(handler: string): RuntimeDriver {
    const d = this.driver(handler);
    const p = this.probes.get(d.name);
    if (!p?.ready) {
      throw new FailedPreconditionError(`runtime handler "${d.name}" is not ready: ${p ? `${p.reason}: ${p.message}` : 'not probed yet'}`);
    }
    return d;
  }

  // ── RunPodSandbox ───────────────────────────────────────────────────────────────

  async run(input: RunPodInput): Promise<string> {
    const driver = this.readyDriver(input.runtimeHandler);
    validateSysctls(input.sysctls, input.namespaces);
    const config: RunPodInput = { ...input, runtimeHandler: driver.name };
    const configHash = createHash('sha256').update(stableJson(config)).digest('hex');
    const key = nameKey(config.metadata);
    const id = randomBytes(32).toString('hex');
    return this.names.runReserved(
      key,
      id,
      configHash,
      (holder) => this.store.find(holder)?.state === 'running',
      () => this.locks.runExclusive(id, () => runPodLocked(this.setup(), this.cell(id), config, configHash, driver)),
      () => this.log.info({ podSandboxId: this.names.holder(key), pod: key }, 'waiting for the run in progress of the same pod'),
    );
  }

  // ── Stop / Remove ───────────────────────────────────────────────────────────────

  /** Idempotent; an unknown ID succeeds (the CRI requires it). */
  async stop(idOrPrefix: string): Promise<void> {
    const found = this.store.find(idOrPrefix);
    if (!found) return;
    const pod = this.cell(found.id);
    await pod.locked(async () => {
      if (pod.find()) await stopPodLocked(this.teardown(), pod);
    });
  }

  /** S7: idempotent, thorough, every step tried; failures joined. */
  async remove(idOrPrefix: string): Promise<void> {
    const found = this.store.find(idOrPrefix);
    if (!found) return;
    const pod = this.cell(found.id);
    await pod.locked(async () => {
      if (pod.find()) await removePodLocked(this.teardown(), pod);
    });
  }

  // ── Status / List ───────────────────────────────────────────────────────────────

  /**
   * Notices infra processes that ended while the daemon runs: conmon writes the exit
   * file when the infra exits, so a READY pod with one is NOTREADY now (cheap: one
   * stat per running pod, done before Status and List answer).
   */
  async refresh(): Promise<void> {
    for (const rec of this.store.list()) {
      if (rec.state !== 'running') continue;
      // A read never waits for a pod's lock (held across a create or a stop): the holder
      // records the exit itself, or the next read does.
      if (this.locks.busy(rec.id)) continue;
      const code = await readExitFile(rec.paths.exitDir, rec.id).catch(() => undefined);
      if (code === undefined) continue;
      const pod = this.cell(rec.id);
      await pod.locked(async () => {
        if (this.store.find(rec.id)?.state !== 'running') return;
        const record = (d: SandboxRecord): void => {
          d.exitCode = code;
          d.reason = `the infra process exited with ${code}`;
        };
        await pod.updateLocked('record the infra exit of', ['running'], record, { to: 'stopped', event: 'CONTAINER_STOPPED_EVENT' });
        this.log.warn({ podSandboxId: rec.id, exitCode: code }, 'pod sandbox infra exited; the pod is not ready');
      });
    }
  }

  /** The record (exact ID or unique prefix); NotFound otherwise; FailedPrecondition for an unreadable one. */
  get(idOrPrefix: string): SandboxRecord {
    const rec = this.store.resolve(idOrPrefix);
    if (rec.state === 'unknown') requireState(rec, 'read the status of');
    return rec;
  }

  /** Runs `fn` holding the sandbox's mutex (for the container layer: creating in a pod). */
  async withSandbox<T>(idOrPrefix: string, fn: (rec: SandboxRecord) => Promise<T>): Promise<T> {
    const id = this.store.resolve(idOrPrefix).id;
    return this.locks.runExclusive(id, async () => fn(this.store.resolve(id)));
  }

  list(filter: PodFilter = {}): SandboxRecord[] {
    let recs = this.store.list();
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
    const sel = filter.labelSelector ?? {};
    recs = recs.filter((r) => Object.entries(sel).every(([k, v]) => r.config.labels[k] === v));
    return recs.sort((a, b) => (BigInt(a.createdAt) < BigInt(b.createdAt) ? -1 : 1));
  }

  /** S4: guards for callers from the container layer. */
  requireRunning(idOrPrefix: string, action: string): SandboxRecord {
    const rec = this.store.resolve(idOrPrefix);
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
      ...this.teardown(),
      cell: (id) => this.cell(id),
      stateDir: this.config.state_dir,
      defaultCgroupParent: path.join(this.config.cgroup_root, this.config.default_cgroup_parent),
    });
  }
}
