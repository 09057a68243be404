// The OCI runtime of one configured handler (`runtimes.<name>`), behind one interface:
// the container operations every handler type has (create/start/kill/delete/state/
// exec/update/checkpoint/stats) and `features`, what this handler type can do. The
// sandbox layer asks the features instead of asking which runtime it has (STYLE.md 14;
// CRI-O's RuntimeImpl): everything that differs between runc-compatible CLIs and gVisor
// lives in src/oci/.
//
//   RuntimeDriver (this file: the interface, the features per type)
//     └─ CliRuntime (runtime-cli.ts: one CLI call per operation, the probe)
//          ├─ RuncRuntime (runtime-runc.ts): type `oci`: runc, crun, youki
//          └─ RunscRuntime (runtime-runsc.ts): type `runsc`: gVisor
//   createRuntime (runtimes.ts) picks the implementation from the handler's type.
//
// Every call passes `--root <state_dir>/runtimes/<handler>` so two daemons never share
// runtime state, and the handler's extra args from the config.
import type { Logger } from 'pino';
import { RUNTIME_TYPES, type RuntimeHandlerConfig, type RuntimeType } from '../config/types.js';
import type { CommandRunner } from './command.js';
import type { ExecLaunch, ExecOptions, ExecRuntime } from './exec.js';
import type { HookStage } from './oci-hooks.js';

/** The OCI runtime state (`<runtime> state <id>`), S16. */
export interface OciState {
  ociVersion?: string;
  id: string;
  status: 'creating' | 'created' | 'running' | 'stopped' | 'paused';
  pid: number;
  bundle: string;
  annotations?: Record<string, string>;
}

export interface ProbeResult {
  ready: boolean;
  /** Empty when ready; else a short CamelCase reason. */
  reason: string;
  message: string;
}

export interface ProbeOptions {
  /** A scratch directory the probe may fill and empties again. */
  workDir: string;
  /** cgroupsPath of the trivial probe container (must lie under cgroup_root). */
  cgroupsPath: string;
  catatonitPath: string;
  /** The daemon's capability bounding set (default: CapBnd of /proc/self/status). */
  boundingSet?: string[];
}

export interface RuntimeDriverOptions {
  name: string;
  config: RuntimeHandlerConfig;
  /** sandlot's state_dir; runtime state lives in <stateDir>/runtimes/<name>. */
  stateDir: string;
  log: Logger;
  run?: CommandRunner;
}

/** Per-container figures a runtime reports itself (where the container's cgroup cannot). */
export interface RuntimeStats {
  /** Cumulative CPU ns, already the container's share (S13). */
  cpuUsageNs: bigint;
  /** The sandbox's memory usage (shared by all its containers). */
  memoryUsageBytes: number | undefined;
  /** The sandbox's task count. */
  pids: number | undefined;
}

export interface CheckpointRequest {
  /** Where the runtime writes the checkpoint images. */
  imagePath: string;
  /** Its work directory (logs). */
  workPath: string;
  timeoutMs: number;
}

/** What a handler type can do; the sandbox layer decides by these, never by the type. */
export interface RuntimeFeatures {
  /** `update` changes a running container's resources (runsc has no update command). */
  readonly updateResources: boolean;
  /** S7/S8: checkpoint of one container (runsc checkpoints whole sandboxes only). */
  readonly containerCheckpoint: boolean;
  /**
   * What runs and watches an app container: `conmon` over `<runtime> create` (a host
   * process), or `runsc-shim`: conmon over the runsc subcontainer shim (no host PID;
   * stdio and exit status belong to `runsc start` / `runsc wait`).
   */
  readonly subcontainerMonitor: 'conmon' | 'runsc-shim';
  /**
   * S14: where pod-shared tmpfs volumes are made: `host` (the daemon mounts them in the
   * pod's dir and binds them into each container) or `sandbox` (the runtime makes them
   * from the mount-hint annotations; the container spec gets tmpfs mounts).
   */
  readonly podSharedTmpfs: 'host' | 'sandbox';
  /** S15: container and pod filestores (runsc's overlay backing files) exist. */
  readonly filestores: boolean;
  /**
   * S12: the runtime puts no process into an app container's cgroup (it runs inside the
   * sandbox), so the daemon creates it, empty, for cAdvisor and the kubelet to find.
   */
  readonly emptyContainerCgroup: boolean;
  /** S13: per-container cpu/memory from the container's cgroup, or from the runtime (`stats`). */
  readonly containerStats: 'cgroup' | 'runtime';
  /** An OOM kill is the sandbox's (the pod cgroup counts it), not one container's. */
  readonly sandboxOomKills: boolean;
  /** Mount propagation `rshared`/bidirectional in container specs (the Debian runsc refuses it). */
  readonly bidirectionalPropagation: boolean;
  /** App containers join the infra's PID namespace by path (runsc: the sandbox is one). */
  readonly joinsPodPidNamespace: boolean;
  /**
   * A container's PID namespace is the host kernel's: when the init of a namespace of its
   * own exits, the kernel kills and reaps every other process in it before the init's
   * exit is seen (so after a stop nothing is left to `kill --all`). runsc: the sandbox
   * kernel's namespaces, not measured, so not assumed.
   */
  readonly hostPidNamespaces: boolean;
  /** The sandbox spec's hostname is set even without a pod UTS namespace (runsc: the sentry's). */
  readonly sandboxHostnameAlways: boolean;
  /** The sandbox spec carries the pod cgroup as an annotation (runsc: S12 for subcontainers). */
  readonly cgroupParentAnnotation: boolean;
  /**
   * S6: the hook stages the runtime itself runs as the seed wants them (hook-stages.ts).
   * Measured: runc 1.1.5 and runsc run prestart and createRuntime at create and fail it
   * (leaving no state); runc runs createContainer (container mount namespace, before
   * pivot_root) and startContainer (inside the container) too, runsc skips both with a
   * warning. poststart and poststop are never listed: sandlot runs them (runc 1.1.5 runs
   * poststart during `create` and kills the container when it fails; both runtimes drop
   * a poststop failure into their own stderr).
   */
  readonly runtimeHookStages: readonly HookStage[];
  /**
   * S20: `linux.devices` become device nodes in the container. Measured with runsc
   * 0.0~20221219: a char device (1:3) in linux.devices never appears in the sandbox's
   * /dev (a write to its path lands in a tmpfs file), so CDI device nodes are refused there.
   */
  readonly hostDeviceNodes: boolean;
  /**
   * CRI Mount.recursive_read_only works: the daemon's read-only clone (prepared-mounts.ts)
   * bound by the runtime keeps its submounts read-only (measured per handler).
   */
  readonly recursiveReadOnlyMounts: boolean;
  /**
   * S19 pod user namespaces (CRI userns_options mode POD): runc joins the pinned one with
   * its mappings; runsc ignores the spec's mappings (its sandbox has its own, measured).
   */
  readonly userNamespaces: boolean;
  /**
   * The infra's create only joins the pinned pod netns (runc): the CNI ADD may run beside
   * it. runsc sets the sandbox's network up at create, from the interfaces already there.
   */
  readonly podNetworkAfterCreate: boolean;
  /**
   * A created container may wait on runc's exec fifo (`<root>/<id>/exec.fifo`, its init in
   * state.json): when the probe finds this handler's containers do, `start` is that
   * handshake in the daemon instead of a `<runtime> start` process (exec-fifo.ts).
   * runsc has no such fifo and keeps `runsc start`.
   */
  readonly execFifoStart: boolean;
  /**
   * The pod's infra container may be deleted from the runtime once StopPodSandbox has
   * seen it end: its delete touches only its own state and cgroup, nothing an app
   * container's delete needs (runc: every container apart). runsc: the infra is the
   * sandbox the subcontainers live in; it is deleted at RemovePodSandbox, after them.
   */
  readonly infraDeleteAtStop: boolean;
}

const OCI_FEATURES: RuntimeFeatures = {
  updateResources: true,
  containerCheckpoint: true,
  subcontainerMonitor: 'conmon',
  podSharedTmpfs: 'host',
  filestores: false,
  emptyContainerCgroup: false,
  containerStats: 'cgroup',
  sandboxOomKills: false,
  bidirectionalPropagation: true,
  joinsPodPidNamespace: true,
  hostPidNamespaces: true,
  sandboxHostnameAlways: false,
  cgroupParentAnnotation: false,
  runtimeHookStages: ['prestart', 'createRuntime', 'createContainer', 'startContainer'],
  hostDeviceNodes: true,
  recursiveReadOnlyMounts: true,
  userNamespaces: true,
  podNetworkAfterCreate: true,
  execFifoStart: true,
  infraDeleteAtStop: true,
};

const RUNSC_FEATURES: RuntimeFeatures = {
  updateResources: false,
  containerCheckpoint: false,
  subcontainerMonitor: 'runsc-shim',
  podSharedTmpfs: 'sandbox',
  filestores: true,
  emptyContainerCgroup: true,
  containerStats: 'runtime',
  sandboxOomKills: true,
  bidirectionalPropagation: false,
  joinsPodPidNamespace: false,
  hostPidNamespaces: false,
  sandboxHostnameAlways: true,
  cgroupParentAnnotation: true,
  runtimeHookStages: ['prestart', 'createRuntime'],
  hostDeviceNodes: false,
  recursiveReadOnlyMounts: true,
  userNamespaces: false,
  podNetworkAfterCreate: false,
  execFifoStart: false,
  infraDeleteAtStop: false,
};

/**
 * The features of a handler type. Records carry the type their container was made
 * with, so what a stored container needs (its filestores, its stats source) is known
 * even when its handler is no longer configured.
 */
export function runtimeFeatures(type: RuntimeType): RuntimeFeatures {
  return type === 'runsc' ? RUNSC_FEATURES : OCI_FEATURES;
}

/** The handler type a stored record names; anything else (an older or damaged record) is `oci`. */
export function runtimeTypeOf(value: unknown): RuntimeType {
  return RUNTIME_TYPES.find((t) => t === value) ?? 'oci';
}

/** How a pod's port-forward reaches the pod: a dial in its netns, or the relay (port-forward-relay.ts). */
export type PortForwardPath = 'netns-dial' | 'relay';

/** The ID of a handler's probe container (its cgroup goes with the caller's cgroup manager). */
export function probeContainerId(name: string): string {
  return `sandlot-probe-${process.pid}-${name}`;
}

/** One configured handler's runtime. */
export interface RuntimeDriver extends ExecRuntime {
  readonly name: string;
  readonly type: RuntimeType;
  readonly config: RuntimeHandlerConfig;
  /** The runtime's state root (`--root`). */
  readonly root: string;
  readonly features: RuntimeFeatures;
  /** The handler's port-forward path (from its type and its config). */
  readonly portForward: PortForwardPath;
  /**
   * What "all capabilities" means for this handler (privileged, add ALL): the daemon's
   * bounding set less what the runtime refused in the probe. Undefined before a probe.
   */
  capabilities: string[] | undefined;

  /** Global flags placed before every subcommand (also handed to conmon as --runtime-arg). */
  globalArgs(): string[];
  ensureRoot(): Promise<void>;
  /** Is the handler usable? (binary, --version, a trivial container created and deleted) */
  probe(options: ProbeOptions): Promise<ProbeResult>;
  /** Without conmon (a pod's infra): the container's stdio is /dev/null; the runtime's messages go to `<pidFile>.log`. */
  create(id: string, bundle: string, pidFile: string): Promise<void>;
  start(id: string): Promise<void>;
  /** S9: `all` signals every process of the container (allowed on a stopped one). */
  kill(id: string, signal: string, options?: { all?: boolean }): Promise<void>;
  /** Idempotent: an unknown container is not an error. */
  delete(id: string, options?: { force?: boolean }): Promise<void>;
  /** S16: the runtime's view; undefined when it does not know the container. */
  state(id: string): Promise<OciState | undefined>;
  /** IDs of every container in this handler's root. */
  list(): Promise<string[]>;
  /** Updates the cgroup resources of a running container; UNIMPLEMENTED without `features.updateResources`. */
  update(id: string, resources: Record<string, unknown>): Promise<void>;
  /** S18: runs a command in a running container, its stdio as asked. */
  exec(options: ExecOptions): Promise<ExecLaunch>;
  /** Checkpoints a container, leaving it running; UNIMPLEMENTED without `features.containerCheckpoint`. */
  checkpoint(id: string, request: CheckpointRequest): Promise<void>;
  /**
   * S13: the runtime's figures of a running container (`features.containerStats` is
   * `runtime`); undefined when it has none (not running, or the cgroup is the source).
   */
  stats(id: string): Promise<RuntimeStats | undefined>;
}
