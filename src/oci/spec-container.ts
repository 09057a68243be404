// The OCI spec (config.json) of an app container: a subcontainer of its pod (S1). It
// joins the pod's network, IPC and UTS namespaces (and PID when the pod shares it) by
// path, nests its cgroup under the pod cgroup (S12), and, under runsc, carries the CRI
// annotations that make gVisor start it inside the pod's sandbox plus the pod's mount
// hints (S14). The rules for args, env, user, mounts, capabilities, seccomp and
// resources are the kubelet's and containerd's. Pure: every OS read goes through
// `lookups`, so the whole of it is unit-tested without root.
import fs from 'node:fs/promises';
import path from 'node:path';
import { errnoCode, InvalidArgumentError, UnimplementedError } from '../errors.js';
import { computeCapabilities, DEFAULT_LAST_CAP, type CriCapability } from './capabilities.js';
import { defaultSeccompProfile, parseSeccompProfile } from './seccomp-default.js';
import {
  ANNOTATION_CONTAINER_NAME, ANNOTATION_CONTAINER_TYPE, ANNOTATION_IMAGE_NAME, ANNOTATION_SANDBOX_ID,
  ANNOTATION_SANDBOX_NAME, ANNOTATION_SANDBOX_NAMESPACE, ANNOTATION_SANDBOX_UID, DEFAULT_MASKED_PATHS,
  DEFAULT_READONLY_PATHS, OCI_VERSION, standardMounts, type LinuxDevice, type LinuxDeviceCgroup,
  type LinuxNamespace, type LinuxResources, type LinuxSeccomp, type OciMount, type OciSpec,
} from './spec-common.js';
import { validateSysctls, type PodNamespaces } from './spec-sandbox.js';
import { resolveUser, type AccountFiles } from './user-lookup.js';

// ── The CRI ContainerConfig as @grpc/proto-loader decodes it (keepCase, longs and
// enums as strings, defaults on: unset messages are null, int64 are strings). ──

export type MountPropagation = 'PROPAGATION_PRIVATE' | 'PROPAGATION_HOST_TO_CONTAINER' | 'PROPAGATION_BIDIRECTIONAL';
export type NamespaceMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';
type Int64 = string | number;

export interface CriMount {
  container_path: string;
  host_path: string;
  readonly?: boolean;
  selinux_relabel?: boolean;
  propagation?: MountPropagation;
  recursive_read_only?: boolean;
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
  namespacePaths: { network?: string; ipc?: string; uts?: string; pid?: string };
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
  /** A new cgroup namespace for the container (default true). */
  cgroupNamespace?: boolean;
  /** When the host enforces AppArmor (default false: profiles other than unconfined are refused). */
  apparmorEnabled?: boolean;
  /** The PID namespace of target_id's container, for namespace_options.pid TARGET. */
  targetPidNamespacePath?: string;
  lookups: SpecLookups;
}

const MAX_SYMLINK_HOPS = 40;

/**
 * Resolves `rel` inside `root` as if `root` were `/`: symlinks (absolute or with "..")
 * cannot lead out of it. Undefined when a component does not exist.
 */
export async function resolveInRoot(root: string, rel: string): Promise<string | undefined> {
  const pending = rel.split('/').filter(Boolean);
  const done: string[] = [];
  let hops = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const p = path.join(root, ...done, part);
    let st;
    try {
      st = await fs.lstat(p);
    } catch (e: unknown) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return undefined;
      throw e;
    }
    if (!st.isSymbolicLink()) {
      done.push(part);
      continue;
    }
    if (++hops > MAX_SYMLINK_HOPS) throw new InvalidArgumentError(`resolving "${rel}" in "${root}": too many symlinks`);
    const target = await fs.readlink(p);
    if (target.startsWith('/')) done.length = 0;
    pending.unshift(...target.split('/').filter(Boolean));
  }
  return path.join(root, ...done);
}

async function readOptional(p: string | undefined): Promise<string | undefined> {
  if (p === undefined) return undefined;
  try {
    return await fs.readFile(p, 'utf8');
  } catch (e: unknown) {
    if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR' || errnoCode(e) === 'EISDIR') return undefined;
    throw e;
  }
}

function devNumbers(rdev: bigint): { major: number; minor: number } {
  // glibc's gnu_dev_major/gnu_dev_minor.
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

// Directories of /dev that hold no devices of the host's own (containerd's list).
const HOST_DEV_SKIP = new Set(['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev']);

async function listHostDevices(dir: string, out: LinuxDevice[]): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    const p = path.join(dir, name);
    if (p === '/dev/console') continue;
    const st = await fs.lstat(p, { bigint: true }).catch(() => undefined);
    if (st === undefined) continue;
    if (st.isDirectory()) {
      if (!HOST_DEV_SKIP.has(name)) await listHostDevices(p, out);
      continue;
    }
    if (!st.isCharacterDevice() && !st.isBlockDevice()) continue;
    const { major, minor } = devNumbers(st.rdev);
    out.push({ path: p, type: st.isCharacterDevice() ? 'c' : 'b', major, minor, fileMode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid) });
  }
}

/** The real lookups. */
export const NODE_SPEC_LOOKUPS: SpecLookups = {
  async accountFiles(rootfs) {
    const [passwd, group] = await Promise.all([
      resolveInRoot(rootfs, 'etc/passwd').then(readOptional),
      resolveInRoot(rootfs, 'etc/group').then(readOptional),
    ]);
    return { passwd, group };
  },
  async exists(hostPath) {
    try {
      await fs.stat(hostPath);
      return true;
    } catch (e: unknown) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return false;
      throw e;
    }
  },
  async statDevice(hostPath) {
    let st;
    try {
      st = await fs.stat(hostPath, { bigint: true });
    } catch (e: unknown) {
      if (errnoCode(e) === 'ENOENT' || errnoCode(e) === 'ENOTDIR') return undefined;
      throw e;
    }
    const kind = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : st.isDirectory() ? 'dir' : 'other';
    return { kind, ...devNumbers(st.rdev), mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid) };
  },
  readFile: readOptional,
  async hostDevices() {
    const out: LinuxDevice[] = [];
    await listHostDevices('/dev', out);
    return out;
  },
};

export const DEFAULT_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const ANNOTATION_TERMINATION_MESSAGE_PATH = 'io.kubernetes.container.terminationMessagePath';
const OOM_SCORE_ADJ_MIN = -1000;
const OOM_SCORE_ADJ_MAX = 1000;

/** The namespace files of the pod's infra process. */
export function infraNamespacePaths(pid: number, netnsPath?: string): PodFacts['namespacePaths'] {
  return {
    network: netnsPath ?? `/proc/${pid}/ns/net`,
    ipc: `/proc/${pid}/ns/ipc`,
    uts: `/proc/${pid}/ns/uts`,
    pid: `/proc/${pid}/ns/pid`,
  };
}

/** S12: every container's cgroup nests under its pod's. */
export function containerCgroupPath(podCgroup: string, containerId: string): string {
  return path.posix.join(podCgroup, containerId);
}

/**
 * The host file the kubelet mounted at the container's termination message path
 * (it passes the path as an annotation and the file as an ordinary mount).
 */
export function terminationMessageHostPath(config: CriContainerConfig): string | undefined {
  const dest = config.annotations?.[ANNOTATION_TERMINATION_MESSAGE_PATH];
  if (dest === undefined || dest === '') return undefined;
  return (config.mounts ?? []).find((m) => path.posix.normalize(m.container_path) === path.posix.normalize(dest))?.host_path;
}

/** Builds the container's config.json. Bad input is an InvalidArgumentError naming the field. */
export async function buildContainerSpec(input: ContainerSpecInput): Promise<OciSpec> {
  const { config, pod } = input;
  const sc = config.linux?.security_context ?? undefined;
  const privileged = sc?.privileged === true;
  if (privileged && pod.privileged === false) {
    throw new InvalidArgumentError('linux.security_context.privileged: the pod is not privileged, so its containers may not be');
  }
  const modes = containerNamespaceModes(sc?.namespace_options ?? undefined, pod.namespaces);

  const caps = computeCapabilities(sc?.capabilities, { privileged, lastCap: input.lastCap ?? DEFAULT_LAST_CAP });
  const env = buildEnv(input.image.Env ?? [], config.envs ?? [], pod.hostname, config.tty === true);
  const user = resolveUser(userSpec(sc, input.image.User ?? ''), await input.lookups.accountFiles(input.rootfs), {
    supplementalGroups: (sc?.supplemental_groups ?? []).map((g) => toInt(g, 'linux.security_context.supplemental_groups')),
    strict: sc?.supplemental_groups_policy === 'Strict',
    field: userField(sc),
  });
  const { devices, deviceRules } = await buildDevices(config.devices ?? [], privileged, input.lookups);
  const { mounts, rootfsPropagation } = await buildMounts(input, modes, privileged);
  const resources = buildResources(config.linux?.resources ?? undefined, input.pidsLimit);
  resources.devices = deviceRules;
  const oomScoreAdj = oomScore(config.linux?.resources?.oom_score_adj, input.minOomScoreAdj);

  const sysctls = { ...pod.sysctls };
  validateSysctls(sysctls, { network: modes.network === 'NODE' ? 'NODE' : 'POD', ipc: modes.ipc === 'NODE' ? 'NODE' : 'POD', pid: pod.namespaces.pid });

  const spec: OciSpec = {
    ociVersion: OCI_VERSION,
    process: {
      terminal: config.tty === true,
      user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
      args: buildArgs(config, input.image),
      env,
      cwd: workingDir(config.working_dir ?? '', input.image.WorkingDir ?? ''),
      capabilities: caps,
      noNewPrivileges: sc?.no_new_privs === true,
      oomScoreAdj,
    },
    root: { path: input.rootfs, readonly: sc?.readonly_rootfs === true },
    mounts,
    annotations: buildAnnotations(input),
    linux: {
      namespaces: buildNamespaces(input, modes),
      cgroupsPath: containerCgroupPath(pod.cgroupParent, input.containerId),
      sysctl: sysctls,
      resources,
      ...(devices.length > 0 ? { devices } : {}),
      ...(privileged ? {} : {
        maskedPaths: nonEmptyOr(sc?.masked_paths, DEFAULT_MASKED_PATHS, 'linux.security_context.masked_paths'),
        readonlyPaths: nonEmptyOr(sc?.readonly_paths, DEFAULT_READONLY_PATHS, 'linux.security_context.readonly_paths'),
      }),
      ...(rootfsPropagation !== undefined ? { rootfsPropagation } : {}),
    },
  };
  const seccomp = await buildSeccomp(sc, privileged, caps.bounding, input.lookups);
  if (seccomp !== undefined) spec.linux.seccomp = seccomp;
  const apparmor = apparmorProfile(sc, privileged, input.apparmorEnabled === true);
  if (apparmor !== undefined) spec.process.apparmorProfile = apparmor;
  return spec;
}

// ── args, env, cwd ──

/**
 * The kubelet's (and moby's) rule: command set → command + args; only args →
 * Entrypoint + args; neither → Entrypoint + Cmd. An Entrypoint of [""] means none.
 */
export function buildArgs(config: Pick<CriContainerConfig, 'command' | 'args'>, image: ImageProcessConfig): string[] {
  let command = [...(config.command ?? [])];
  let args = [...(config.args ?? [])];
  if (command.length === 0) {
    if (args.length === 0) args = [...(image.Cmd ?? [])];
    const ep = image.Entrypoint ?? [];
    if (!(ep.length === 1 && ep[0] === '')) command = [...ep];
  }
  const all = [...command, ...args];
  if (all.length === 0) {
    throw new InvalidArgumentError('command: no command specified: the config has no command or args and the image no Entrypoint or Cmd');
  }
  return all;
}

/** Image env, then the config's envs (a later key replaces an earlier one in place). */
export function buildEnv(
  imageEnv: readonly string[],
  envs: ReadonlyArray<{ key: string; value: string | Uint8Array }>,
  hostname: string,
  tty: boolean,
): string[] {
  const out: string[] = [DEFAULT_PATH_ENV, `HOSTNAME=${hostname}`];
  const set = (kv: string): void => {
    const key = kv.slice(0, kv.indexOf('=') === -1 ? kv.length : kv.indexOf('='));
    const i = out.findIndex((e) => e === key || e.startsWith(`${key}=`));
    if (i === -1) out.push(kv);
    else out[i] = kv;
  };
  for (const e of imageEnv) if (e !== '') set(e);
  for (const [i, { key, value }] of envs.entries()) {
    const v = typeof value === 'string' ? value : Buffer.from(value).toString('utf8');
    if (key === '' || key.includes('=') || key.includes('\0')) {
      throw new InvalidArgumentError(`envs[${i}].key: ${JSON.stringify(key)} is no environment variable name`);
    }
    if (v.includes('\0')) throw new InvalidArgumentError(`envs[${i}] ("${key}"): the value holds a NUL byte`);
    set(`${key}=${v}`);
  }
  // containerd's WithTTY: a terminal needs a TERM.
  if (tty && !out.some((e) => e.startsWith('TERM='))) out.push('TERM=xterm');
  return out;
}

function workingDir(configDir: string, imageDir: string): string {
  const dir = configDir !== '' ? configDir : imageDir !== '' ? imageDir : '/';
  if (!path.posix.isAbsolute(dir)) {
    const field = configDir !== '' ? 'working_dir' : 'image config WorkingDir';
    throw new InvalidArgumentError(`${field}: ${JSON.stringify(dir)} is not an absolute path`);
  }
  return dir;
}

// ── user ──

/** containerd's user string: run_as_username over run_as_user, ":" run_as_group; else the image's User. */
function userSpec(sc: CriContainerSecurityContext | undefined, imageUser: string): string {
  let user = '';
  if (sc?.run_as_user) user = String(toInt(sc.run_as_user.value, 'linux.security_context.run_as_user'));
  if (sc?.run_as_username) user = sc.run_as_username;
  const group = sc?.run_as_group ? String(toInt(sc.run_as_group.value, 'linux.security_context.run_as_group')) : '';
  if (user === '') {
    if (group !== '') throw new InvalidArgumentError(`linux.security_context.run_as_group: group ${group} is specified without a user`);
    return imageUser !== '' ? imageUser : '0';
  }
  return group !== '' ? `${user}:${group}` : user;
}

function userField(sc: CriContainerSecurityContext | undefined): string {
  if (sc?.run_as_username) return 'linux.security_context.run_as_username';
  if (sc?.run_as_user) return 'linux.security_context.run_as_user';
  return 'image config User';
}

// ── namespaces ──

interface ContainerModes {
  network: NamespaceMode;
  pid: NamespaceMode;
  ipc: NamespaceMode;
}

function containerNamespaceModes(opt: CriNamespaceOption | undefined, pod: PodNamespaces): ContainerModes {
  // Without namespace_options the container follows its pod.
  if (opt === undefined) return { network: pod.network, pid: pod.pid, ipc: pod.ipc };
  const modes = { network: opt.network ?? 'POD', pid: opt.pid ?? 'POD', ipc: opt.ipc ?? 'POD' };
  for (const k of ['network', 'ipc'] as const) {
    if (modes[k] !== 'POD' && modes[k] !== 'NODE') {
      throw new InvalidArgumentError(`linux.security_context.namespace_options.${k}: mode ${modes[k]} is not supported (POD or NODE)`);
    }
  }
  return modes;
}

function buildNamespaces(input: ContainerSpecInput, modes: ContainerModes): LinuxNamespace[] {
  const paths = input.pod.namespacePaths;
  const join = (type: LinuxNamespace['type'], p: string | undefined, what: string): LinuxNamespace => {
    if (p === undefined || p === '') {
      throw new InvalidArgumentError(`joining pod "${input.pod.id}": the pod has no ${what} namespace path`);
    }
    return { type, path: p };
  };
  const ns: LinuxNamespace[] = [{ type: 'mount' }];
  if (modes.network !== 'NODE') {
    ns.push(join('network', paths.network, 'network'));
    // A host-network pod shares the host's UTS namespace too (the kubelet's convention).
    ns.push(join('uts', paths.uts, 'UTS'));
  }
  if (modes.ipc !== 'NODE') ns.push(join('ipc', paths.ipc, 'IPC'));
  switch (modes.pid) {
    case 'POD':
      ns.push(join('pid', paths.pid, 'PID'));
      break;
    case 'CONTAINER':
      ns.push({ type: 'pid' });
      break;
    case 'TARGET':
      if (input.targetPidNamespacePath === undefined) {
        const target = input.config.linux?.security_context?.namespace_options?.target_id ?? '';
        throw new InvalidArgumentError(`linux.security_context.namespace_options.target_id: container "${target}" has no PID namespace to join`);
      }
      ns.push({ type: 'pid', path: input.targetPidNamespacePath });
      break;
    case 'NODE':
      break;
  }
  if (input.cgroupNamespace !== false) ns.push({ type: 'cgroup' });
  return ns;
}

// ── mounts ──

const PROPAGATION_OPTION: Record<MountPropagation, string> = {
  PROPAGATION_PRIVATE: 'rprivate',
  PROPAGATION_HOST_TO_CONTAINER: 'rslave',
  PROPAGATION_BIDIRECTIONAL: 'rshared',
};

function cleanAbsolute(p: string, field: string): string {
  if (!path.posix.isAbsolute(p)) throw new InvalidArgumentError(`${field}: ${JSON.stringify(p)} is not an absolute path`);
  if (p.split('/').includes('..')) throw new InvalidArgumentError(`${field}: ${JSON.stringify(p)} holds ".."`);
  if (p.includes('\0')) throw new InvalidArgumentError(`${field}: ${JSON.stringify(p)} holds a NUL byte`);
  const n = path.posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

const depth = (p: string): number => p.split('/').filter(Boolean).length;

async function buildMounts(
  input: ContainerSpecInput,
  modes: ContainerModes,
  privileged: boolean,
): Promise<{ mounts: OciMount[]; rootfsPropagation: string | undefined }> {
  const { pod } = input;
  const sc = input.config.linux?.security_context ?? undefined;
  const readonlyRootfs = sc?.readonly_rootfs === true;
  let rootfsPropagation: string | undefined;

  const cri: OciMount[] = [];
  for (const [i, m] of (input.config.mounts ?? []).entries()) {
    const field = `mounts[${i}]`;
    if (m.image && (m.image.image ?? '') !== '') {
      throw new UnimplementedError(`${field}.image: image volumes are not supported`);
    }
    const destination = cleanAbsolute(m.container_path, `${field}.container_path`);
    const source = cleanAbsolute(m.host_path, `${field}.host_path`);
    if (!(await input.lookups.exists(source))) {
      throw new InvalidArgumentError(`${field}.host_path: mount source "${source}" does not exist`);
    }
    const propagation = m.propagation ?? 'PROPAGATION_PRIVATE';
    const prop = PROPAGATION_OPTION[propagation];
    if (prop === undefined) throw new InvalidArgumentError(`${field}.propagation: unknown propagation ${JSON.stringify(propagation)}`);
    // The mount point inside must follow the host's events: the rootfs needs the same
    // propagation, or the kernel would stop them at the root.
    if (prop === 'rshared') rootfsPropagation = 'rshared';
    else if (prop === 'rslave' && rootfsPropagation !== 'rshared') rootfsPropagation = 'rslave';
    const options = ['rbind', prop, m.readonly ? 'ro' : 'rw'];
    if (m.recursive_read_only) {
      if (!m.readonly) throw new InvalidArgumentError(`${field}.recursive_read_only: needs readonly`);
      if (propagation !== 'PROPAGATION_PRIVATE') throw new InvalidArgumentError(`${field}.recursive_read_only: needs propagation PROPAGATION_PRIVATE`);
      options.push('rro');
    }
    cri.push({ destination, type: 'bind', source, options });
  }
  // Parents before children, so a mount under another is not hidden by it.
  cri.sort((a, b) => depth(a.destination) - depth(b.destination));
  const taken = new Set(cri.map((m) => m.destination));
  const devMounted = taken.has('/dev');

  const defaults: OciMount[] = standardMounts({ mqueue: true, sysWritable: privileged, cgroup: true });
  if (pod.shmPath) {
    defaults.push({ destination: '/dev/shm', type: 'bind', source: pod.shmPath, options: ['rbind', 'rprivate', 'nosuid', 'nodev', 'noexec', 'rw'] });
  }
  const podFile = (destination: string, source: string | undefined): void => {
    if (source) defaults.push({ destination, type: 'bind', source, options: ['rbind', 'rprivate', readonlyRootfs ? 'ro' : 'rw'] });
  };
  // A host-network pod sees the node's hostname; only a pod UTS namespace gets the pod's file.
  if (modes.network !== 'NODE') podFile('/etc/hostname', pod.hostnamePath);
  podFile('/etc/hosts', pod.hostsPath);
  podFile('/etc/resolv.conf', pod.resolvConfPath);
  // The config's own mounts win over the defaults at the same path (and a /dev of its
  // own replaces everything the defaults put under /dev).
  const kept = defaults.filter((d) => !taken.has(d.destination) && !(devMounted && d.destination.startsWith('/dev/')));
  return { mounts: [...kept, ...cri], rootfsPropagation };
}

// ── devices ──

async function buildDevices(
  list: readonly CriDevice[],
  privileged: boolean,
  lookups: SpecLookups,
): Promise<{ devices: LinuxDevice[]; deviceRules: LinuxDeviceCgroup[] }> {
  const devices: LinuxDevice[] = [];
  const rules: LinuxDeviceCgroup[] = [{ allow: false, access: 'rwm' }];
  if (privileged) {
    for (const d of (await lookups.hostDevices?.()) ?? []) devices.push(d);
    rules.splice(0, rules.length, { allow: true, access: 'rwm' });
  }
  for (const [i, d] of list.entries()) {
    const field = `devices[${i}]`;
    const hostPath = cleanAbsolute(d.host_path, `${field}.host_path`);
    const containerPath = cleanAbsolute(d.container_path === '' ? d.host_path : d.container_path, `${field}.container_path`);
    const access = d.permissions === undefined || d.permissions === '' ? 'rwm' : d.permissions;
    if (!/^[rwm]{1,3}$/.test(access) || new Set(access).size !== access.length) {
      throw new InvalidArgumentError(`${field}.permissions: ${JSON.stringify(d.permissions)} is not a combination of r, w and m`);
    }
    const st = await lookups.statDevice(hostPath);
    if (st === undefined) throw new InvalidArgumentError(`${field}.host_path: device "${hostPath}" does not exist`);
    if (st.kind === 'dir') throw new UnimplementedError(`${field}.host_path: "${hostPath}" is a directory; device directories are not supported`);
    if (st.kind !== 'c' && st.kind !== 'b') throw new InvalidArgumentError(`${field}.host_path: "${hostPath}" is not a device node`);
    const i2 = devices.findIndex((x) => x.path === containerPath);
    const dev: LinuxDevice = { path: containerPath, type: st.kind, major: st.major, minor: st.minor, fileMode: st.mode, uid: st.uid, gid: st.gid };
    if (i2 === -1) devices.push(dev);
    else devices[i2] = dev;
    if (!privileged) rules.push({ allow: true, type: st.kind, major: st.major, minor: st.minor, access });
  }
  return { devices, deviceRules: rules };
}

// ── resources ──

function toInt(v: Int64 | undefined, field: string): number {
  if (v === undefined || v === '') return 0;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`${field}: ${JSON.stringify(v)} is not an integer`);
  return n;
}

function nonNegative(v: Int64 | undefined, field: string): number {
  const n = toInt(v, field);
  if (n < 0) throw new InvalidArgumentError(`${field}: ${n} is negative`);
  return n;
}

const CPUSET_RE = /^\d+(-\d+)?(,\d+(-\d+)?)*$/;
const PAGE_SIZE_RE = /^\d+(KB|MB|GB|TB|PB)$/;

/** LinuxContainerResources → OCI linux.resources (0 and "" mean unset, as in containerd). */
export function buildResources(r: CriContainerResources | undefined, pidsLimit?: number): LinuxResources {
  const out: LinuxResources = {};
  if (pidsLimit !== undefined) {
    if (!Number.isSafeInteger(pidsLimit) || pidsLimit < 0) throw new InvalidArgumentError(`pids limit: ${pidsLimit} is negative or not an integer`);
    if (pidsLimit > 0) out.pids = { limit: pidsLimit };
  }
  if (!r) return out;
  const f = 'linux.resources.';
  const cpu: NonNullable<LinuxResources['cpu']> = {};
  const period = nonNegative(r.cpu_period, `${f}cpu_period`);
  const quota = nonNegative(r.cpu_quota, `${f}cpu_quota`);
  const shares = nonNegative(r.cpu_shares, `${f}cpu_shares`);
  if (period !== 0) cpu.period = period;
  if (quota !== 0) cpu.quota = quota;
  if (shares !== 0) cpu.shares = shares;
  for (const [k, key] of [['cpuset_cpus', 'cpus'], ['cpuset_mems', 'mems']] as const) {
    const v = (r[k] ?? '').trim();
    if (v === '') continue;
    if (!CPUSET_RE.test(v)) throw new InvalidArgumentError(`${f}${k}: ${JSON.stringify(v)} is not a cpu list (e.g. "0-2,4")`);
    cpu[key] = v;
  }
  if (Object.keys(cpu).length > 0) out.cpu = cpu;
  const limit = nonNegative(r.memory_limit_in_bytes, `${f}memory_limit_in_bytes`);
  const swap = toInt(r.memory_swap_limit_in_bytes, `${f}memory_swap_limit_in_bytes`);
  // -1 is the cgroup's "unlimited" for swap; any other negative is a mistake.
  if (swap < -1) throw new InvalidArgumentError(`${f}memory_swap_limit_in_bytes: ${swap} is negative`);
  if (limit !== 0 || swap !== 0) {
    out.memory = {};
    if (limit !== 0) out.memory.limit = limit;
    if (swap !== 0) out.memory.swap = swap;
  }
  for (const [i, h] of (r.hugepage_limits ?? []).entries()) {
    if (!PAGE_SIZE_RE.test(h.page_size)) {
      throw new InvalidArgumentError(`${f}hugepage_limits[${i}].page_size: ${JSON.stringify(h.page_size)} is not a page size (e.g. "2MB")`);
    }
    (out.hugepageLimits ??= []).push({ pageSize: h.page_size, limit: nonNegative(h.limit, `${f}hugepage_limits[${i}].limit`) });
  }
  const unified = r.unified ?? {};
  for (const [k, v] of Object.entries(unified)) {
    if (!/^[a-z_]+\.[a-z0-9_.]+$/.test(k) || k.includes('..')) throw new InvalidArgumentError(`${f}unified: ${JSON.stringify(k)} is not a cgroup v2 file name`);
    if (/[\n\0]/.test(v)) throw new InvalidArgumentError(`${f}unified["${k}"]: the value holds a newline or NUL`);
  }
  if (Object.keys(unified).length > 0) out.unified = { ...unified };
  return out;
}

function oomScore(v: Int64 | undefined, min: number | undefined): number {
  const n = toInt(v, 'linux.resources.oom_score_adj');
  if (n < OOM_SCORE_ADJ_MIN || n > OOM_SCORE_ADJ_MAX) {
    throw new InvalidArgumentError(`linux.resources.oom_score_adj: ${n} is outside [${OOM_SCORE_ADJ_MIN}, ${OOM_SCORE_ADJ_MAX}]`);
  }
  return min !== undefined && n < min ? min : n;
}

// ── security ──

function nonEmptyOr(given: readonly string[] | null | undefined, fallback: readonly string[], field: string): string[] {
  // proto3 cannot tell an empty list from an unset one: both mean "the defaults" (containerd).
  if (!given || given.length === 0) return [...fallback];
  return given.map((p, i) => cleanAbsolute(p, `${field}[${i}]`));
}

async function buildSeccomp(
  sc: CriContainerSecurityContext | undefined,
  privileged: boolean,
  bounding: readonly string[],
  lookups: SpecLookups,
): Promise<LinuxSeccomp | undefined> {
  if (privileged || sc === undefined) return undefined;
  let kind: 'RuntimeDefault' | 'Unconfined' | 'Localhost';
  let ref = '';
  let field = 'linux.security_context.seccomp';
  if (sc.seccomp) {
    kind = sc.seccomp.profile_type ?? 'RuntimeDefault';
    ref = sc.seccomp.localhost_ref ?? '';
    field += '.localhost_ref';
  } else {
    // The deprecated string form: "", "unconfined", "runtime/default", "docker/default", "localhost/<path>".
    const p = sc.seccomp_profile_path ?? '';
    field = 'linux.security_context.seccomp_profile_path';
    if (p === '' || p === 'unconfined') kind = 'Unconfined';
    else if (p === 'runtime/default' || p === 'docker/default') kind = 'RuntimeDefault';
    else if (p.startsWith('localhost/')) {
      kind = 'Localhost';
      ref = p.slice('localhost/'.length);
    } else throw new InvalidArgumentError(`${field}: unknown seccomp profile ${JSON.stringify(p)}`);
  }
  switch (kind) {
    case 'Unconfined':
      return undefined;
    case 'RuntimeDefault':
      return defaultSeccompProfile(bounding);
    case 'Localhost': {
      const file = cleanAbsolute(ref, field);
      const text = await lookups.readFile(file);
      if (text === undefined) throw new InvalidArgumentError(`${field}: seccomp profile "${file}" does not exist`);
      return parseSeccompProfile(text, bounding, `${field} "${file}"`);
    }
    default:
      throw new InvalidArgumentError(`linux.security_context.seccomp.profile_type: unknown type ${JSON.stringify(kind)}`);
  }
}

function apparmorProfile(sc: CriContainerSecurityContext | undefined, privileged: boolean, enabled: boolean): string | undefined {
  if (privileged || sc === undefined) return undefined;
  let kind: string;
  let ref = '';
  if (sc.apparmor) {
    kind = sc.apparmor.profile_type ?? 'RuntimeDefault';
    ref = sc.apparmor.localhost_ref ?? '';
  } else {
    const p = sc.apparmor_profile ?? '';
    kind = p === '' || p === 'unconfined' ? 'Unconfined' : p === 'runtime/default' ? 'RuntimeDefault' : 'Localhost';
    ref = p.startsWith('localhost/') ? p.slice('localhost/'.length) : p;
  }
  if (kind === 'Unconfined') return undefined;
  if (!enabled) {
    // As containerd: without AppArmor on the host, the default means none, but a
    // named profile cannot be honoured.
    if (kind === 'Localhost') {
      throw new InvalidArgumentError(`linux.security_context.apparmor: profile ${JSON.stringify(ref)} requested but AppArmor is not enabled on this host`);
    }
    return undefined;
  }
  if (kind === 'Localhost') {
    const name = ref.startsWith('localhost/') ? ref.slice('localhost/'.length) : ref;
    if (name === '') throw new InvalidArgumentError('linux.security_context.apparmor.localhost_ref: empty profile name');
    return name;
  }
  throw new UnimplementedError('linux.security_context.apparmor: the RuntimeDefault AppArmor profile is not supported on AppArmor hosts yet');
}

// ── annotations ──

function buildAnnotations(input: ContainerSpecInput): Record<string, string> {
  const { pod, config } = input;
  const out: Record<string, string> = {};
  // The container's own annotations travel along, except keys that steer the runtime
  // (the CRI's and gVisor's): those come from sandlot alone.
  for (const [k, v] of Object.entries(config.annotations ?? {})) {
    if (!k.startsWith('io.kubernetes.cri.') && !k.startsWith('dev.gvisor.')) out[k] = v;
  }
  if (pod.runtimeType === 'runsc') Object.assign(out, pod.mountHintAnnotations ?? {});
  out[ANNOTATION_CONTAINER_TYPE] = 'container';
  out[ANNOTATION_SANDBOX_ID] = pod.id;
  out[ANNOTATION_CONTAINER_NAME] = config.metadata?.name ?? '';
  if (input.imageName !== undefined) out[ANNOTATION_IMAGE_NAME] = input.imageName;
  if (pod.name !== undefined) out[ANNOTATION_SANDBOX_NAME] = pod.name;
  if (pod.namespace !== undefined) out[ANNOTATION_SANDBOX_NAMESPACE] = pod.namespace;
  if (pod.uid !== undefined) out[ANNOTATION_SANDBOX_UID] = pod.uid;
  return out;
}
