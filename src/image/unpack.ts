// Applies one OCI layer tar to an empty directory, in the form overlayfs wants for a
// lower dir (each layer is its own lower dir, stacked at mount time):
//   `.wh.<name>`     → character device 0/0 `<name>` (an overlay whiteout)
//   `.wh..wh..opq`   → xattr trusted.overlay.opaque=y on the parent directory
//   `.wh..wh.*`      → (aufs bookkeeping) ignored
// Safety: every entry must stay inside the layer dir. Absolute names, `..`
// components, parents that are symlinks and hardlinks to outside fail the unpack
// with an error naming the entry; the caller unpacks into a temp dir and throws it
// away, so a failed layer leaves nothing behind. Layer xattrs (SCHILY.xattr.*) pass
// xattrVerdict: trusted.* (overlayfs control: redirect, metacopy, opaque) is refused,
// a malformed security.capability is refused, other security.* labels are dropped.
import type fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { Logger } from 'pino';
import { InvalidArgumentError, SandlotError, errnoCode, errorMessage } from '../errors.js';
// The two bindings only, not native/index.js: a layer worker loads this module, and
// every binding the barrel declares costs it memory.
import { S_IFBLK, S_IFCHR, S_IFIFO, mknod } from '../../native/mknod.js';
import { lsetxattr } from '../../native/xattr.js';
import { BatchedFileWriter } from './batched-file-writer.js';

const WHITEOUT_PREFIX = '.wh.';
const WHITEOUT_META_PREFIX = '.wh..wh.';
const WHITEOUT_OPAQUE = '.wh..wh..opq';
const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';
const PAX_XATTR_PREFIX = 'SCHILY.xattr.';
const IMPLICIT_DIR_MODE = 0o755;

/** The OS operations unpack needs that Node has no API for. */
export interface UnpackNative {
  mknod(path: string, type: number, perm: number, major: number, minor: number): void;
  lsetxattr(path: string, name: string, value: Buffer): void;
}

/** What unpack logs through (a pino Logger, or a layer worker's forwarder). */
export type UnpackLog = Pick<Logger, 'warn' | 'debug'>;

export const NATIVE_UNPACK: UnpackNative = { mknod, lsetxattr };

export interface UnpackOptions {
  /** Empty directory to unpack into (the layer's `fs`). */
  root: string;
  /** Message prefix, e.g. `unpacking layer sha256:…`. */
  what: string;
  log: UnpackLog;
  native?: UnpackNative;
  /** Write files with blocking calls on this thread (a layer worker's, which may block). */
  syncWrites?: boolean;
}

export interface UnpackStats {
  entries: number;
}

/** tar-stream's header, loosened: real layers carry types and fields its types omit. */
interface TarHeader {
  name: string;
  type?: string | null;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  linkname?: string | null;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string> | null;
}

const VFS_CAP_REVISION_MASK = 0xff000000;
const VFS_CAP_FLAGS_EFFECTIVE = 0x000001;
/** Linux VFS_CAP_REVISION_{1,2,3} and the xattr size each has. */
const VFS_CAP_SIZES = new Map<number, number>([
  [0x01000000, 12],
  [0x02000000, 20],
  [0x03000000, 24],
]);

export type XattrVerdict = 'set' | { drop: boolean; why: string };

/**
 * What unpack does with a layer xattr: user.* and POSIX ACLs are set; a
 * security.capability in valid vfs_cap_data form is set; other security.* labels
 * (selinux, ima, evm) are dropped, the host labels at run time; trusted.* is refused,
 * since trusted.overlay.* steers overlayfs (redirect, metacopy, opaque) and only the
 * whiteout conversion here may set those; any other namespace is refused.
 */
export function xattrVerdict(attr: string, value: Buffer): XattrVerdict {
  if (attr.startsWith('user.') && attr.length > 'user.'.length) return 'set';
  if (attr === 'system.posix_acl_access' || attr === 'system.posix_acl_default') return 'set';
  if (attr === 'security.capability') {
    if (value.length < 4) return { drop: false, why: `invalid file capability: ${value.length} bytes` };
    const magic = value.readUInt32LE(0);
    const revision = (magic & VFS_CAP_REVISION_MASK) >>> 0;
    const size = VFS_CAP_SIZES.get(revision);
    if (size === undefined) return { drop: false, why: `invalid file capability: unknown revision 0x${revision.toString(16)}` };
    if ((magic & ~VFS_CAP_REVISION_MASK & ~VFS_CAP_FLAGS_EFFECTIVE) !== 0) {
      return { drop: false, why: `invalid file capability: unknown flags in 0x${magic.toString(16)}` };
    }
    if (value.length !== size) return { drop: false, why: `invalid file capability: ${value.length} bytes, revision 0x${revision.toString(16)} has ${size}` };
    return 'set';
  }
  if (attr.startsWith('security.')) return { drop: true, why: 'security labels other than file capabilities are not taken from images' };
  if (attr.startsWith('trusted.')) return { drop: false, why: 'trusted.* attributes (overlayfs control among them) are not allowed in image layers' };
  return { drop: false, why: 'only user.*, POSIX ACL and security.capability xattrs are allowed in image layers' };
}

/**
 * Splits an entry name into safe components. Throws on absolute names and `..`;
 * `./a//b/` gives ['a', 'b']; the root itself gives [].
 */
export function entryComponents(name: string, what: string, field = 'entry'): string[] {
  if (name.startsWith('/')) throw new InvalidArgumentError(`${what}: ${field} ${JSON.stringify(name)}: absolute path escapes the layer`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new InvalidArgumentError(`${what}: ${field} ${JSON.stringify(name)}: ".." escapes the layer`);
  if (parts.some((p) => p.includes('\0'))) throw new InvalidArgumentError(`${what}: ${field} ${JSON.stringify(name)}: NUL in name`);
  return parts;
}

async function lstatOrUndefined(p: string): Promise<fs.Stats | undefined> {
  try {
    return await fsp.lstat(p);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
}

export async function unpackLayer(tarStream: Readable, opts: UnpackOptions): Promise<UnpackStats> {
  return new LayerUnpacker(opts).run(tarStream);
}

/** One unpack: the layer dir, the directory mtimes to set last, the entry count. */
class LayerUnpacker {
  private readonly native: UnpackNative;
  private readonly root: string;
  private readonly dirTimes: { p: string; mtime: Date }[] = [];
  private entries = 0;
  /** Rejects when feeding the tar fails; never resolves (see run). */
  private feedFailed: Promise<never> = new Promise<never>(() => undefined);

  constructor(private readonly opts: UnpackOptions) {
    this.native = opts.native ?? NATIVE_UNPACK;
    this.root = opts.root;
  }

  async run(tarStream: Readable): Promise<UnpackStats> {
    const extract = tar.extract();
    const feeding = pipeline(tarStream, extract).catch((e: unknown) => {
      extract.destroy(e as Error);
      throw e;
    });
    feeding.catch(() => undefined);
    // A tar cut short inside an entry ("Unexpected end of data") may fail the entry's
    // body before its write starts, and node's pipeline never sees a streamx stream
    // that is already closed: file writes race this, which only ever rejects.
    this.feedFailed = feeding.then(() => new Promise<never>(() => undefined));
    this.feedFailed.catch(() => undefined);

    try {
      for await (const entry of extract) {
        const h = entry.header as unknown as TarHeader;
        this.entries++;
        try {
          await this.applyEntry(h, entry as unknown as Readable);
        } finally {
          entry.resume();
        }
      }
      await feeding;
    } catch (e) {
      tarStream.destroy();
      throw this.layerError(e);
    }

    // Directory mtimes last: creating their children changed them.
    for (const d of this.dirTimes.reverse()) await fsp.lutimes(d.p, d.mtime, d.mtime);
    return { entries: this.entries };
  }

  /**
   * tar-stream's and zlib's own errors ("Invalid tar header", "unexpected end of
   * file") mean the layer is not what it claims: the image's fault, not ours.
   */
  private layerError(e: unknown): unknown {
    if (!(e instanceof SandlotError) && (e as { syscall?: unknown }).syscall === undefined) {
      const zlib = errnoCode(e)?.startsWith('Z_') === true;
      return new InvalidArgumentError(`${this.opts.what}: ${zlib ? 'not valid compressed data' : 'not a valid tar stream'}: ${errorMessage(e)}`, { cause: e });
    }
    return e;
  }

  private fail(name: string, why: string): InvalidArgumentError {
    return new InvalidArgumentError(`${this.opts.what}: entry ${JSON.stringify(name)}: ${why}`);
  }

  private async applyEntry(h: TarHeader, body: Readable): Promise<void> {
    const name = h.name;
    const parts = entryComponents(name, this.opts.what);
    if (h.type === 'pax-global-header') return;
    if (parts.length === 0) {
      if (h.type !== 'directory') throw this.fail(name, 'the layer root must be a directory');
      await this.applyMetadata(this.root, h, true);
      return;
    }
    const base = parts[parts.length - 1];
    const parentParts = parts.slice(0, -1);
    if (base.startsWith(WHITEOUT_PREFIX)) {
      await this.applyWhiteout(base, parentParts, name);
      return;
    }
    const dir = await this.ensureParents(parentParts, name);
    const target = path.join(dir, base);
    if (h.type === 'link') {
      await this.linkHard(h, target); // the inode already carries the source's metadata
      return;
    }
    await this.createNode(h, target, body);
    await this.applyMetadata(target, h, h.type === 'directory');
  }

  /** `.wh..wh..opq` → opaque parent; `.wh..wh.*` → ignored; `.wh.<name>` → a 0/0 char device. */
  private async applyWhiteout(base: string, parentParts: string[], name: string): Promise<void> {
    if (base === WHITEOUT_OPAQUE) {
      const dir = await this.ensureParents(parentParts, name);
      this.native.lsetxattr(dir, OVERLAY_OPAQUE_XATTR, Buffer.from('y'));
      return;
    }
    if (base.startsWith(WHITEOUT_META_PREFIX)) return;
    const hidden = base.slice(WHITEOUT_PREFIX.length);
    if (hidden === '' || hidden === '.' || hidden === '..') throw this.fail(name, 'whiteout of an invalid name');
    const dir = await this.ensureParents(parentParts, name);
    const target = path.join(dir, hidden);
    await this.clearTarget(target, false);
    this.native.mknod(target, S_IFCHR, 0, 0, 0);
  }

  /** Makes the file, directory, symlink or device an entry describes at `target`. */
  private async createNode(h: TarHeader, target: string, body: Readable): Promise<void> {
    switch (h.type) {
      case 'file':
      case 'contiguous-file':
      case null:
      case undefined: {
        await this.clearTarget(target, false);
        const out = new BatchedFileWriter(target, 'wx', 0o600, this.opts.syncWrites === true);
        try {
          await Promise.race([pipeline(body, out), this.feedFailed]);
        } catch (e) {
          out.destroy();
          throw e;
        }
        return;
      }
      case 'directory': {
        const existed = await this.clearTarget(target, true);
        if (!existed) await fsp.mkdir(target, { mode: 0o700 });
        return;
      }
      case 'symlink': {
        // The target string is stored as is; it is resolved inside the container's
        // root at run time, never followed here.
        if (!h.linkname) throw this.fail(h.name, 'symlink without a target');
        await this.clearTarget(target, false);
        await fsp.symlink(h.linkname, target);
        return;
      }
      case 'character-device':
      case 'block-device':
      case 'fifo': {
        await this.clearTarget(target, false);
        const type = h.type === 'fifo' ? S_IFIFO : h.type === 'block-device' ? S_IFBLK : S_IFCHR;
        this.native.mknod(target, type, 0o600, h.devmajor ?? 0, h.devminor ?? 0);
        return;
      }
      default:
        throw this.fail(h.name, `unsupported tar entry type ${JSON.stringify(h.type)}`);
    }
  }

  /** A hardlink to an earlier non-directory entry of this layer, never to outside. */
  private async linkHard(h: TarHeader, target: string): Promise<void> {
    const name = h.name;
    const linkParts = entryComponents(h.linkname ?? '', this.opts.what, `entry ${JSON.stringify(name)}: hardlink target`);
    if (linkParts.length === 0) throw this.fail(name, 'hardlink to the layer root');
    const srcDir = await this.ensureExistingParents(linkParts.slice(0, -1), name);
    const src = path.join(srcDir, linkParts[linkParts.length - 1]);
    const st = await lstatOrUndefined(src);
    if (st === undefined) throw this.fail(name, `hardlink target ${JSON.stringify(h.linkname)} is not in this layer`);
    if (st.isDirectory()) throw this.fail(name, `hardlink target ${JSON.stringify(h.linkname)} is a directory`);
    if (src === target) return;
    await this.clearTarget(target, false);
    await fsp.link(src, target);
  }

  // Creates missing parents (0755, as containerd does) and refuses to pass through
  // anything that is not a real directory: a symlinked parent could point anywhere.
  private async ensureParents(parts: string[], name: string): Promise<string> {
    let cur = this.root;
    for (const part of parts) {
      cur = path.join(cur, part);
      const st = await lstatOrUndefined(cur);
      if (st === undefined) {
        await fsp.mkdir(cur, { mode: IMPLICIT_DIR_MODE });
      } else if (st.isSymbolicLink()) {
        throw this.fail(name, `parent ${JSON.stringify(path.relative(this.root, cur))} is a symlink; refusing to follow it out of the layer`);
      } else if (!st.isDirectory()) {
        throw this.fail(name, `parent ${JSON.stringify(path.relative(this.root, cur))} is not a directory`);
      }
    }
    return cur;
  }

  private async ensureExistingParents(parts: string[], name: string): Promise<string> {
    let cur = this.root;
    for (const part of parts) {
      cur = path.join(cur, part);
      const st = await lstatOrUndefined(cur);
      if (st === undefined) throw this.fail(name, `hardlink target parent ${JSON.stringify(path.relative(this.root, cur))} is not in this layer`);
      if (!st.isDirectory()) {
        throw this.fail(name, `hardlink target parent ${JSON.stringify(path.relative(this.root, cur))} is a symlink or not a directory`);
      }
    }
    return cur;
  }

  // Removes what is at `target` unless both it and the new entry are directories.
  private async clearTarget(target: string, newIsDir: boolean): Promise<boolean> {
    const st = await lstatOrUndefined(target);
    if (st === undefined) return false;
    if (st.isDirectory() && newIsDir) return true;
    await fsp.rm(target, { recursive: true, force: true });
    return false;
  }

  private async applyMetadata(p: string, h: TarHeader, isDir: boolean): Promise<void> {
    await fsp.lchown(p, h.uid ?? 0, h.gid ?? 0);
    // chmod after chown: chown clears set-id bits. Symlink modes mean nothing on Linux.
    if (h.type !== 'symlink') await fsp.chmod(p, (h.mode ?? (isDir ? 0o755 : 0o644)) & 0o7777);
    for (const [key, value] of Object.entries(h.pax ?? {})) {
      if (key.startsWith(PAX_XATTR_PREFIX)) this.applyXattr(p, h, key.slice(PAX_XATTR_PREFIX.length), Buffer.from(value, 'utf8'));
    }
    const mtime = h.mtime ?? new Date(0);
    if (isDir) this.dirTimes.push({ p, mtime });
    else await fsp.lutimes(p, mtime, mtime);
  }

  /** One SCHILY.xattr.* of an entry, as xattrVerdict says. */
  private applyXattr(p: string, h: TarHeader, attr: string, data: Buffer): void {
    const verdict = xattrVerdict(attr, data);
    if (verdict !== 'set') {
      if (verdict.drop) {
        this.opts.log.warn({ layer: this.opts.what, entry: h.name, xattr: attr }, `dropping layer xattr: ${verdict.why}`);
        return;
      }
      throw this.fail(h.name, `xattr ${JSON.stringify(attr)}: ${verdict.why}`);
    }
    try {
      this.native.lsetxattr(p, attr, data);
    } catch (e) {
      // "where the filesystem allows": user.* is refused on symlinks and devices,
      // and some filesystems have no xattrs at all.
      const code = errnoCode(e);
      if (code === 'EINVAL' || code === 'ERANGE' || code === 'E2BIG') {
        throw this.fail(h.name, `xattr ${JSON.stringify(attr)}: the kernel refuses its value (${code})`);
      }
      if (code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EPERM') throw e;
      this.opts.log.debug({ path: p, xattr: attr, err: e }, 'skipping layer xattr the filesystem refuses');
    }
  }
}
