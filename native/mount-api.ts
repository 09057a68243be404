// The new mount API (Linux 5.12+): open_tree(2), mount_setattr(2) and move_mount(2).
// runc 1.1.5 cannot make recursive read-only or idmapped mounts, so the daemon makes
// them itself: clone a tree into a detached mount fd, change its attributes (for the
// whole tree with AT_RECURSIVE), and attach it at a path the runtime binds from.
// glibc 2.36 has wrappers for all three.
import koffi from 'koffi';
import fs from 'node:fs';
import { check, libc } from './libc.js';

export const AT_FDCWD = -100;
export const AT_EMPTY_PATH = 0x1000;
export const AT_RECURSIVE = 0x8000;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const OPEN_TREE_CLONE = 1;
export const OPEN_TREE_CLOEXEC = 0o2000000;
export const MOVE_MOUNT_F_EMPTY_PATH = 0x4;
export const MOUNT_ATTR_RDONLY = 0x1;
export const MOUNT_ATTR_NOSUID = 0x2;
export const MOUNT_ATTR_NODEV = 0x4;
export const MOUNT_ATTR_NOEXEC = 0x8;
export const MOUNT_ATTR_IDMAP = 0x100000;
/** mount_attr.propagation value (the MS_PRIVATE mount flag). */
export const MOUNT_PROPAGATION_PRIVATE = 0x40000;

const MountAttr = koffi.struct('sandlot_mount_attr', {
  attr_set: 'uint64_t',
  attr_clr: 'uint64_t',
  propagation: 'uint64_t',
  userns_fd: 'uint64_t',
});

const openTreeFn = libc.func('int open_tree(int dfd, const char *filename, unsigned int flags)');
const mountSetattrFn = libc.func('int mount_setattr(int dfd, const char *path, unsigned int flags, sandlot_mount_attr *attr, size_t size)');
const moveMountFn = libc.func('int move_mount(int from_dfd, const char *from_path, int to_dfd, const char *to_path, unsigned int flags)');

/** What mount_setattr changes: attributes to set and clear, propagation, the user namespace of MOUNT_ATTR_IDMAP. */
export interface MountAttributes {
  set?: number;
  clear?: number;
  propagation?: number;
  /** An fd of a user namespace (/proc/PID/ns/user), with MOUNT_ATTR_IDMAP in `set`. */
  usernsFd?: number;
}

/** open_tree(AT_FDCWD, path, flags): a detached clone of the mount at `path` with OPEN_TREE_CLONE; the caller closes the fd. */
export function openTree(path: string, flags: number): number {
  return check('open_tree', openTreeFn(AT_FDCWD, path, flags) as number, `"${path}"`);
}

/** mount_setattr on the detached tree `fd` (AT_EMPTY_PATH is added); AT_RECURSIVE in `flags` reaches its submounts. */
export function mountSetattr(fd: number, flags: number, attr: MountAttributes): void {
  const a = { attr_set: attr.set ?? 0, attr_clr: attr.clear ?? 0, propagation: attr.propagation ?? 0, userns_fd: attr.usernsFd ?? 0 };
  check('mount_setattr', mountSetattrFn(fd, '', flags | AT_EMPTY_PATH, a, koffi.sizeof(MountAttr)) as number);
}

/** move_mount of the detached tree `fd` onto the existing path `target`. */
export function moveMountTo(fd: number, target: string): void {
  check('move_mount', moveMountFn(fd, '', AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) as number, `onto "${target}"`);
}

/** The fd closes even when a step throws. */
export function withTreeFd<T>(fd: number, fn: (fd: number) => T): T {
  try {
    return fn(fd);
  } finally {
    fs.closeSync(fd);
  }
}
