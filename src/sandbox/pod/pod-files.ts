// The files a pod owns under <state_dir>/pods/<id>/: the pod's resolv.conf, hosts and
// hostname (bind-mounted into its app containers), and the pod /dev/shm, a tmpfs mounted
// once for the pod so all its containers share it. The infra container's tiny read-only
// rootfs is one for all pods (<state_dir>/infra-rootfs).
import fs from 'node:fs/promises';
import path from 'node:path';
import { errnoCode, errorMessage, InternalError } from '../../errors.js';
import { MNT_DETACH, MS_NODEV, MS_NOEXEC, MS_NOSUID, mountAsync, umount2 } from '../../../native/index.js';
import { INFRA_BINARY } from '../../oci/spec-sandbox.js';
import { allSettledFirst } from './all-settled.js';
import { removeTree } from '../../util/remove-tree.js';

export const POD_SHM_SIZE_BYTES = 64 * 1024 * 1024;
/** The infra rootfs every pod shares, under the state dir. */
export const INFRA_ROOTFS_DIR = 'infra-rootfs';
const HOST_RESOLV_CONF = '/etc/resolv.conf';

export interface DnsConfig {
  servers: string[];
  searches: string[];
  options: string[];
}

export interface PodPaths {
  /** <state_dir>/pods/<id> */
  dir: string;
  bundle: string;
  rootfs: string;
  resolvConf: string;
  hosts: string;
  hostname: string;
  /** The pod's /dev/shm: a tmpfs under dir, or the host's /dev/shm for host-IPC pods. */
  shm: string;
  /** conmon's files for the infra container. */
  exitDir: string;
  infraLog: string;
  conmonLog: string;
  conmonPidFile: string;
  infraPidFile: string;
  persistDir: string;
  socketDir: string;
}

export function podPaths(stateDir: string, id: string, hostIpc: boolean): PodPaths {
  const dir = path.join(stateDir, 'pods', id);
  return {
    dir,
    bundle: path.join(dir, 'bundle'),
    // Shared by every pod (ensureInfraRootfs); a pod's removal leaves it.
    rootfs: path.join(stateDir, INFRA_ROOTFS_DIR),
    resolvConf: path.join(dir, 'resolv.conf'),
    hosts: path.join(dir, 'hosts'),
    hostname: path.join(dir, 'hostname'),
    shm: hostIpc ? '/dev/shm' : path.join(dir, 'shm'),
    exitDir: path.join(dir, 'exits'),
    infraLog: path.join(dir, 'infra.log'),
    conmonLog: path.join(dir, 'conmon.log'),
    conmonPidFile: path.join(dir, 'conmon.pid'),
    infraPidFile: path.join(dir, 'infra.pid'),
    persistDir: path.join(dir, 'persist'),
    socketDir: path.join(dir, 'sockets'),
  };
}

/** resolv.conf text from the pod's DNS config, or undefined to copy the host's. */
export function resolvConfText(dns: DnsConfig | undefined): string | undefined {
  if (!dns || (dns.servers.length === 0 && dns.searches.length === 0 && dns.options.length === 0)) return undefined;
  const lines: string[] = [];
  if (dns.searches.length > 0) lines.push(`search ${dns.searches.join(' ')}`);
  for (const s of dns.servers) lines.push(`nameserver ${s}`);
  if (dns.options.length > 0) lines.push(`options ${dns.options.join(' ')}`);
  return `${lines.join('\n')}\n`;
}

export function hostsText(hostname: string, ips: string[]): string {
  const lines = [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
  ];
  for (const ip of ips) lines.push(`${ip}\t${hostname}`);
  return `${lines.join('\n')}\n`;
}

/**
 * Makes the pod dir and its DNS and hostname files, and /etc/hosts when `hosts` (a pod
 * on the node's network; a pod network's comes with its IPs, writeHosts), each file at
 * once; and the shared infra rootfs when it is not there yet.
 */
export async function writePodFiles(p: PodPaths, hostname: string, dns: DnsConfig | undefined, opts: { hosts: boolean }): Promise<void> {
  await fs.mkdir(p.dir, { recursive: true, mode: 0o711 });
  const resolv = resolvConfText(dns);
  await allSettledFirst([
    ensureInfraRootfs(p.rootfs),
    fs.mkdir(p.bundle, { recursive: true }),
    resolv !== undefined
      ? fs.writeFile(p.resolvConf, resolv, { mode: 0o644 })
      : fs.copyFile(HOST_RESOLV_CONF, p.resolvConf).catch(() => fs.writeFile(p.resolvConf, '', { mode: 0o644 })),
    fs.writeFile(p.hostname, `${hostname}\n`, { mode: 0o644 }),
    opts.hosts ? writeHosts(p, hostname, []) : Promise.resolve(),
  ]);
}

/**
 * The infra's read-only rootfs: one for every pod (nothing writes it; the runtime mounts
 * /proc, /dev, /sys and catatonit over its mount points inside each container's own
 * mount namespace), made by the first pod and found by the next with one stat instead
 * of five creates and five removals per pod (issue 13). The catatonit mount point is
 * made last: when it is there, the rest is.
 */
async function ensureInfraRootfs(rootfs: string): Promise<void> {
  const binary = path.join(rootfs, INFRA_BINARY);
  if (
    await fs.access(binary).then(
      () => true,
      () => false,
    )
  )
    return;
  for (const d of ['proc', 'dev', 'sys']) await fs.mkdir(path.join(rootfs, d), { recursive: true, mode: 0o755 });
  // Appended to, never truncated: another pod's first run may be making it too.
  await fs.writeFile(binary, '', { mode: 0o755, flag: 'a' });
}

/** The pod's /etc/hosts (app containers bind-mount it; none exists before RunPodSandbox returns). */
export async function writeHosts(p: PodPaths, hostname: string, ips: string[]): Promise<void> {
  await fs.writeFile(p.hosts, hostsText(hostname, ips), { mode: 0o644 });
}

/** Mounts the pod's /dev/shm tmpfs (64 MiB) unless the pod uses the host's. */
export async function mountPodShm(p: PodPaths): Promise<void> {
  if (p.shm === '/dev/shm') return;
  await fs.mkdir(p.shm, { recursive: true, mode: 0o1777 });
  try {
    await mountAsync('shm', p.shm, 'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, `mode=1777,size=${POD_SHM_SIZE_BYTES}`);
  } catch (e) {
    throw new InternalError(`mounting the pod /dev/shm at "${p.shm}": ${errorMessage(e)}`, { cause: e });
  }
}

/** Unmounts the pod shm (every stacked mount) and removes the pod dir. Idempotent. */
export async function removePodFiles(p: PodPaths): Promise<void> {
  if (p.shm !== '/dev/shm') {
    // Each umount2 takes the top mount; EINVAL (no mount left there) or ENOENT ends it,
    // without reading mountinfo (which grows with the node's pods) before each one.
    for (let i = 0; i < 8; i++) {
      try {
        umount2(p.shm, MNT_DETACH);
      } catch (e) {
        if (errnoCode(e) === 'EINVAL' || errnoCode(e) === 'ENOENT') break;
        throw new InternalError(`unmounting the pod /dev/shm at "${p.shm}": ${errorMessage(e)}`, { cause: e });
      }
    }
  }
  try {
    await removeTree(p.dir);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw new InternalError(`removing "${p.dir}": ${errorMessage(e)}`, { cause: e });
  }
}
