// Pod mount hints (S14): volumes that several containers of a pod mount, described by
// pod annotations
//   dev.gvisor.spec.mount.<name>.source   host path (or, in Kubernetes, the volume name)
//   dev.gvisor.spec.mount.<name>.type     bind | tmpfs
//   dev.gvisor.spec.mount.<name>.share    container | pod | shared
//   dev.gvisor.spec.mount.<name>.options  comma-separated mount options
// A hint shared by the pod is set up once per sandbox (one master mount) and every
// container that mounts the same source uses it.
//
// As gVisor's containerd shim does, Kubernetes emptyDir volumes need no annotation:
// the kubelet creates them at <kubelet-root>/pods/<uid>/volumes/kubernetes.io~empty-dir/
// <name> before RunPodSandbox, so sandlot derives a pod-shared hint for each: a
// memory-medium emptyDir (the kubelet mounted a tmpfs there) becomes `tmpfs`, a disk
// one `bind`. emptyDir is pod-scoped by definition, so a hint is derived for every one
// of them: when RunPodSandbox runs, which containers will mount it is not known yet,
// and a pod-shared mount used by one container behaves as a private one.

import { readdir, readFile } from 'node:fs/promises';
import { isAbsolute, normalize } from 'node:path';
import { errnoCode, InvalidArgumentError } from '../../errors.js';

export const MOUNT_HINT_PREFIX = 'dev.gvisor.spec.mount.';
export const KUBELET_ROOT_DIR = '/var/lib/kubelet';
export const EMPTY_DIR_PLUGIN_DIR = 'kubernetes.io~empty-dir';

export type MountHintType = 'bind' | 'tmpfs';
export type MountHintShare = 'container' | 'pod' | 'shared';

const HINT_TYPES: readonly MountHintType[] = ['bind', 'tmpfs'];
const HINT_SHARES: readonly MountHintShare[] = ['container', 'pod', 'shared'];
const HINT_FIELDS = ['source', 'type', 'share', 'options'] as const;
type HintField = (typeof HINT_FIELDS)[number];

// Mount options a hint may carry: the OCI flag options, propagation, and the tmpfs
// parameters that make sense for a pod volume.
const FLAG_OPTIONS = new Set([
  'rw',
  'ro',
  'exec',
  'noexec',
  'suid',
  'nosuid',
  'dev',
  'nodev',
  'atime',
  'noatime',
  'relatime',
  'norelatime',
  'strictatime',
  'nostrictatime',
  'diratime',
  'nodiratime',
  'sync',
  'async',
  'bind',
  'rbind',
  'private',
  'rprivate',
  'slave',
  'rslave',
  'shared',
  'rshared',
  'unbindable',
  'runbindable',
]);
const VALUE_OPTIONS = new Set(['size', 'mode', 'nr_inodes']);

export interface MountHint {
  name: string;
  /** Absolute, normalized host path. */
  source: string;
  type: MountHintType;
  share: MountHintShare;
  options: string[];
  /** True for hints sandlot derived (emptyDir) rather than read from annotations. */
  derived: boolean;
}

export interface ParseMountHintsOptions {
  /** The pod's UID, to resolve a `.source` that names a Kubernetes volume instead of a path. */
  podUid?: string;
  kubeletRootDir?: string;
}

/** S14: whether the hint's source is set up once per sandbox and shared by its containers. */
export function shouldShareMount(hint: MountHint): boolean {
  return hint.share !== 'container';
}

/**
 * S14: parses the `dev.gvisor.spec.mount.*` pod annotations. An unknown type, share or
 * field, an unknown option, or a hint without a source is an InvalidArgumentError
 * naming the annotation and its value.
 */
export function parseMountHints(annotations: Readonly<Record<string, string>>, options: ParseMountHintsOptions = {}): MountHint[] {
  const partial = new Map<string, Partial<Record<HintField, string>>>();
  for (const [key, value] of Object.entries(annotations)) {
    if (!key.startsWith(MOUNT_HINT_PREFIX)) continue;
    const rest = key.slice(MOUNT_HINT_PREFIX.length);
    const dot = rest.lastIndexOf('.');
    const name = dot > 0 ? rest.slice(0, dot) : '';
    const field = dot > 0 ? rest.slice(dot + 1) : rest;
    if (name === '' || !(HINT_FIELDS as readonly string[]).includes(field)) {
      throw invalid(key, value, `expected ${MOUNT_HINT_PREFIX}<name>.{${HINT_FIELDS.join(',')}}`);
    }
    let fields = partial.get(name);
    if (fields === undefined) partial.set(name, (fields = {}));
    fields[field as HintField] = value;
  }

  const hints: MountHint[] = [];
  const bySource = new Map<string, string>();
  for (const [name, f] of [...partial].sort(([a], [b]) => a.localeCompare(b))) {
    const key = (field: HintField): string => `${MOUNT_HINT_PREFIX}${name}.${field}`;
    if (f.source === undefined || f.source.trim() === '') {
      throw invalid(key('source'), f.source ?? '', 'every mount hint needs a source');
    }
    if (f.type === undefined || !(HINT_TYPES as readonly string[]).includes(f.type)) {
      throw invalid(key('type'), f.type ?? '', `type must be one of ${HINT_TYPES.join(', ')}`);
    }
    if (f.share === undefined || !(HINT_SHARES as readonly string[]).includes(f.share)) {
      throw invalid(key('share'), f.share ?? '', `share must be one of ${HINT_SHARES.join(', ')}`);
    }
    const source = resolveSource(key('source'), f.source.trim(), options);
    let type = f.type as MountHintType;
    const share = f.share as MountHintShare;
    // A volume shared with the host and other pods must stay visible outside the
    // sandbox; a sandbox-internal tmpfs would hide it, so it is served as a bind mount.
    if (share === 'shared' && type === 'tmpfs') type = 'bind';
    const opts = parseOptions(key('options'), f.options ?? '');
    const other = bySource.get(source);
    if (other !== undefined) {
      throw invalid(key('source'), f.source, `mount hint "${other}" already describes "${source}"`);
    }
    bySource.set(source, name);
    hints.push({ name, source, type, share, options: opts, derived: false });
  }
  return hints;
}

function resolveSource(key: string, source: string, options: ParseMountHintsOptions): string {
  if (isAbsolute(source)) return trimSlash(normalize(source));
  // In Kubernetes the user names the volume: the kubelet chose the host path.
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(source)) {
    throw invalid(key, source, 'source must be an absolute path or a Kubernetes volume name');
  }
  if (options.podUid === undefined) {
    throw invalid(key, source, 'a volume name as source needs the pod UID (metadata.uid)');
  }
  return emptyDirHostPath(options.podUid, source, options.kubeletRootDir);
}

function parseOptions(key: string, value: string): string[] {
  if (value.trim() === '') return [];
  const out: string[] = [];
  for (const raw of value.split(',')) {
    const opt = raw.trim();
    const eq = opt.indexOf('=');
    const ok = eq === -1 ? FLAG_OPTIONS.has(opt) : VALUE_OPTIONS.has(opt.slice(0, eq)) && eq < opt.length - 1;
    if (!ok) throw invalid(key, value, `unknown mount option "${opt}"`);
    out.push(opt);
  }
  return out;
}

function invalid(key: string, value: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`parsing pod mount hints: annotation "${key}" = ${JSON.stringify(value)}: ${why}`);
}

function trimSlash(p: string): string {
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

/** The directory holding a pod's emptyDir volumes on the host. */
export function emptyDirRoot(podUid: string, kubeletRootDir = KUBELET_ROOT_DIR): string {
  // The UID becomes a path component: no separators, no dot-dot.
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(podUid)) {
    throw new InvalidArgumentError(`locating emptyDir volumes: pod uid ${JSON.stringify(podUid)} is not a UID`);
  }
  return `${trimSlash(normalize(kubeletRootDir))}/pods/${podUid}/volumes/${EMPTY_DIR_PLUGIN_DIR}`;
}

/** The host path the kubelet gives an emptyDir volume. */
export function emptyDirHostPath(podUid: string, volumeName: string, kubeletRootDir = KUBELET_ROOT_DIR): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(volumeName) || volumeName.includes('..')) {
    throw new InvalidArgumentError(`locating emptyDir volumes: volume name ${JSON.stringify(volumeName)} is not a volume name`);
  }
  return `${emptyDirRoot(podUid, kubeletRootDir)}/${volumeName}`;
}

/** Recognizes a kubelet emptyDir host path (`…/pods/<uid>/volumes/kubernetes.io~empty-dir/<name>`). */
export function parseEmptyDirSource(source: string): { podUid: string; volumeName: string } | undefined {
  const m = /\/pods\/([^/]+)\/volumes\/kubernetes\.io~empty-dir\/([^/]+)\/?$/.exec(normalize(source));
  if (m === null) return undefined;
  return { podUid: m[1], volumeName: m[2] };
}

export interface EmptyDirVolume {
  name: string;
  /** The kubelet's host path of the volume. */
  hostPath: string;
  /** `memory` when the kubelet mounted a tmpfs there (emptyDir.medium: Memory). */
  medium: 'memory' | 'disk';
}

/**
 * S14 without annotations: a pod-shared hint per emptyDir volume (memory → tmpfs,
 * disk → bind), except those an explicit hint already covers by name or source.
 */
export function deriveEmptyDirHints(volumes: readonly EmptyDirVolume[], explicit: readonly MountHint[]): MountHint[] {
  const names = new Set(explicit.map((h) => h.name));
  const sources = new Set(explicit.map((h) => h.source));
  const derived: MountHint[] = [];
  for (const v of [...volumes].sort((a, b) => a.name.localeCompare(b.name))) {
    const source = trimSlash(normalize(v.hostPath));
    if (names.has(v.name) || sources.has(source)) continue;
    derived.push({
      name: v.name,
      source,
      type: v.medium === 'memory' ? 'tmpfs' : 'bind',
      share: 'pod',
      options: ['rw'],
      derived: true,
    });
  }
  return [...explicit, ...derived];
}

/** The hint describing a container mount's host source, if any (S14). */
export function hintForMountSource(hints: readonly MountHint[], source: string): MountHint | undefined {
  if (!isAbsolute(source)) return undefined;
  const want = trimSlash(normalize(source));
  return hints.find((h) => h.source === want);
}

/**
 * The `dev.gvisor.spec.mount.*` annotations for runsc's sandbox and container OCI
 * specs (runsc reads the hints of the sandbox's spec and matches container mounts by
 * source; passing them on every container spec keeps each spec self-describing).
 */
export function mountHintAnnotations(hints: readonly MountHint[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of hints) {
    const base = `${MOUNT_HINT_PREFIX}${h.name}.`;
    out[`${base}source`] = h.source;
    out[`${base}type`] = h.type;
    out[`${base}share`] = h.share;
    if (h.options.length > 0) out[`${base}options`] = h.options.join(',');
  }
  return out;
}

/**
 * Reads the tmpfs mount points from a /proc/self/mountinfo text, to tell memory-medium
 * emptyDirs from disk ones.
 */
export function tmpfsMountPoints(mountinfo: string): Set<string> {
  const points = new Set<string>();
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep === -1) continue;
    const fields = line.slice(0, sep).split(' ');
    const fstype = line.slice(sep + 3).split(' ')[0];
    if (fstype === 'tmpfs' && fields[4] !== undefined) points.add(unescapeMountinfo(fields[4]));
  }
  return points;
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The OS reads discoverEmptyDirVolumes needs. */
export interface EmptyDirFs {
  /** Directory entries, or [] when the directory does not exist. */
  readdir(path: string): Promise<string[]>;
  readMountinfo(): Promise<string>;
}

export const NODE_EMPTY_DIR_FS: EmptyDirFs = {
  async readdir(path) {
    try {
      return await readdir(path);
    } catch (e: unknown) {
      if (errnoCode(e) === 'ENOENT') return [];
      throw e;
    }
  },
  readMountinfo: () => readFile('/proc/self/mountinfo', 'utf8'),
};

/** Lists a pod's emptyDir volumes as the kubelet prepared them before RunPodSandbox. */
export async function discoverEmptyDirVolumes(fs: EmptyDirFs, podUid: string, kubeletRootDir = KUBELET_ROOT_DIR): Promise<EmptyDirVolume[]> {
  const dir = emptyDirRoot(podUid, kubeletRootDir);
  const names = await fs.readdir(dir);
  if (names.length === 0) return [];
  const tmpfs = tmpfsMountPoints(await fs.readMountinfo());
  return names.sort().map((name) => {
    const hostPath = `${dir}/${name}`;
    return { name, hostPath, medium: tmpfs.has(hostPath) ? 'memory' : 'disk' };
  });
}
