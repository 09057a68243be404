// The real OS lookups of a container spec (SpecLookups): the image's account files read
// inside its rootfs without following symlinks out of it, host paths, device nodes,
// seccomp profile files and, for privileged containers, the host's devices.
import fs from 'node:fs/promises';
import path from 'node:path';
import { errnoCode, InvalidArgumentError } from '../errors.js';
import type { SpecLookups } from './container-config.js';
import type { LinuxDevice } from './spec-common.js';

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
    out.push({
      path: p,
      type: st.isCharacterDevice() ? 'c' : 'b',
      major,
      minor,
      fileMode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
    });
  }
}

/** Unescapes mountinfo's octal escapes (`\040` for a space). */
function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/**
 * The mount holding `hostPath` (the last-mounted of the longest mount point that
 * contains it) and its propagation, from a /proc/self/mountinfo text.
 */
export function mountPropagationOf(mountinfo: string, hostPath: string): { mountPoint: string; propagation: 'shared' | 'slave' | 'private' } {
  let best: { mountPoint: string; propagation: 'shared' | 'slave' | 'private' } = { mountPoint: '/', propagation: 'private' };
  let bestLen = -1;
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep === -1) continue;
    const fields = line.slice(0, sep).split(' ');
    const mp = fields[4];
    if (mp === undefined) continue;
    const mountPoint = unescapeMountinfo(mp);
    const inside = mountPoint === '/' || hostPath === mountPoint || hostPath.startsWith(`${mountPoint}/`);
    // Later lines are mounted later: on a tie the later one covers the earlier.
    if (!inside || mountPoint.length < bestLen) continue;
    const optional = fields.slice(6);
    const propagation = optional.some((f) => f.startsWith('shared:')) ? 'shared' : optional.some((f) => f.startsWith('master:')) ? 'slave' : 'private';
    best = { mountPoint, propagation };
    bestLen = mountPoint.length;
  }
  return best;
}

/** The real lookups. */
export const NODE_SPEC_LOOKUPS: SpecLookups = {
  async accountFiles(rootfs) {
    const [passwd, group] = await Promise.all([resolveInRoot(rootfs, 'etc/passwd').then(readOptional), resolveInRoot(rootfs, 'etc/group').then(readOptional)]);
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
  async hostMountPropagation(hostPath) {
    // The mount of the path's real location: a symlinked source is bound from there.
    const real = await fs.realpath(hostPath).catch(() => hostPath);
    return mountPropagationOf(await fs.readFile('/proc/self/mountinfo', 'utf8'), real);
  },
  async hostDevices() {
    const out: LinuxDevice[] = [];
    await listHostDevices('/dev', out);
    return out;
  },
};
