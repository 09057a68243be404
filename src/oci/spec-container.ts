// The OCI spec (config.json) of an app container: a subcontainer of its pod (S1). It
// joins the pod's network, IPC and UTS namespaces (and PID when the pod shares it) by
// path, nests its cgroup under the pod cgroup (S12), and, under runsc, carries the CRI
// annotations that make gVisor start it inside the pod's sandbox plus the pod's mount
// hints (S14). The rules for args, env, user, mounts, capabilities, seccomp and
// resources are the kubelet's and containerd's. Pure: every OS read goes through
// `lookups`, so the whole of it is unit-tested without root.
//
// This module is the entry point: the input types (container-config.ts) and the real
// lookups (spec-container-lookups.ts) are re-exported here for callers.
import path from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { computeCapabilities, DEFAULT_LAST_CAP } from './capabilities.js';
import type {
  ContainerSpecInput,
  CriContainerConfig,
  CriContainerSecurityContext,
  CriNamespaceOption,
  ImageProcessConfig,
  NamespaceMode,
  PodFacts,
} from './container-config.js';
import {
  ANNOTATION_CONTAINER_NAME,
  ANNOTATION_CONTAINER_TYPE,
  ANNOTATION_IMAGE_NAME,
  ANNOTATION_SANDBOX_ID,
  ANNOTATION_SANDBOX_NAME,
  ANNOTATION_SANDBOX_NAMESPACE,
  ANNOTATION_SANDBOX_UID,
  DEFAULT_MASKED_PATHS,
  DEFAULT_READONLY_PATHS,
  OCI_VERSION,
  type LinuxNamespace,
  type OciSpec,
} from './spec-common.js';
import { buildDevices, buildMounts } from './spec-container-mounts.js';
import { applyContainerExtensions } from './spec-container-extensions.js';
import { buildResources, oomScore, toInt } from './spec-container-resources.js';
import { apparmorProfile, buildSeccomp, nonEmptyOr } from './spec-container-security.js';
import { validateSysctls, type PodNamespaces } from './spec-sandbox.js';
import { runtimeFeatures } from './runtime.js';
import { resolveUser } from './user-lookup.js';

export type {
  ContainerSpecInput,
  CriContainerConfig,
  CriContainerResources,
  CriContainerSecurityContext,
  CriDevice,
  CriMount,
  CriNamespaceOption,
  CriSecurityProfile,
  ContainerSpecExtensions,
  DeviceInfo,
  ImageProcessConfig,
  Int64,
  MountPropagation,
  NamespaceMode,
  PodFacts,
  SpecLookups,
} from './container-config.js';
export { NODE_SPEC_LOOKUPS, resolveInRoot } from './spec-container-lookups.js';
export { buildResources } from './spec-container-resources.js';

export const DEFAULT_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const ANNOTATION_TERMINATION_MESSAGE_PATH = 'io.kubernetes.container.terminationMessagePath';

/** The namespace files of the pod's infra process. */
export function infraNamespacePaths(pid: number, netnsPath?: string): PodFacts['namespacePaths'] {
  return {
    network: netnsPath ?? `/proc/${pid}/ns/net`,
    ipc: `/proc/${pid}/ns/ipc`,
    uts: `/proc/${pid}/ns/uts`,
    pid: `/proc/${pid}/ns/pid`,
    // Only a pod with its own user namespace (PodNamespaces.user) joins it.
    user: `/proc/${pid}/ns/user`,
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

  const caps = computeCapabilities(sc?.capabilities, {
    privileged,
    lastCap: input.lastCap ?? DEFAULT_LAST_CAP,
    ...(input.availableCapabilities !== undefined ? { available: input.availableCapabilities } : {}),
    ...(input.handler !== undefined ? { handler: input.handler } : {}),
  });
  const env = buildEnv(input.image.Env ?? [], config.envs ?? [], pod.hostname, config.tty === true);
  const user = resolveUser(userSpec(sc, input.image.User ?? ''), await input.lookups.accountFiles(input.rootfs), {
    supplementalGroups: (sc?.supplemental_groups ?? []).map((g) => toInt(g, 'linux.security_context.supplemental_groups')),
    strict: sc?.supplemental_groups_policy === 'Strict',
    field: userField(sc),
  });
  const { devices, deviceRules } = await buildDevices(config.devices ?? [], privileged, input.lookups);
  const { mounts, rootfsPropagation } = await buildMounts(input, privileged);
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
      // S19: runc 1.1.5 wants the mappings even when it joins the pod's user namespace.
      ...(pod.namespaces.user ? { uidMappings: pod.namespaces.user.uidMappings, gidMappings: pod.namespaces.user.gidMappings } : {}),
      cgroupsPath: containerCgroupPath(pod.cgroupParent, input.containerId),
      sysctl: sysctls,
      resources,
      ...(devices.length > 0 ? { devices } : {}),
      ...(privileged
        ? {}
        : {
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
  // S20 CDI devices, S6 hooks: last, so that they see (and edit) the finished spec.
  await applyContainerExtensions(spec, input);
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
  // S19: a container is in its pod's user namespace or in none (the kubelet repeats the pod's mode).
  const userns = opt.userns_options?.mode ?? (pod.user ? 'POD' : 'NODE');
  if (userns !== (pod.user ? 'POD' : 'NODE')) {
    throw new InvalidArgumentError(
      `linux.security_context.namespace_options.userns_options.mode: ${userns}: the pod's user namespace mode is ${pod.user ? 'POD' : 'NODE'}, and a container's must be the same`,
    );
  }
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
  // S19: joined first by the runtime; the pod's other namespaces belong to it.
  if (input.pod.namespaces.user) ns.push(join('user', paths.user, 'user'));
  if (modes.network !== 'NODE') {
    ns.push(join('network', paths.network, 'network'));
    // A host-network pod shares the host's UTS namespace too (the kubelet's convention).
    ns.push(join('uts', paths.uts, 'UTS'));
  }
  if (modes.ipc !== 'NODE') ns.push(join('ipc', paths.ipc, 'IPC'));
  switch (modes.pid) {
    case 'POD':
      // runsc matches a subcontainer's PID namespace path against those of the sandbox's
      // *app* containers only (the root's has no path), so the first app container
      // became init of a new namespace the next ones joined: once it stopped, every
      // start failed "creating process: out of memory" (the kernel's answer for a PID
      // namespace whose init is gone). No PID namespace entry = the sandbox kernel's
      // root namespace, where the infra process is PID 1 (measured: issue 10 item 8).
      if (runtimeFeatures(input.pod.runtimeType).joinsPodPidNamespace) ns.push(join('pid', paths.pid, 'PID'));
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

// ── annotations ──

function buildAnnotations(input: ContainerSpecInput): Record<string, string> {
  const { pod, config } = input;
  const out: Record<string, string> = {};
  // The container's own annotations travel along, except keys that steer the runtime
  // (the CRI's and gVisor's): those come from sandlot alone.
  for (const [k, v] of Object.entries(config.annotations ?? {})) {
    if (!k.startsWith('io.kubernetes.cri.') && !k.startsWith('dev.gvisor.')) out[k] = v;
  }
  // S14: the runtime that makes pod-shared tmpfs volumes reads them from every spec.
  if (runtimeFeatures(pod.runtimeType).podSharedTmpfs === 'sandbox') Object.assign(out, pod.mountHintAnnotations ?? {});
  out[ANNOTATION_CONTAINER_TYPE] = 'container';
  out[ANNOTATION_SANDBOX_ID] = pod.id;
  out[ANNOTATION_CONTAINER_NAME] = config.metadata?.name ?? '';
  if (input.imageName !== undefined) out[ANNOTATION_IMAGE_NAME] = input.imageName;
  if (pod.name !== undefined) out[ANNOTATION_SANDBOX_NAME] = pod.name;
  if (pod.namespace !== undefined) out[ANNOTATION_SANDBOX_NAMESPACE] = pod.namespace;
  if (pod.uid !== undefined) out[ANNOTATION_SANDBOX_UID] = pod.uid;
  return out;
}
