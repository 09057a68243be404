// Linux capabilities of a container process, as containerd's CRI computes them: a
// default set, then "ALL" (add or drop), then each named add and drop. The CRI passes
// names as the kubelet got them from the pod spec ("NET_ADMIN"); "CAP_NET_ADMIN",
// lower case and "all" are accepted too.
import { InvalidArgumentError } from '../errors.js';

/** Every capability the kernel knows, in number order (CAP_CHOWN = 0 … CAP_CHECKPOINT_RESTORE = 40). */
export const ALL_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT',
  'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG',
  'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** /proc/sys/kernel/cap_last_cap of the kernels this runs on (5.9+). */
export const DEFAULT_LAST_CAP = ALL_CAPABILITIES.length - 1;

/** containerd's (and moby's) default set for a non-privileged container. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

/** LinuxContainerSecurityContext.capabilities as proto-loader decodes it. */
export interface CriCapability {
  add_capabilities?: string[] | null;
  drop_capabilities?: string[] | null;
  add_ambient_capabilities?: string[] | null;
}

/** The OCI `process.capabilities` sets. */
export interface ProcessCapabilities {
  bounding: string[];
  effective: string[];
  permitted: string[];
  inheritable: string[];
  ambient: string[];
}

/** The capabilities a kernel with `lastCap` knows ("ALL"). */
export function knownCapabilities(lastCap: number = DEFAULT_LAST_CAP): string[] {
  return ALL_CAPABILITIES.slice(0, Math.max(0, Math.min(lastCap, DEFAULT_LAST_CAP)) + 1);
}

/**
 * "net_admin", "NET_ADMIN", "CAP_NET_ADMIN" → "CAP_NET_ADMIN". `field` names the
 * CRI field for the error; an unknown name is an InvalidArgumentError.
 */
export function normalizeCapability(name: string, field: string): string {
  const upper = name.trim().toUpperCase();
  const full = upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
  if (!ALL_CAPABILITIES.includes(full)) {
    throw new InvalidArgumentError(`${field}: unknown capability ${JSON.stringify(name)}`);
  }
  return full;
}

const isAll = (name: string): boolean => name.trim().toUpperCase() === 'ALL';

export interface ComputeCapabilitiesOptions {
  /** Privileged containers get every capability the kernel knows, whatever add/drop say. */
  privileged?: boolean;
  lastCap?: number;
}

/**
 * The process capabilities of a container. As containerd does since its fix for
 * CVE-2022-24769, the inheritable set stays empty except for ambient capabilities
 * (which the kernel requires to be inheritable too).
 */
export function computeCapabilities(cri: CriCapability | null | undefined, opts: ComputeCapabilitiesOptions = {}): ProcessCapabilities {
  const known = knownCapabilities(opts.lastCap);
  const set = new Set<string>(opts.privileged ? known : DEFAULT_CAPABILITIES);
  const ambient = new Set<string>();
  if (!opts.privileged && cri) {
    const add = cri.add_capabilities ?? [];
    const drop = cri.drop_capabilities ?? [];
    // ALL first, so that e.g. add [ALL] + drop [CHOWN] is everything but CHOWN.
    if (add.some(isAll)) for (const c of known) set.add(c);
    if (drop.some(isAll)) set.clear();
    for (const c of add) if (!isAll(c)) set.add(normalizeCapability(c, 'linux.security_context.capabilities.add_capabilities'));
    for (const c of drop) if (!isAll(c)) set.delete(normalizeCapability(c, 'linux.security_context.capabilities.drop_capabilities'));
  }
  for (const c of cri?.add_ambient_capabilities ?? []) {
    const name = normalizeCapability(c, 'linux.security_context.capabilities.add_ambient_capabilities');
    // An ambient capability must be permitted too; the kernel ignores it otherwise.
    set.add(name);
    ambient.add(name);
  }
  const ordered = ALL_CAPABILITIES.filter((c) => set.has(c));
  const amb = ALL_CAPABILITIES.filter((c) => ambient.has(c));
  return { bounding: [...ordered], effective: [...ordered], permitted: [...ordered], inheritable: [...amb], ambient: amb };
}
