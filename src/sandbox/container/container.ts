// An app container's books: its persisted record, on the S4 state machine of
// store/lifecycle.ts (shared with pod sandboxes).
//
// CRI view (derived, never stored twice): created = CONTAINER_CREATED, running =
// CONTAINER_RUNNING, stopped = CONTAINER_EXITED, creating = CONTAINER_UNKNOWN (only
// inside CreateContainer, or in metadata a crash left, which recovery cleans up), and
// unknown = CONTAINER_UNKNOWN (a meta.json that did not load at start: kept in memory,
// never saved over, refusing all but RemoveContainer).
import { changeLifecycle, requireLifecycle } from '../store/lifecycle.js';
import { runtimeTypeOf } from '../../oci/runtime.js';
import type { CriContainerResources, CriMount } from '../../oci/spec-container.js';

export type ContainerState = 'creating' | 'created' | 'running' | 'stopped' | 'unknown';
export type CriContainerState = 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';

export interface ContainerMetadata {
  name: string;
  attempt: number;
}

/** Where a container's runtime files live (under <state_dir>/containers/<id>). */
export interface ContainerPaths {
  dir: string;
  /** The OCI bundle: config.json, and conmon's ctl/winsz fifos and attach socket. */
  bundle: string;
  spec: string;
  exitDir: string;
  exitFile: string;
  pidFile: string;
  conmonPidFile: string;
  conmonLog: string;
  persistDir: string;
  socketDir: string;
  /** conmon's attach socket (through the short symlink in socketDir). */
  attachSocket: string;
  /** conmon's control fifo: "2 0 0\n" reopens the log, "1 H W\n" resizes the tty. */
  ctlFifo: string;
}

/** What meta.json holds ("version": 1). */
export interface ContainerRecord {
  version: 1;
  id: string;
  podId: string;
  state: ContainerState;
  metadata: ContainerMetadata;
  /** Hash of (pod, config): a retried create with the same one gets this container. */
  configHash: string;
  /** Unix ns as decimal strings (int64 on the wire); "0" = not yet. */
  createdAt: string;
  startedAt: string;
  /**
   * True when the start was taken from the runtime's word (a crash lost the start's
   * answer, issue 11): the kubelet's retry of that start succeeds instead of failing S4.
   */
  startRecovered?: boolean;
  finishedAt: string;
  exitCode: number;
  reason: string;
  message: string;
  /** The image as requested, and its ID (config digest). */
  image: string;
  imageId: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** The CRI log file (pod log_directory + log_path), "" when the kubelet asked for none. */
  logPath: string;
  /** What conmon writes to: logPath, or a file under paths.dir when there is none. */
  monitorLogPath: string;
  mounts: CriMount[];
  resources: CriContainerResources;
  /** The OCI process.oomScoreAdj, when the config set one (0 counts as unset, S10). */
  oomScoreAdj: number | undefined;
  user: { uid: number; gid: number; supplementalGroups: number[] };
  stopSignal: string;
  runtimeHandler: string;
  runtimeType: 'oci' | 'runsc';
  cgroupPath: string;
  /** Host path of the termination message file, when the kubelet mounted one. */
  terminationMessagePath: string | undefined;
  tty: boolean;
  stdin: boolean;
  stdinOnce: boolean;
  pid: number;
  conmonPid: number;
  /**
   * True when the container's init is the init of a host PID namespace of its own
   * (features.hostPidNamespaces and a `pid` namespace without a path in its spec): its
   * exit takes every process of the container with it, so a stop has nothing left to
   * kill. Absent (older records, shared PID namespaces): what is left is killed.
   */
  exitEndsAll?: boolean;
  paths: ContainerPaths;
  /** The rootfs was mounted (so removal must unmount it). */
  rootfsPrepared: boolean;
  /** State `unknown` only (never saved): why meta.json did not load at start. */
  unreadable?: string;
}

/** The seed's changeStatus: one switch; an illegal transition is a bug. */
export function changeState(rec: ContainerRecord, to: ContainerState): void {
  changeLifecycle('container', rec, to);
}

/** S4 guard: `cannot <action> container "<id>" in state <state>` (an unknown one says why). */
export function requireState(rec: Pick<ContainerRecord, 'id' | 'state' | 'unreadable'>, action: string, ...allowed: ContainerState[]): void {
  requireLifecycle('container', rec, action, allowed, 'RemoveContainer');
}

/** What of an unreadable container recovery could find on the host (its OCI spec, its runtime). */
export interface UnknownContainerFound {
  podId: string;
  name: string;
  image: string;
  runtimeHandler: string;
  cgroupPath: string;
  pid: number;
  conmonPid: number;
  paths: ContainerPaths;
}

/**
 * The record an unreadable meta.json is kept as (state `unknown`, in memory only): what
 * could be read of it (`partial`, a parsed record of another version) or of the host,
 * the rest empty. Enough for the listing and for RemoveContainer to take it away.
 */
export function unknownContainerRecord(id: string, reason: string, found: UnknownContainerFound, partial: unknown): ContainerRecord {
  const p = (partial ?? {}) as Partial<Record<keyof ContainerRecord, unknown>>;
  const str = (v: unknown, dflt: string): string => (typeof v === 'string' ? v : dflt);
  const strings = (v: unknown): Record<string, string> =>
    v !== null && typeof v === 'object' && Object.values(v).every((x) => typeof x === 'string') ? { ...(v as Record<string, string>) } : {};
  const m = (p.metadata ?? {}) as Partial<ContainerMetadata>;
  return {
    version: 1,
    id,
    podId: found.podId !== '' ? found.podId : str(p.podId, ''),
    state: 'unknown',
    unreadable: reason,
    metadata: { name: found.name !== '' ? found.name : str(m.name, ''), attempt: typeof m.attempt === 'number' ? m.attempt : 0 },
    configHash: '',
    createdAt: /^\d+$/.test(str(p.createdAt, '')) ? str(p.createdAt, '0') : '0',
    startedAt: '0',
    finishedAt: '0',
    exitCode: 0,
    reason: 'RecordUnreadable',
    message: reason,
    image: found.image !== '' ? found.image : str(p.image, ''),
    imageId: str(p.imageId, ''),
    labels: strings(p.labels),
    annotations: strings(p.annotations),
    logPath: '',
    monitorLogPath: '',
    mounts: [],
    resources: {},
    oomScoreAdj: undefined,
    user: { uid: 0, gid: 0, supplementalGroups: [] },
    stopSignal: 'SIGKILL',
    runtimeHandler: found.runtimeHandler,
    runtimeType: runtimeTypeOf(p.runtimeType),
    cgroupPath: found.cgroupPath,
    terminationMessagePath: undefined,
    tty: false,
    stdin: false,
    stdinOnce: false,
    pid: found.pid,
    conmonPid: found.conmonPid,
    paths: found.paths,
    // Unknown: removal tries it (removing a rootfs that is not there succeeds).
    rootfsPrepared: true,
  };
}

export function criContainerState(state: ContainerState): CriContainerState {
  switch (state) {
    case 'created':
      return 'CONTAINER_CREATED';
    case 'running':
      return 'CONTAINER_RUNNING';
    case 'stopped':
      return 'CONTAINER_EXITED';
    default:
      return 'CONTAINER_UNKNOWN';
  }
}

/** The name the kubelet makes unique within a pod: pod ID, name, attempt. */
export function containerNameKey(podId: string, m: ContainerMetadata): string {
  return `${podId}_${m.name}_${m.attempt}`;
}

/** The CRI reason of an exited container (kubelet: Completed, Error, OOMKilled). */
export function exitReason(exitCode: number, oomKilled: boolean): string {
  if (oomKilled) return 'OOMKilled';
  return exitCode === 0 ? 'Completed' : 'Error';
}

/** Image StopSignal ("SIGTERM", "TERM", "15", "") → what `runc kill` takes; default SIGTERM. */
export function normalizeStopSignal(sig: string | undefined): string {
  const s = (sig ?? '').trim().toUpperCase();
  if (s === '') return 'SIGTERM';
  if (/^\d+$/.test(s)) return s;
  return s.startsWith('SIG') ? s : `SIG${s}`;
}

export const CONTAINER_ID_RE = /^[0-9a-f]{64}$/;

/** Unix ns of a millisecond time, as the CRI's int64 string. */
export function nsString(ms: number): string {
  return (BigInt(Math.round(ms)) * 1_000_000n).toString();
}
