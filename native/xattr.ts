// Extended attributes on paths, never following a final symlink (l*xattr): layer
// xattrs (SCHILY.xattr.* in tar) and overlayfs' trusted.overlay.opaque markers.
import { check, libc } from './libc.js';

const lsetxattrFn = libc.func('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)');
const lgetxattrFn = libc.func('long lgetxattr(const char *path, const char *name, _Out_ uint8_t *value, size_t size)');

export function lsetxattr(path: string, name: string, value: Buffer): void {
  check('lsetxattr', lsetxattrFn(path, name, value, value.length, 0) as number, `${JSON.stringify(path)} ${name}`);
}

/** The attribute's value, or undefined when it is not set (ENODATA). */
export function lgetxattr(path: string, name: string): Buffer | undefined {
  const buf = Buffer.alloc(65536);
  const n = lgetxattrFn(path, name, buf, buf.length) as number;
  if (n === -1) {
    try {
      check('lgetxattr', n, `${JSON.stringify(path)} ${name}`);
    } catch (e) {
      if ((e as { code?: string }).code === 'ENODATA') return undefined;
      throw e;
    }
  }
  return buf.subarray(0, n);
}
