// What the infra container's spec (spec-sandbox.ts) and the app containers' specs
// (spec-container.ts) share: the OCI runtime-spec types sandlot writes, the CRI
// annotation keys, and containerd's defaults for masked/read-only paths and the
// standard mounts.
import type { OciHooks } from './oci-hooks.js';

export const OCI_VERSION = '1.0.2';

export const ANNOTATION_CONTAINER_TYPE = 'io.kubernetes.cri.container-type';
export const ANNOTATION_SANDBOX_ID = 'io.kubernetes.cri.sandbox-id';
export const ANNOTATION_CONTAINER_NAME = 'io.kubernetes.cri.container-name';
export const ANNOTATION_SANDBOX_NAME = 'io.kubernetes.cri.sandbox-name';
export const ANNOTATION_SANDBOX_NAMESPACE = 'io.kubernetes.cri.sandbox-namespace';
export const ANNOTATION_SANDBOX_UID = 'io.kubernetes.cri.sandbox-uid';
export const ANNOTATION_IMAGE_NAME = 'io.kubernetes.cri.image-name';
export const ANNOTATION_CGROUP_PARENT = 'dev.gvisor.spec.cgroup-parent';

export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

export interface OciUser {
  uid: number;
  gid: number;
  umask?: number;
  additionalGids?: number[];
}

export interface OciProcess {
  terminal?: boolean;
  user: OciUser;
  args: string[];
  env: string[];
  cwd: string;
  capabilities?: {
    bounding: string[];
    effective: string[];
    inheritable: string[];
    permitted: string[];
    ambient: string[];
  };
  noNewPrivileges?: boolean;
  oomScoreAdj?: number;
  apparmorProfile?: string;
  selinuxLabel?: string;
}

export interface LinuxSeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

export interface LinuxSyscall {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: LinuxSeccompArg[];
}

export interface LinuxSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: LinuxSyscall[];
}

export interface LinuxNamespace {
  type: 'pid' | 'network' | 'mount' | 'ipc' | 'uts' | 'user' | 'cgroup';
  path?: string;
}

export interface LinuxDevice {
  path: string;
  type: 'c' | 'b' | 'u' | 'p';
  major: number;
  minor: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
}

export interface LinuxDeviceCgroup {
  allow: boolean;
  type?: 'a' | 'c' | 'b';
  major?: number;
  minor?: number;
  access?: string;
}

export interface LinuxResources {
  devices?: LinuxDeviceCgroup[];
  memory?: { limit?: number; reservation?: number; swap?: number; swappiness?: number; disableOOMKiller?: boolean };
  cpu?: { shares?: number; quota?: number; period?: number; cpus?: string; mems?: string };
  pids?: { limit: number };
  hugepageLimits?: Array<{ pageSize: string; limit: number }>;
  unified?: Record<string, string>;
}

export interface OciLinux {
  namespaces: LinuxNamespace[];
  uidMappings?: Array<{ containerID: number; hostID: number; size: number }>;
  gidMappings?: Array<{ containerID: number; hostID: number; size: number }>;
  cgroupsPath?: string;
  sysctl?: Record<string, string>;
  resources?: LinuxResources;
  devices?: LinuxDevice[];
  seccomp?: LinuxSeccomp;
  maskedPaths?: string[];
  readonlyPaths?: string[];
  rootfsPropagation?: string;
  mountLabel?: string;
}

/** The config.json of a bundle: the parts of the OCI runtime spec sandlot writes. */
export interface OciSpec {
  ociVersion: string;
  process: OciProcess;
  root: { path: string; readonly?: boolean };
  hostname?: string;
  mounts: OciMount[];
  annotations: Record<string, string>;
  linux: OciLinux;
  /** S6: OCI hooks per stage (spec-container-extensions.ts). */
  hooks?: OciHooks;
}

/** containerd's default masked paths (cleared for privileged containers). */
export const DEFAULT_MASKED_PATHS: readonly string[] = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

/** containerd's default read-only paths (cleared for privileged containers). */
export const DEFAULT_READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export interface StandardMountsOptions {
  /** /dev/mqueue: a container in its own (or the pod's) IPC namespace. */
  mqueue: boolean;
  /** /sys and /sys/fs/cgroup read-write (privileged containers). */
  sysWritable: boolean;
  /** /sys/fs/cgroup (app containers; the infra needs none). */
  cgroup: boolean;
}

/** The kernel filesystems every container gets, in mount order. */
export function standardMounts(opts: StandardMountsOptions): OciMount[] {
  const rw = opts.sysWritable ? 'rw' : 'ro';
  const mounts: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
  ];
  if (opts.mqueue) mounts.push({ destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] });
  mounts.push({ destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', rw] });
  if (opts.cgroup) {
    mounts.push({ destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', rw] });
  }
  return mounts;
}
