// Detached mount trees the daemon makes for what runc 1.1.5 cannot (no `rro`, no
// idmapped mounts): a recursive clone of a host path (open_tree OPEN_TREE_CLONE |
// AT_RECURSIVE), its attributes changed for every mount of the tree at once
// (mount_setattr AT_RECURSIVE), attached at a ready path (move_mount) that the runtime
// then binds like any host path. Unmounting goes by /proc/self/mountinfo and never
// deletes through a mount: a tree left mounted makes rmdir fail instead (EBUSY).
import fsp from 'node:fs/promises';
import path from 'node:path';
import {
  AT_RECURSIVE,
  MNT_DETACH,
  MOUNT_ATTR_IDMAP,
  MOUNT_ATTR_RDONLY,
  MOUNT_PROPAGATION_PRIVATE,
  OPEN_TREE_CLOEXEC,
  OPEN_TREE_CLONE,
  moveMountTo,
  mountSetattr,
  openTree,
  umount2,
  withTreeFd,
} from '../../native/index.js';
import { errnoCode, errorMessage } from '../errors.js';

export interface CloneOptions {
  /** Every mount of the tree read-only (MOUNT_ATTR_RDONLY with AT_RECURSIVE). */
  readOnly?: boolean;
  /** Every mount of the tree idmapped through this user namespace (an fd of /proc/PID/ns/user). */
  idmapUsernsFd?: number;
}

/** A private recursive clone of `source` (with its submounts) attached at `target`, an existing directory or file. */
export function cloneTree(source: string, target: string, o: CloneOptions): void {
  withTreeFd(openTree(source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE), (fd) => {
    const set = (o.readOnly ? MOUNT_ATTR_RDONLY : 0) | (o.idmapUsernsFd !== undefined ? MOUNT_ATTR_IDMAP : 0);
    mountSetattr(fd, AT_RECURSIVE, { set, propagation: MOUNT_PROPAGATION_PRIVATE, ...(o.idmapUsernsFd !== undefined ? { usernsFd: o.idmapUsernsFd } : {}) });
    moveMountTo(fd, target);
  });
}

function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Mount points at or below `dir`, from /proc/self/mountinfo. */
export async function mountPointsUnder(dir: string): Promise<string[]> {
  const info = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  const out: string[] = [];
  for (const line of info.split('\n')) {
    const p = unescapeMountPath(line.split(' ')[4] ?? '');
    if (p === dir || p.startsWith(`${dir}/`)) out.push(p);
  }
  return out;
}

/** Detaches every mount at or below `dir` (each top one with its whole tree); idempotent. */
export async function unmountUnder(dir: string): Promise<void> {
  const points = await mountPointsUnder(dir);
  // Parents first: MNT_DETACH takes the children with them; a child seen later is gone (EINVAL).
  for (const p of points.sort((a, b) => a.length - b.length)) {
    try {
      umount2(p, MNT_DETACH);
    } catch (e) {
      if (errnoCode(e) !== 'EINVAL' && errnoCode(e) !== 'ENOENT') throw e;
    }
  }
}

/** Removes `dir` and the empty mount points in it, after unmounting; never recursive through a mount. */
export async function removeMountDir(dir: string): Promise<void> {
  await unmountUnder(dir);
  const names = await fsp.readdir(dir).catch((e: unknown) => {
    if (errnoCode(e) === 'ENOENT') return [] as string[];
    throw e;
  });
  for (const n of names) {
    const p = path.join(dir, n);
    const st = await fsp.lstat(p);
    // A mount point is an empty dir or an empty file once unmounted.
    await (st.isDirectory() ? fsp.rmdir(p) : fsp.unlink(p));
  }
  await fsp.rmdir(dir).catch((e: unknown) => {
    if (errnoCode(e) !== 'ENOENT') throw e;
  });
}

/** Whether this kernel and libc have open_tree and mount_setattr (a clone of "/" changed to nothing, then dropped). */
export function probeMountApi(): { ok: true } | { ok: false; reason: string } {
  try {
    withTreeFd(openTree('/', OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC), (fd) => mountSetattr(fd, 0, { propagation: MOUNT_PROPAGATION_PRIVATE }));
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: errorMessage(e) };
  }
}
