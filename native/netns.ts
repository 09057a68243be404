// Network namespaces without forking: unshare(CLONE_NEWNET) and setns(2) change only the
// calling thread, so each sequence below runs synchronously on the main thread within
// one JS turn and returns home before any other JS (or socket creation) can run.
// /proc/1/ns is not readable on these machines: home is /proc/thread-self/ns/net.
import fs from 'node:fs';
import { check, libc, SyscallError, errno } from './libc.js';

const CLONE_NEWNET = 0x40000000;
const MS_BIND = 0x1000;
const MS_REC = 0x4000;
const MS_SHARED = 1 << 20;
/** umount2 flag: lazy detach, the mount goes away once unused. */
export const MNT_DETACH = 2;
const EINVAL = 22;
const ENOENT = 2;

const unshareFn = libc.func('int unshare(int flags)');
const setnsFn = libc.func('int setns(int fd, int nstype)');
const mountFn = libc.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data)');
const umount2Fn = libc.func('int umount2(const char *target, int flags)');

const THREAD_NETNS = '/proc/thread-self/ns/net';

/** Returns the main thread to its own netns; if even that fails, the daemon cannot go on. */
function returnHome(homeFd: number): void {
  if ((setnsFn(homeFd, CLONE_NEWNET) as number) === -1) {
    const err = new SyscallError('setns', errno(), 'returning to the home network namespace');
    // Every socket the process made from here on would land in a pod's netns: stop now,
    // recovery at the next start cleans up.
    process.stderr.write(`sandlot: fatal: ${err.message}\n`);
    process.exit(70);
  }
}

/**
 * Creates a new network namespace and pins it by bind-mounting it onto `target`
 * (an existing empty file), like `ip netns add`. The calling thread never stays in it.
 */
export function createPinnedNetns(target: string): void {
  const home = fs.openSync(THREAD_NETNS, 'r');
  try {
    check('unshare', unshareFn(CLONE_NEWNET) as number, 'CLONE_NEWNET');
    let rc: number;
    let err = 0;
    try {
      rc = mountFn(THREAD_NETNS, target, null, MS_BIND, null) as number;
      if (rc === -1) err = errno();
    } finally {
      returnHome(home);
    }
    if (rc === -1) throw new SyscallError('mount', err, `--bind ${THREAD_NETNS} "${target}"`);
  } finally {
    fs.closeSync(home);
  }
}

/** Runs `fn` synchronously with the calling thread inside the netns pinned at `nsPath`. */
export function withNetnsSync<T>(nsPath: string, fn: () => T): T {
  const target = fs.openSync(nsPath, 'r');
  try {
    const home = fs.openSync(THREAD_NETNS, 'r');
    try {
      check('setns', setnsFn(target, CLONE_NEWNET) as number, `"${nsPath}" CLONE_NEWNET`);
      try {
        return fn();
      } finally {
        returnHome(home);
      }
    } finally {
      fs.closeSync(home);
    }
  } finally {
    fs.closeSync(target);
  }
}

/** Bind-mounts `dir` onto itself when it is no mount point, then makes it a shared peer group
 *  (what `ip netns add` does for /run/netns), so unmounting a pin there also reaches copies
 *  of it in mount namespaces cloned meanwhile (a runtime's container setup). */
export function makeSharedMountPoint(dir: string): void {
  if ((mountFn('none', dir, null, MS_SHARED | MS_REC, null) as number) === 0) return;
  if (errno() !== EINVAL) throw new SyscallError('mount', errno(), `--make-rshared "${dir}"`);
  check('mount', mountFn(dir, dir, null, MS_BIND | MS_REC, null) as number, `--rbind "${dir}" "${dir}"`);
  check('mount', mountFn('none', dir, null, MS_SHARED | MS_REC, null) as number, `--make-rshared "${dir}"`);
}

/**
 * Unmounts every mount stacked on `target` (lazily). Returns how many were removed;
 * a target that is no mount point (EINVAL) or does not exist (ENOENT) ends the loop.
 */
export function unmountAll(target: string, flags = MNT_DETACH): number {
  for (let n = 0; ; n++) {
    if ((umount2Fn(target, flags) as number) === 0) continue;
    const e = errno();
    if (e === EINVAL || e === ENOENT) return n;
    throw new SyscallError('umount2', e, `"${target}"`);
  }
}
