// A pod sandbox's books: its persisted record, on the S4 state machine of
// store/lifecycle.ts (shared with containers).
//
// CRI view: running = SANDBOX_READY, anything else = SANDBOX_NOTREADY. `creating` and
// `created` exist only inside RunPodSandbox (and in metadata left by a crash, which
// recovery cleans up); StopPodSandbox takes every state to `stopped`, except `unknown`
// (a meta.json that did not load at start): that one stays, refusing all but stop and
// remove, and is never saved over.
import path from 'node:path';
import { changeLifecycle, requireLifecycle } from '../store/lifecycle.js';
import type { PodNamespaces } from '../../oci/spec-sandbox.js';
import type { PortMapping } from '../../network/network-manager.js';
import type { CriResources } from '../resources/cgroups.js';
import type { MountHint } from '../storage/mount-hints.js';
import type { DnsConfig, PodPaths } from './pod-files.js';

export type SandboxState = 'creating' | 'created' | 'running' | 'stopped' | 'unknown';

export interface PodMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt: number;
}

/** The validated RunPodSandbox request. */
export interface RunPodInput {
  metadata: PodMetadata;
  hostname: string;
  logDirectory: string;
  dns: DnsConfig | undefined;
  portMappings: PortMapping[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** "" → the configured default parent. */
  cgroupParent: string;
  namespaces: PodNamespaces;
  sysctls: Record<string, string>;
  resources: CriResources | undefined;
  overhead: CriResources | undefined;
  /** "" → the configured default handler. */
  runtimeHandler: string;
}

/** What meta.json holds ("version": 1). */
export interface SandboxRecord {
  version: 1;
  id: string;
  state: SandboxState;
  /** Unix nanoseconds, as a decimal string (int64 on the wire). */
  createdAt: string;
  /** The request, as validated. */
  config: RunPodInput;
  /** Hash of the request: a retry with the same one waits for, or gets, this pod. */
  configHash: string;
  runtimeHandler: string;
  /** The pod cgroup (S12) and the infra container's cgroup under it. */
  podCgroup: string;
  infraCgroup: string;
  /** True when the pod cgroup is this pod's alone (made from the default parent). */
  ownsPodCgroup: boolean;
  netnsPath: string | undefined;
  /** CNI ADD done and not yet torn down. */
  networkUp: boolean;
  ip: string;
  additionalIps: string[];
  /** The infra process (runsc: the sandbox process); 0 before it is created. */
  pid: number;
  /**
   * The start time of `pid` (clock ticks after boot, /proc/<pid>/stat field 22), recorded
   * at create: what tells the infra from a later process with its PID (infra-process.ts).
   * Absent in records of earlier versions (their guard is the infra's conmon).
   */
  pidStartTicks?: number;
  /**
   * The infra's conmon, for pods of earlier versions only: the daemon creates the infra
   * with the runtime directly since issue 13, without a conmon, and records 0. A record
   * with a PID here is a pod made with an infra conmon, still recovered, watched and
   * removed as it was made (its conmon's end and exit file say when the infra died).
   */
  conmonPid: number;
  paths: PodPaths;
  /**
   * The runtime deleted the infra container at the pod's stop (`features.infraDeleteAtStop`):
   * RemovePodSandbox has no runtime delete left to run. Written with the stopped state, after
   * the delete succeeded; absent when the delete is still RemovePodSandbox's.
   */
  infraDeleted?: boolean;
  /** Set when the infra is seen stopped. */
  exitCode?: number;
  /** Why the pod is NOTREADY, when recovery or a probe found out. */
  reason?: string;
  /** S14: the pod's mount hints, explicit and derived (absent in records of older versions). */
  mountHints?: MountHint[];
  /** State `unknown` only (never saved): why meta.json did not load at start. */
  unreadable?: string;
}

/** One switch for every state change; an illegal one is a bug (InternalError). */
export function changeState(rec: SandboxRecord, to: SandboxState): void {
  changeLifecycle('sandbox', rec, to);
}

/** S4 guard: `cannot <action> sandbox "<id>" in state <state>` (an unknown one says why). */
export function requireState(rec: Pick<SandboxRecord, 'id' | 'state' | 'unreadable'>, action: string, ...allowed: SandboxState[]): void {
  requireLifecycle('sandbox', rec, action, allowed, 'StopPodSandbox and RemovePodSandbox');
}

/** The annotation an unknown pod is listed with: why its record did not load. */
export const UNREADABLE_ANNOTATION = 'io.sandlot.record-unreadable';

/**
 * The record an unreadable meta.json is kept as (state `unknown`, in memory only): what
 * could be read of it (`partial`, a parsed record of another version) and of the host
 * (`found`: the runtime that knows the infra, its pid and cgroup, the pod's netns), the
 * rest empty. Enough for the listing and for stop and remove to find what to take away.
 */
export function unknownSandboxRecord(
  id: string,
  reason: string,
  found: { runtimeHandler: string; pid: number; conmonPid: number; infraCgroup: string; netnsPath: string | undefined; networkUp: boolean; paths: PodPaths },
  partial: unknown,
): SandboxRecord {
  const p = (partial ?? {}) as { createdAt?: unknown; config?: { metadata?: unknown; labels?: unknown; annotations?: unknown } };
  const m = (p.config?.metadata ?? {}) as Partial<PodMetadata>;
  const strings = (v: unknown): Record<string, string> =>
    v !== null && typeof v === 'object' && Object.values(v).every((x) => typeof x === 'string') ? { ...(v as Record<string, string>) } : {};
  const metadata: PodMetadata = {
    name: typeof m.name === 'string' ? m.name : '',
    uid: typeof m.uid === 'string' ? m.uid : '',
    namespace: typeof m.namespace === 'string' ? m.namespace : '',
    attempt: typeof m.attempt === 'number' ? m.attempt : 0,
  };
  return {
    version: 1,
    id,
    state: 'unknown',
    unreadable: reason,
    createdAt: typeof p.createdAt === 'string' && /^\d+$/.test(p.createdAt) ? p.createdAt : '0',
    config: {
      metadata,
      hostname: '',
      logDirectory: '',
      dns: undefined,
      portMappings: [],
      labels: strings(p.config?.labels),
      annotations: { ...strings(p.config?.annotations), [UNREADABLE_ANNOTATION]: reason },
      cgroupParent: '',
      namespaces: { network: found.netnsPath === undefined ? 'NODE' : 'POD', pid: 'POD', ipc: 'POD' },
      sysctls: {},
      resources: undefined,
      overhead: undefined,
      runtimeHandler: found.runtimeHandler,
    },
    configHash: '',
    runtimeHandler: found.runtimeHandler,
    podCgroup: path.dirname(found.infraCgroup),
    infraCgroup: found.infraCgroup,
    // Only the infra cgroup is known to be the pod's: its parent goes only when left empty.
    ownsPodCgroup: false,
    netnsPath: found.netnsPath,
    networkUp: found.networkUp,
    ip: '',
    additionalIps: [],
    pid: found.pid,
    conmonPid: found.conmonPid,
    paths: found.paths,
    mountHints: [],
  };
}

export function criState(state: SandboxState): 'SANDBOX_READY' | 'SANDBOX_NOTREADY' {
  return state === 'running' ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY';
}

/** The name tuple the kubelet makes unique: name, namespace, uid, attempt. */
export function nameKey(m: PodMetadata): string {
  return `${m.name}_${m.namespace}_${m.uid}_${m.attempt}`;
}

/** A stable JSON (keys sorted) for hashing configs. */
export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export const SANDBOX_ID_RE = /^[0-9a-f]{64}$/;
