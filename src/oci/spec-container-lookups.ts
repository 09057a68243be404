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
