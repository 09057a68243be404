// Mounts and devices of an app container's spec: the config's host binds (readonly,
// propagation, recursive read-only), the pod's hosts/hostname/resolv.conf and /dev/shm,
// the standard kernel filesystems, and device nodes with their cgroup rules.
import path from 'node:path';
import { InvalidArgumentError, UnimplementedError } from '../errors.js';
import type { ContainerSpecInput, CriDevice, MountPropagation, SpecLookups } from './container-config.js';
import { runtimeFeatures } from './runtime.js';
import { standardMounts, type LinuxDevice, type LinuxDeviceCgroup, type OciMount } from './spec-common.js';

const PROPAGATION_OPTION: Record<MountPropagation, string> = {
  PROPAGATION_PRIVATE: 'rprivate',
  PROPAGATION_HOST_TO_CONTAINER: 'rslave',
  PROPAGATION_BIDIRECTIONAL: 'rshared',
};

/** An absolute path without ".." or NUL, normalized; `field` names it in errors. */
export function cleanAbsolute(p: string, field: string): string {
  if (!path.posix.isAbsolute(p)) throw new InvalidArgumentError(`${field}: ${JSON.stringify(p)} is not an absolute path`);
  if (p.split('/').includes('..')) throw new InvalidArgumentError(`${field}: ${JSON.stringify(p)} holds ".."`);
  if (p.includes('\0')) throw new InvalidArgumentError(`${field}: ${JSON.stringify(p)} holds a NUL byte`);
  const n = path.posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

const depth = (p: string): number => p.split('/').filter(Boolean).length;

export async function buildMounts(input: ContainerSpecInput, privileged: boolean): Promise<{ mounts: OciMount[]; rootfsPropagation: string | undefined }> {
  const { pod } = input;
  const sc = input.config.linux?.security_context ?? undefined;
  const readonlyRootfs = sc?.readonly_rootfs === true;
  let rootfsPropagation: string | undefined;

  const cri: OciMount[] = [];
  for (const [i, m] of (input.config.mounts ?? []).entries()) {
    const field = `mounts[${i}]`;
    if (m.image && (m.image.image ?? '') !== '') {
      // prepared-mounts.ts mounts image volumes and hands them over as binds of ready paths.
      throw new UnimplementedError(`${field}.image: an image volume must be prepared by the daemon before its spec is built`);
    }
    if ((m.uidMappings ?? []).length > 0 || (m.gidMappings ?? []).length > 0) {
      // S19: mappings need a user namespace.
      if (!pod.namespaces.user) throw new InvalidArgumentError(`${field}: uidMappings/gidMappings need a pod user namespace (S19)`);
      throw new UnimplementedError(`${field}: id-mapped mounts are not supported`);
    }
    const destination = cleanAbsolute(m.container_path, `${field}.container_path`);
    if (destination === '/') throw new InvalidArgumentError(`${field}.container_path: a mount may not cover the container's root`);
    const source = cleanAbsolute(m.host_path, `${field}.host_path`);
    if (!(await input.lookups.exists(source))) {
      throw new InvalidArgumentError(`${field}.host_path: mount source "${source}" does not exist`);
    }
    const propagation = m.propagation ?? 'PROPAGATION_PRIVATE';
    const prop = PROPAGATION_OPTION[propagation];
    if (prop === undefined) throw new InvalidArgumentError(`${field}.propagation: unknown propagation ${JSON.stringify(propagation)}`);
    // Measured with runsc 0.0~20221219: a host mount under an rslave source reaches the
    // container (through the gofer), but a mount made inside the sandbox lives in the
    // sentry's own mount table and never reaches the host; runsc refuses "rshared" both
    // as a mount option and as rootfsPropagation. So BIDIRECTIONAL cannot be had there.
    if (prop === 'rshared' && !runtimeFeatures(pod.runtimeType).bidirectionalPropagation) {
      throw new UnimplementedError(
        `${field}.propagation: PROPAGATION_BIDIRECTIONAL is not supported under runsc (mounts made in a gVisor sandbox never reach the host); PROPAGATION_HOST_TO_CONTAINER is`,
      );
    }
    // The mount point inside must follow the host's events: the rootfs needs the same
    // propagation, or the kernel would stop them at the root.
    if (prop === 'rshared') rootfsPropagation = 'rshared';
    else if (prop === 'rslave' && rootfsPropagation !== 'rshared') rootfsPropagation = 'rslave';
    // As containerd: events can only flow if the host mount propagates them at all.
    if (prop !== 'rprivate' && input.lookups.hostMountPropagation) {
      const host = await input.lookups.hostMountPropagation(source);
      const ok = prop === 'rshared' ? host.propagation === 'shared' : host.propagation !== 'private';
      if (!ok) {
        const need = prop === 'rshared' ? 'a shared mount' : 'a shared or slave mount';
        throw new InvalidArgumentError(
          `${field}.propagation: ${propagation} needs ${need}, but "${source}" is on "${host.mountPoint}", a ${host.propagation} mount`,
        );
      }
    }
    const options = ['rbind', prop, m.readonly ? 'ro' : 'rw'];
    if (m.recursive_read_only) {
      if (!m.readonly) throw new InvalidArgumentError(`${field}.recursive_read_only: needs readonly`);
      if (propagation !== 'PROPAGATION_PRIVATE') throw new InvalidArgumentError(`${field}.recursive_read_only: needs propagation PROPAGATION_PRIVATE`);
      // runc 1.1.5 takes an unknown "rro" as mount data and ignores it: prepared-mounts.ts
      // makes the read-only tree and hands it over as a plain read-only bind.
      throw new UnimplementedError(`${field}.recursive_read_only: must be prepared by the daemon before the spec is built (runc 1.1.5 has no "rro")`);
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
  podFile('/etc/hostname', pod.hostnamePath);
  podFile('/etc/hosts', pod.hostsPath);
  podFile('/etc/resolv.conf', pod.resolvConfPath);
  // The config's own mounts win over the defaults at the same path (and a /dev of its
  // own replaces everything the defaults put under /dev).
  const kept = defaults.filter((d) => !taken.has(d.destination) && !(devMounted && d.destination.startsWith('/dev/')));
  return { mounts: [...kept, ...cri], rootfsPropagation };
}

export async function buildDevices(
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
