// mknod(2): device nodes and FIFOs from image layers, and the 0/0 character devices
// overlayfs uses as whiteouts.
import { check, libc } from './libc.js';

export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

const mknodFn = libc.func('int mknod(const char *pathname, uint32_t mode, uint64_t dev)');

/** glibc's makedev(3) encoding of a 64-bit dev_t. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

/** Creates a node; `type` is S_IFCHR, S_IFBLK or S_IFIFO, `perm` the permission bits. */
export function mknod(path: string, type: number, perm: number, major = 0, minor = 0): void {
  check('mknod', mknodFn(path, type | (perm & 0o7777), makedev(major, minor)) as number, JSON.stringify(path));
}
