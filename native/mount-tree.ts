// Mount trees as the daemon makes and unmakes them, one recipe each, for src/oci
// (recursive read-only and idmapped volumes), src/image (image volumes, idmapped layers)
// and src/sandbox (pod mounts):
// - a private recursive clone of a host path, its attributes changed for every mount of
//   the tree at once (mount_setattr AT_RECURSIVE), attached at a ready path;
// - the mount points at or below a dir, read from /proc/self/mountinfo, detached parents
//   first (MNT_DETACH takes the children along; one seen later is gone: EINVAL), and
//   such a dir removed without ever deleting through a mount;
// - the start-time probe of the mount API.
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  AT_RECURSIVE,
  MOUNT_ATTR_IDMAP,
  MOUNT_ATTR_RDONLY,
  MOUNT_PROPAGATION_PRIVATE,
  OPEN_TREE_CLOEXEC,
  OPEN_TREE_CLONE,
  moveMountTo,
  mountSetattr,
  openTree,
  withTreeFd,
} from './mount-api.js';
import { umount2 } from './mount.js';
import { MNT_DETACH } from './netns.js';

export interface TreeAttributes {
  /** Every mount of the tree read-only (MOUNT_ATTR_RDONLY). */
  readOnly?: boolean;
  /** Every mount of the tree idmapped through this user namespace (an fd of /proc/PID/ns/user). */
  idmapUsernsFd?: number;
}

/** A private recursive clone of `source` (with its submounts) attached at `target`, an existing directory or file. */
export function cloneMountTree(source: string, target: string, o: TreeAttributes): void {
  withTreeFd(openTree(source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE), (fd) => {
    const set = (o.readOnly === true ? MOUNT_ATTR_RDONLY : 0) | (o.idmapUsernsFd !== undefined ? MOUNT_ATTR_IDMAP : 0);
    mountSetattr(fd, AT_RECURSIVE, { set, propagation: MOUNT_PROPAGATION_PRIVATE, ...(o.idmapUsernsFd !== undefined ? { usernsFd: o.idmapUsernsFd } : {}) });
    moveMountTo(fd, target);
  });
}

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Mount points below `dir` (and `dir` itself with includeDir), from /proc/self/mountinfo, shortest first. */
export async function mountPointsUnder(dir: string, options: { includeDir?: boolean } = {}): Promise<string[]> {
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of info.split('\n')) {
    const p = unescapeMountPath(line.split(' ')[4] ?? '');
    if (p.startsWith(`${dir}/`) || (options.includeDir === true && p === dir)) out.push(p);
  }
  return out.sort((a, b) => a.length - b.length);
}

/** Detaches every mount below `dir` (and `dir` itself with includeDir), parents first; idempotent. */
export async function detachMountsUnder(dir: string, options: { includeDir?: boolean } = {}): Promise<void> {
  for (const p of await mountPointsUnder(dir, options)) {
    try {
      umount2(p, MNT_DETACH);
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (code !== 'EINVAL' && code !== 'ENOENT') throw e;
    }
  }
}

const isCode = (e: unknown, ...codes: string[]): boolean => codes.includes(String((e as { code?: unknown }).code));

/**
 * Removes `dir` and the mount points in it after detaching every mount at or below it;
 * never a recursive delete: a tree still mounted makes rmdir fail (EBUSY) instead of a
 * delete walking into a volume. Idempotent.
 */
export async function removeMountDir(dir: string): Promise<void> {
  // A dir that is not there has no mount at or below it: mountinfo (hundreds of KiB on
  // a busy node, a page per read) is read only for one that is (issue 13: three reads
  // per RemoveContainer, for prepared mounts, image volumes and idmapped layers it had not).
  const present = await fs.lstat(dir).then(
    () => true,
    (e: unknown) => {
      if (isCode(e, 'ENOENT')) return false;
      throw e;
    },
  );
  if (!present) return;
  await detachMountsUnder(dir, { includeDir: true });
  const names = await fs.readdir(dir).catch((e: unknown) => {
    if (isCode(e, 'ENOENT')) return [] as string[];
    throw e;
  });
  for (const n of names) {
    const p = path.join(dir, n);
    // A mount point is an empty dir or an empty file once unmounted.
    await ((await fs.lstat(p)).isDirectory() ? fs.rmdir(p) : fs.unlink(p));
  }
  await fs.rmdir(dir).catch((e: unknown) => {
    if (!isCode(e, 'ENOENT')) throw e;
  });
}

/** Whether this kernel and libc have open_tree and mount_setattr (a clone of "/" changed to nothing, then dropped). */
export function probeMountApi(): { ok: true } | { ok: false; reason: string } {
  try {
    withTreeFd(openTree('/', OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC), (fd) => mountSetattr(fd, 0, { propagation: MOUNT_PROPAGATION_PRIVATE }));
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
}
