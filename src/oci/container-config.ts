// The input of an app container's OCI spec (spec-container.ts): the CRI ContainerConfig
// as @grpc/proto-loader decodes it, the facts of the pod, and the OS lookups the spec
// needs (injected, so that spec building is pure).
import type { AccountFiles } from './user-lookup.js';
import type { CriCapability } from './capabilities.js';
import type { LinuxDevice } from './spec-common.js';
import type { PodNamespaces } from './spec-sandbox.js';
import type { CdiResolved } from './cdi-registry.js';
import type { HookDefinition } from './oci-hooks.js';

// ── The CRI ContainerConfig as @grpc/proto-loader decodes it (keepCase, longs and
// enums as strings, defaults on: unset messages are null, int64 are strings). ──

export type MountPropagation = 'PROPAGATION_PRIVATE' | 'PROPAGATION_HOST_TO_CONTAINER' | 'PROPAGATION_BIDIRECTIONAL';
export type NamespaceMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';
export type Int64 = string | number;

export interface CriMount {
  container_path: string;
  host_path: string;
  readonly?: boolean;
  selinux_relabel?: boolean;
  propagation?: MountPropagation;
  recursive_read_only?: boolean;
  uidMappings?: unknown[] | null;
  gidMappings?: unknown[] | null;
  image?: { image?: string } | null;
  image_sub_path?: string;
}

export interface CriDevice {
  container_path: string;
  host_path: string;
  permissions?: string;
}

export interface CriSecurityProfile {
  profile_type?: 'RuntimeDefault' | 'Unconfined' | 'Localhost';
  localhost_ref?: string;
}

export interface CriNamespaceOption {
  network?: NamespaceMode;
  pid?: NamespaceMode;
  ipc?: NamespaceMode;
  target_id?: string;
  userns_options?: { mode?: NamespaceMode } | null;
}

export interface CriContainerResources {
  cpu_period?: Int64;
  cpu_quota?: Int64;
  cpu_shares?: Int64;
  memory_limit_in_bytes?: Int64;
  oom_score_adj?: Int64;
  cpuset_cpus?: string;
  cpuset_mems?: string;
  hugepage_limits?: Array<{ page_size: string; limit: Int64 }> | null;
  unified?: Record<string, string> | null;
  memory_swap_limit_in_bytes?: Int64;
}

export interface CriContainerSecurityContext {
  capabilities?: CriCapability | null;
  privileged?: boolean;
  namespace_options?: CriNamespaceOption | null;
  run_as_user?: { value: Int64 } | null;
  run_as_group?: { value: Int64 } | null;
  run_as_username?: string;
  readonly_rootfs?: boolean;
  supplemental_groups?: Int64[] | null;
  supplemental_groups_policy?: 'Merge' | 'Strict';
  no_new_privs?: boolean;
  masked_paths?: string[] | null;
  readonly_paths?: string[] | null;
  seccomp?: CriSecurityProfile | null;
  apparmor?: CriSecurityProfile | null;
  apparmor_profile?: string;
  seccomp_profile_path?: string;
}

export interface CriContainerConfig {
  metadata?: { name: string; attempt?: number } | null;
  image?: { image?: string } | null;
  command?: string[] | null;
  args?: string[] | null;
  working_dir?: string;
  /** The value is `bytes` in this project's proto (a Buffer), `string` upstream. */
  envs?: Array<{ key: string; value: string | Uint8Array }> | null;
  mounts?: CriMount[] | null;
  devices?: CriDevice[] | null;
  labels?: Record<string, string> | null;
  annotations?: Record<string, string> | null;
  log_path?: string;
  CDI_devices?: Array<{ name: string }> | null;
  stdin?: boolean;
  stdin_once?: boolean;
  tty?: boolean;
  linux?: { resources?: CriContainerResources | null; security_context?: CriContainerSecurityContext | null } | null;
}

/** The parts of the image config (OCI image spec `config`) a container spec uses. */
export interface ImageProcessConfig {
  User?: string;
  Env?: string[] | null;
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
}

/** What the pod knows that its containers need. */
export interface PodFacts {
  id: string;
  /** Pod metadata, for the io.kubernetes.cri.sandbox-* annotations. */
  name?: string;
  namespace?: string;
  uid?: string;
  /** The handler's type: runsc subcontainers need the CRI annotations (S1). */
  runtimeType: 'oci' | 'runsc';
  /** The pod's namespace modes; a container's own namespace_options win when set. */
  namespaces: PodNamespaces;
  /**
   * Namespaces to join: the infra process's /proc/<pid>/ns/{net,ipc,uts,pid} (see
   * infraNamespacePaths) or the pinned netns for the network.
   */
  namespacePaths: { network?: string; ipc?: string; uts?: string; pid?: string; user?: string };
  /** The pod cgroup (S12). */
  cgroupParent: string;
  /** The pod's hostname (the node's for a host-network pod): HOSTNAME in the env. */
  hostname: string;
  hostsPath?: string;
  hostnamePath?: string;
  resolvConfPath?: string;
  shmPath?: string;
  sysctls: Record<string, string>;
  /** False refuses privileged containers (the pod's own security_context.privileged). */
  privileged?: boolean;
  /** `mountHintAnnotations(hints)` of the pod (S14), passed to runsc. */
  mountHintAnnotations?: Record<string, string>;
}

/** A host device node, as stat(2) tells it. */
export interface DeviceInfo {
  kind: 'c' | 'b' | 'dir' | 'other';
  major: number;
  minor: number;
  /** Permission bits (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
}

/** The OS reads the spec needs; NODE_SPEC_LOOKUPS is the real one. */
export interface SpecLookups {
  /** The image's /etc/passwd and /etc/group, read inside `rootfs` (symlinks may not escape it). */
  accountFiles(rootfs: string): Promise<AccountFiles>;
  /** Whether a host path exists (following symlinks). */
  exists(hostPath: string): Promise<boolean>;
  /** stat of a device's host path; undefined when it does not exist. */
  statDevice(hostPath: string): Promise<DeviceInfo | undefined>;
  /** A host file's text (Localhost seccomp profiles); undefined when it does not exist. */
  readFile(hostPath: string): Promise<string | undefined>;
  /** Every device node of the host (privileged containers); may be absent. */
  hostDevices?(): Promise<LinuxDevice[]>;
  /**
   * The mount holding a host path and its propagation (from /proc/self/mountinfo), to
   * refuse propagation the host mount cannot give; when absent, nothing is checked.
   */
  hostMountPropagation?(hostPath: string): Promise<{ mountPoint: string; propagation: 'shared' | 'slave' | 'private' }>;
}

/** The node's OCI hook definitions (S6) and CDI registry (S20): one each per daemon (spec-container-extensions.ts). */
export interface ContainerSpecExtensions {
  hooks: { definitions(): Promise<HookDefinition[]> };
  cdi: { resolve(requests: ReadonlyArray<{ name: string; field: string }>): Promise<CdiResolved[]> };
}

export interface ContainerSpecInput {
  containerId: string;
  config: CriContainerConfig;
  image: ImageProcessConfig;
  /** The image reference, for the io.kubernetes.cri.image-name annotation. */
  imageName?: string;
  pod: PodFacts;
  /** The container's mounted rootfs (ImageService.prepareRootfs(...).path). */
  rootfs: string;
  /** containerd's restrict_oom_score_adj: requested values below this are raised to it. */
  minOomScoreAdj?: number;
  /** pids.max of the container (no CRI field carries one). */
  pidsLimit?: number;
  /** /proc/sys/kernel/cap_last_cap (default: 40). */
  lastCap?: number;
  /** What "all capabilities" means on the container's handler (its probe's finding); default: all the kernel knows. */
  availableCapabilities?: readonly string[];
  /** The runtime handler's name, for errors. */
  handler?: string;
  /** A new cgroup namespace for the container (default true). */
  cgroupNamespace?: boolean;
  /** When the host enforces AppArmor (default false: profiles other than unconfined are refused). */
  apparmorEnabled?: boolean;
  /** The PID namespace of target_id's container, for namespace_options.pid TARGET. */
  targetPidNamespacePath?: string;
  lookups: SpecLookups;
  /** S20 CDI devices and S6 hooks from the node's files; absent: none (CDI_devices refused). */
  extensions?: ContainerSpecExtensions;
}
