// Linux capabilities of a container process, as containerd's CRI computes them: a
// default set, then "ALL" (add or drop), then each named add and drop. The CRI passes
// names as the kubelet got them from the pod spec ("NET_ADMIN"); "CAP_NET_ADMIN",
// lower case and "all" are accepted too.
//
// "All" is never every capability the kernel knows: the daemon can hand out only what
// its own bounding set holds (measured: this root lacks CAP_SYS_RESOURCE, and runc then
// fails "unable to apply caps: operation not permitted"), and the Debian runsc refuses
// the ones it does not know (CAP_PERFMON, CAP_BPF, CAP_CHECKPOINT_RESTORE: "unknown
// capability"). Each handler's probe finds its set once at start (runtime.ts).
import { FailedPreconditionError, InvalidArgumentError } from '../errors.js';

/** Every capability the kernel knows, in number order (CAP_CHOWN = 0 … CAP_CHECKPOINT_RESTORE = 40). */
export const ALL_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
];

/** /proc/sys/kernel/cap_last_cap of the kernels this runs on (5.9+). */
export const DEFAULT_LAST_CAP = ALL_CAPABILITIES.length - 1;

/** containerd's (and moby's) default set for a non-privileged container. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
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

/** The names of the bits set in a hex capability mask (/proc/<pid>/status CapBnd), in number order. */
export function capabilitiesOfMask(hex: string): string[] {
  const mask = BigInt(`0x${hex.trim() || '0'}`);
  return ALL_CAPABILITIES.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
}

/** The bounding set in a /proc/<pid>/status text; undefined when it has no CapBnd line. */
export function boundingSetOfStatus(status: string): string[] | undefined {
  const m = /^CapBnd:\s*([0-9a-f]+)\s*$/im.exec(status);
  return m ? capabilitiesOfMask(m[1]) : undefined;
}

/** The capability a runtime refused as unknown, from its error text or log (runsc: `invalid capability "CAP_BPF"`). */
export function unknownCapabilityIn(message: string): string | undefined {
  // `unknown capability` from the sentry (app containers), `invalid capability` from
  // the sandbox process applying the root container's set.
  const m = /(?:unknown|invalid) capability:? *"?(CAP_[A-Z_]+)"?/i.exec(message);
  return m ? m[1].toUpperCase() : undefined;
}

export interface ComputeCapabilitiesOptions {
  /** Privileged containers get every available capability, whatever add/drop say. */
  privileged?: boolean;
  lastCap?: number;
  /**
   * What "all" means for this container's handler: the daemon's bounding set, less what
   * the runtime refuses (the handler probe's finding). Default: what the kernel knows.
   */
  available?: readonly string[];
  /** The handler's name, for the error when a named capability is not available. */
  handler?: string;
}

/**
 * The process capabilities of a container. As containerd does since its fix for
 * CVE-2022-24769, the inheritable set stays empty except for ambient capabilities
 * (which the kernel requires to be inheritable too).
 */
export function computeCapabilities(cri: CriCapability | null | undefined, opts: ComputeCapabilitiesOptions = {}): ProcessCapabilities {
  const kernel = knownCapabilities(opts.lastCap);
  const known = opts.available ? kernel.filter((c) => opts.available!.includes(c)) : kernel;
  // A capability asked for by name that the handler cannot give fails here, naming it,
  // rather than as the runtime's "operation not permitted" at create.
  const require = (name: string, field: string): string => {
    const full = normalizeCapability(name, field);
    if (!known.includes(full)) {
      const who = opts.handler !== undefined ? `runtime handler "${opts.handler}"` : 'this node';
      throw new FailedPreconditionError(
        `${field}: capability ${JSON.stringify(name)} is not available on ${who} (the daemon's bounding set, less what the runtime refuses, lacks ${full})`,
      );
    }
    return full;
  };
  const set = new Set<string>(opts.privileged ? known : DEFAULT_CAPABILITIES.filter((c) => known.includes(c)));
  const ambient = new Set<string>();
  if (!opts.privileged && cri) {
    const add = cri.add_capabilities ?? [];
    const drop = cri.drop_capabilities ?? [];
    // ALL first, so that e.g. add [ALL] + drop [CHOWN] is everything but CHOWN.
    if (add.some(isAll)) for (const c of known) set.add(c);
    if (drop.some(isAll)) set.clear();
    for (const c of add) if (!isAll(c)) set.add(require(c, 'linux.security_context.capabilities.add_capabilities'));
    for (const c of drop) if (!isAll(c)) set.delete(normalizeCapability(c, 'linux.security_context.capabilities.drop_capabilities'));
  }
  for (const c of cri?.add_ambient_capabilities ?? []) {
    const name = require(c, 'linux.security_context.capabilities.add_ambient_capabilities');
    // An ambient capability must be permitted too; the kernel ignores it otherwise.
    set.add(name);
    ambient.add(name);
  }
  const ordered = ALL_CAPABILITIES.filter((c) => set.has(c));
  const amb = ALL_CAPABILITIES.filter((c) => ambient.has(c));
  return { bounding: [...ordered], effective: [...ordered], permitted: [...ordered], inheritable: [...amb], ambient: amb };
}
