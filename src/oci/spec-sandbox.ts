// The OCI spec (config.json) of a pod's infra container (S1: the root container): a
// paused `catatonit -P` bind-mounted read-only from the host onto a tiny read-only
// rootfs, owning the pod's namespaces. Pure: every path and decision comes in typed.
import type { RuntimeType } from '../config/types.js';
import { InvalidArgumentError, UnimplementedError } from '../errors.js';
import { runtimeFeatures } from './runtime.js';
import {
  ANNOTATION_CGROUP_PARENT,
  ANNOTATION_CONTAINER_TYPE,
  ANNOTATION_SANDBOX_ID,
  DEFAULT_MASKED_PATHS,
  DEFAULT_READONLY_PATHS,
  OCI_VERSION,
  standardMounts,
  type OciMount,
} from './spec-common.js';

// Kept importable from here, where they were first defined.
export { ANNOTATION_CGROUP_PARENT, ANNOTATION_CONTAINER_TYPE, ANNOTATION_SANDBOX_ID };

export type NetworkMode = 'POD' | 'NODE';
export type PidMode = 'POD' | 'CONTAINER' | 'NODE';
export type IpcMode = 'POD' | 'NODE';

/** One ID mapping of a user namespace, as the OCI spec writes it. */
export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

export interface PodNamespaces {
  network: NetworkMode;
  pid: PidMode;
  ipc: IpcMode;
  /** S19: the pod's own user namespace (CRI userns_options mode POD) and its mappings. */
  user?: { uidMappings: IdMapping[]; gidMappings: IdMapping[] };
}

/** Where catatonit appears inside the rootfs. */
export const INFRA_BINARY = '/catatonit';
/**
 * Where the host's static busybox appears in the infra container when the handler
 * relays port-forwards through a process in the sandbox (src/sandbox/io/port-forward-relay.ts).
 * Under /dev because that is a tmpfs: the rootfs is read-only and has no mount point
 * for it, a tmpfs takes a new one under runc and runsc alike.
 */
export const RELAY_BINARY = '/dev/.sandlot/busybox';
/** oom_score_adj of the infra process: the last thing the OOM killer should take (as CRI-O's infra). */
export const INFRA_OOM_SCORE_ADJ = -998;

export interface SandboxSpecInput {
  id: string;
  hostname: string;
  /** Absolute path of the read-only rootfs directory. */
  rootfs: string;
  catatonitPath: string;
  namespaces: PodNamespaces;
  /** The pinned netns (network POD). */
  netnsPath?: string;
  /** S19: the pinned user namespace that owns the netns (namespaces.user). */
  usernsPath?: string;
  sysctls: Record<string, string>;
  /** cgroupsPath of the infra container. */
  cgroupsPath: string;
  /** The pod cgroup (S12, for runsc's annotation). */
  podCgroup: string;
  annotations: Record<string, string>;
  /** S14: `mountHintAnnotations(hints)` of the pod, for a runtime that makes the pod's shared tmpfs volumes. */
  mountHintAnnotations?: Record<string, string>;
  oomScoreAdj: number;
  /** The handler's type (its features decide the runtime-specific parts). */
  runtimeType: RuntimeType;
  /** Host path of a static busybox to bind read-only at RELAY_BINARY (port-forward relay). */
  relayBinaryPath?: string;
}

/** The kernel's limit for a host name (HOST_NAME_MAX: sethostname(2) refuses more). */
export const HOST_NAME_MAX = 64;

/**
 * The pod's host name, containerd's rule: the one the config gives, or the node's when
 * it gives none (the pod's metadata name may be 253 bytes, which no kernel takes).
 * A given one over HOST_NAME_MAX bytes, or no valid host name, is INVALID_ARGUMENT.
 */
export function podHostname(given: string, nodeHostname: string): string {
  const hostname = given === '' ? nodeHostname : given;
  const field = given === '' ? "the node's host name" : 'config.hostname';
  if (Buffer.byteLength(hostname) > HOST_NAME_MAX) {
    throw new InvalidArgumentError(`${field} ${JSON.stringify(hostname)} is longer than ${HOST_NAME_MAX} bytes`);
  }
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(hostname)) {
    throw new InvalidArgumentError(`${field} ${JSON.stringify(hostname)} is no valid host name`);
  }
  return hostname;
}

/**
 * Sysctls a pod may set: only namespaced ones, and only in a namespace the pod owns
 * (net.* needs the pod's own network, the IPC ones its own IPC namespace).
 */
export function validateSysctls(sysctls: Record<string, string>, ns: PodNamespaces): void {
  for (const [key, value] of Object.entries(sysctls)) {
    const field = `linux.sysctls["${key}"]`;
    if (!/^[a-z0-9_]+([./][a-z0-9_-]+)*$/i.test(key) || key.includes('..')) {
      throw new InvalidArgumentError(`${field}: "${key}" is no sysctl name`);
    }
    if (/[\n\0]/.test(value)) throw new InvalidArgumentError(`${field}: value ${JSON.stringify(value)} holds a newline or NUL`);
    const k = key.replace(/\//g, '.');
    const ipc = k.startsWith('kernel.shm') || k.startsWith('kernel.msg') || k === 'kernel.sem' || k.startsWith('fs.mqueue.');
    const net = k.startsWith('net.');
    if (!ipc && !net) {
      throw new InvalidArgumentError(`${field}: sysctl "${key}" is not namespaced (allowed: net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*)`);
    }
    if (net && ns.network === 'NODE') {
      throw new InvalidArgumentError(`${field}: sysctl "${key}" would change the host: the pod uses the host network`);
    }
    if (ipc && ns.ipc === 'NODE') {
      throw new InvalidArgumentError(`${field}: sysctl "${key}" would change the host: the pod uses the host IPC namespace`);
    }
  }
}

/**
 * S19: the infra joins the pod's pinned user namespace, which owns the pod's netns (the
 * runtime enters the user namespace first). runc 1.1.5 wants the mappings in the spec
 * even when it joins one ("User namespaces enabled, but no uid mappings found").
 */
function podUserNamespace(
  input: SandboxSpecInput,
  supported: boolean,
): ({ namespace: { type: string; path: string } } & NonNullable<PodNamespaces['user']>) | undefined {
  const user = input.namespaces.user;
  if (user === undefined) return undefined;
  if (!supported) {
    throw new UnimplementedError(
      `config.linux.security_context.namespace_options.userns_options.mode: POD is not supported under ${input.runtimeType}: gVisor keeps its own user namespace (the sandbox runs as nobody on the host) and ignores the spec's mappings (inside, /proc/self/uid_map shows "0 0 4294967295"; measured)`,
    );
  }
  if (input.usernsPath === undefined || input.namespaces.network !== 'POD') {
    throw new InvalidArgumentError(`pod "${input.id}": a pod user namespace needs the pod network namespace it owns`);
  }
  return { namespace: { type: 'user', path: input.usernsPath }, uidMappings: user.uidMappings, gidMappings: user.gidMappings };
}

export function sandboxSpec(input: SandboxSpecInput): Record<string, unknown> {
  const { namespaces: ns } = input;
  const features = runtimeFeatures(input.runtimeType);
  const namespaces: Array<{ type: string; path?: string }> = [{ type: 'mount' }];
  if (ns.pid !== 'NODE') namespaces.push({ type: 'pid' });
  if (ns.ipc === 'POD') namespaces.push({ type: 'ipc' });
  // A host-network pod shares the host's UTS namespace too (the kubelet's convention).
  if (ns.network === 'POD') {
    namespaces.push({ type: 'uts' });
    if (input.netnsPath === undefined) throw new InvalidArgumentError(`pod "${input.id}": a pod network needs a netns path`);
    namespaces.push({ type: 'network', path: input.netnsPath });
  }
  const userns = podUserNamespace(input, features.userNamespaces);
  if (userns) namespaces.push(userns.namespace);
  const annotations: Record<string, string> = {
    ...input.annotations,
    ...(features.podSharedTmpfs === 'sandbox' ? (input.mountHintAnnotations ?? {}) : {}),
    [ANNOTATION_CONTAINER_TYPE]: 'sandbox',
    [ANNOTATION_SANDBOX_ID]: input.id,
  };
  if (features.cgroupParentAnnotation) annotations[ANNOTATION_CGROUP_PARENT] = input.podCgroup;
  const mounts: OciMount[] = [
    // sysfs read-write here, though catatonit (uid 65535, no capability) cannot write
    // it: the first sysfs mount in a network namespace makes its superblock, and a
    // read-only one would leave every later /sys of the pod read-only, a privileged
    // container's too (measured under runc). App containers' ro is per mount.
    ...standardMounts({ mqueue: ns.ipc === 'POD', sysWritable: true, cgroup: false }),
    { destination: INFRA_BINARY, type: 'bind', source: input.catatonitPath, options: ['rbind', 'ro', 'nosuid', 'nodev'] },
  ];
  if (input.relayBinaryPath !== undefined) {
    mounts.push({ destination: RELAY_BINARY, type: 'bind', source: input.relayBinaryPath, options: ['rbind', 'ro', 'nosuid', 'nodev'] });
  }
  const spec: Record<string, unknown> = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: false,
      user: { uid: 65535, gid: 65535 },
      args: [INFRA_BINARY, '-P'],
      env: ['PATH=/'],
      cwd: '/',
      // catatonit -P only waits for signals: it needs no capability.
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      noNewPrivileges: true,
      oomScoreAdj: input.oomScoreAdj,
    },
    root: { path: input.rootfs, readonly: true },
    mounts,
    annotations,
    linux: {
      namespaces,
      cgroupsPath: input.cgroupsPath,
      sysctl: input.sysctls,
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      maskedPaths: [...DEFAULT_MASKED_PATHS],
      readonlyPaths: [...DEFAULT_READONLY_PATHS],
      ...(userns ? { uidMappings: userns.uidMappings, gidMappings: userns.gidMappings } : {}),
    },
  };
  // runc refuses a hostname without a UTS namespace of the pod's own; gVisor always has
  // one (the sentry's) and, told none, calls itself "?" (measured): a host-network runsc
  // pod gets the node's name (podHostname) explicitly.
  if (ns.network === 'POD' || features.sandboxHostnameAlways) spec.hostname = input.hostname;
  return spec;
}
