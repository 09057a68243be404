// mount(2) and umount2(2): the pod /dev/shm tmpfs is mounted once per pod by the daemon
// itself (no runtime owns it), so it needs the raw calls.
import { callAsync, check, libc } from './libc.js';

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_BIND = 0x1000;
export const MS_REC = 0x4000;
export const MS_PRIVATE = 0x40000;

// MNT_DETACH for umount2 is exported by netns.ts.

const mountFn = libc.func('int mount(const char *source, const char *target, const char *filesystemtype, unsigned long mountflags, const char *data)');
const umount2Fn = libc.func('int umount2(const char *target, int flags)');

export function mount(source: string, target: string, fstype: string | null, flags: number, data: string | null): void {
  check('mount', mountFn(source, target, fstype, flags, data) as number, `"${target}"`);
}

/**
 * mount on a koffi pool thread: a tmpfs or overlay mount takes milliseconds in the kernel
 * that the event loop need not wait (issue 13: the sync call was ~3 % of a pod path
 * profile). errno stays on the pool thread, so a failed call is made again here,
 * synchronously, to throw the error it names (or to succeed, if what failed changed).
 */
export async function mountAsync(source: string, target: string, fstype: string | null, flags: number, data: string | null): Promise<void> {
  if ((await callAsync<number>(mountFn, source, target, fstype, flags, data)) === 0) return;
  mount(source, target, fstype, flags, data);
}

export function umount2(target: string, flags: number): void {
  check('umount2', umount2Fn(target, flags) as number, `"${target}"`);
}

/**
 * umount2 on a koffi pool thread: unmounting an overlay syncs its filesystem, milliseconds
 * the event loop need not wait. errno stays on the pool thread, so a failed call is made
 * again here, synchronously, to throw the error it names (EBUSY and EINVAL come back the
 * same; a mount that went away in between answers EINVAL, which callers ignore).
 */
export async function umount2Async(target: string, flags: number): Promise<void> {
  if ((await callAsync<number>(umount2Fn, target, flags)) === 0) return;
  umount2(target, flags);
}
