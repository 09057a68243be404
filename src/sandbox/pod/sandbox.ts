// A pod sandbox's books: its persisted record and the S4 state machine.
//
//   creating ──► created ──► running
//      │            │           │
//      └────────────┴───────────┴──► stopped
//
// CRI view: running = SANDBOX_READY, anything else = SANDBOX_NOTREADY. `creating` and
// `created` exist only inside RunPodSandbox (and in metadata left by a crash, which
// recovery cleans up); StopPodSandbox takes every state to `stopped`.
import { FailedPreconditionError, InternalError } from '../../errors.js';
import type { PodNamespaces } from '../../oci/spec-sandbox.js';
import type { PortMapping } from '../../network/network-manager.js';
import type { CriResources } from '../resources/cgroups.js';
import type { MountHint } from '../storage/mount-hints.js';
import type { DnsConfig, PodPaths } from './pod-files.js';

export type SandboxState = 'creating' | 'created' | 'running' | 'stopped';

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
  pid: number;
  conmonPid: number;
  paths: PodPaths;
  /** Set when the infra is seen stopped. */
  exitCode?: number;
  /** Why the pod is NOTREADY, when recovery or a probe found out. */
  reason?: string;
  /** S14: the pod's mount hints, explicit and derived (absent in records of older versions). */
  mountHints?: MountHint[];
}

const TRANSITIONS: Record<SandboxState, readonly SandboxState[]> = {
  creating: ['created', 'stopped'],
  created: ['running', 'stopped'],
  running: ['stopped'],
  stopped: [],
};

/** One switch for every state change; an illegal one is a bug (InternalError). */
export function changeState(rec: SandboxRecord, to: SandboxState): void {
  if (rec.state === to) return;
  if (!TRANSITIONS[rec.state].includes(to)) {
    throw new InternalError(`changing sandbox "${rec.id}" from state ${rec.state} to ${to}: illegal transition`);
  }
  rec.state = to;
}

/** S4 guard: `cannot <action> sandbox "<id>" in state <state>`. */
export function requireState(rec: SandboxRecord, action: string, ...allowed: SandboxState[]): void {
  if (!allowed.includes(rec.state)) {
    throw new FailedPreconditionError(`cannot ${action} sandbox "${rec.id}" in state ${rec.state}`);
  }
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
