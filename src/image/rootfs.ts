// Container root filesystems: an overlayfs whose lower dirs are the image's layer
// snapshots (top layer first) with a private upper/work dir per container:
//   <containers_dir>/<id>/rootfs          the mount point handed to the OCI runtime
//   <containers_dir>/<id>/overlay/upper   the container's writes
//   <containers_dir>/<id>/overlay/work    overlayfs' scratch dir
// The kernel takes at most one page of mount options; when absolute lower dirs do not
// fit, mount(8) is run from the snapshot dir with relative ones (as containerd does).
import { execFile } from 'node:child_process';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { InvalidArgumentError, errnoCode, errorMessage, wrapError } from '../errors.js';
import { MNT_DETACH, mountAsync, umount2, umount2Async } from '../../native/index.js';
import { removeTree } from '../util/remove-tree.js';
import { digestHex } from './digest.js';
import { mountIdmappedLayers, unmountIdmappedLayers, type RootfsIdmap } from './rootfs-idmap.js';

const execFileAsync = promisify(execFile);
const MOUNT_DATA_MAX_BYTES = 4000;
const CONTAINER_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export interface RootfsMounter {
  /** Mounts overlayfs with `options` at `target`; relative lower dirs resolve against `cwd`. */
  mountOverlay(target: string, options: string, cwd: string | undefined): Promise<void>;
  unmount(target: string): Promise<void>;
  /** Whether a filesystem of its own (the overlay) is mounted at `target`. */
  isMounted(target: string): Promise<boolean>;
}

export const KERNEL_MOUNTER: RootfsMounter = {
  async mountOverlay(target, options, cwd) {
    if (cwd === undefined) {
      await mountAsync('overlay', target, 'overlay', 0, options);
      return;
    }
    await execFileAsync('mount', ['-t', 'overlay', 'overlay', '-o', options, target], { cwd });
  },
  async unmount(target) {
    try {
      await umount2Async(target, 0);
    } catch (e) {
      if (errnoCode(e) === 'EBUSY') umount2(target, MNT_DETACH);
      else if (errnoCode(e) !== 'EINVAL' && errnoCode(e) !== 'ENOENT') throw e;
    }
  },
  async isMounted(target) {
    // A rootfs is an overlay, whose device differs from its parent directory's: two stats
    // (issue 13: /proc/self/mountinfo, hundreds of KiB on a busy node and read a page per
    // syscall, was read whole twice per container).
    try {
      const [own, parent] = await Promise.all([fsp.stat(target), fsp.stat(path.dirname(target))]);
      return own.dev !== parent.dev;
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return false;
      throw e;
    }
  },
};

/**
 * Mounts overlayfs over the layer snapshots `chainIds` (bottom layer first, as in the
 * image config) at `target`, with `tail` (upper/work dirs, or `ro`) after the lower dirs.
 */
export async function mountLayers(mounter: RootfsMounter, snapshotsDir: string, target: string, chainIds: readonly string[], tail: string): Promise<void> {
  // overlayfs lists the top layer first; an image config lists the bottom first.
  const top = [...chainIds].reverse();
  const abs = top.map((c) => path.join(snapshotsDir, digestHex(c), 'fs'));
  const absOpts = `lowerdir=${abs.join(':')},${tail}`;
  if (absOpts.length <= MOUNT_DATA_MAX_BYTES) {
    await mounter.mountOverlay(target, absOpts, undefined);
  } else {
    const rel = top.map((c) => `${digestHex(c)}/fs`);
    await mounter.mountOverlay(target, `lowerdir=${rel.join(':')},${tail}`, snapshotsDir);
  }
}

export interface RootfsPaths {
  /** The merged tree: the container's root. */
  path: string;
  upper: string;
  work: string;
}

export interface RootfsManagerOptions {
  /** `<root_dir>/containers` */
  containersDir: string;
  /** `<root_dir>/images/snapshots` (where `<chain hex>/fs` lives) */
  snapshotsDir: string;
  mounter?: RootfsMounter;
}

export function checkContainerId(id: string): void {
  if (typeof id !== 'string' || !CONTAINER_ID_RE.test(id)) {
    throw new InvalidArgumentError(`container id ${JSON.stringify(id)} must match ${CONTAINER_ID_RE.source}`);
  }
}

export class RootfsManager {
  private readonly mounter: RootfsMounter;

  constructor(private readonly opts: RootfsManagerOptions) {
    this.mounter = opts.mounter ?? KERNEL_MOUNTER;
  }

  paths(containerId: string): RootfsPaths {
    checkContainerId(containerId);
    const base = path.join(this.opts.containersDir, containerId);
    return { path: path.join(base, 'rootfs'), upper: path.join(base, 'overlay', 'upper'), work: path.join(base, 'overlay', 'work') };
  }

  /**
   * Mounts the overlay for `containerId` over `chainIds` (bottom layer first, as in the
   * image config). Idempotent: an existing mount is reused (e.g. after a restart).
   */
  async prepare(containerId: string, chainIds: string[], idmap?: RootfsIdmap): Promise<RootfsPaths> {
    const p = this.paths(containerId);
    const what = `preparing rootfs of container "${containerId}"`;
    try {
      if (await this.mounter.isMounted(p.path)) return p;
      await fsp.mkdir(p.upper, { recursive: true, mode: 0o755 });
      await fsp.mkdir(p.work, { recursive: true, mode: 0o700 });
      await fsp.mkdir(p.path, { recursive: true, mode: 0o755 });
      const tail = `upperdir=${p.upper},workdir=${p.work}`;
      if (idmap === undefined) await mountLayers(this.mounter, this.opts.snapshotsDir, p.path, chainIds, tail);
      else await mountIdmappedLayers(this.mounter, this.opts.snapshotsDir, p, chainIds, idmap);
      return p;
    } catch (e) {
      throw wrapError(what, e);
    }
  }

  /** Unmounts and deletes the rootfs; a rootfs that is not there is not an error. */
  async remove(containerId: string): Promise<void> {
    const p = this.paths(containerId);
    const errors: unknown[] = [];
    try {
      if (await this.mounter.isMounted(p.path)) await this.mounter.unmount(p.path);
      await unmountIdmappedLayers(p);
    } catch (e) {
      errors.push(e);
    }
    if (errors.length === 0) {
      // removeTree: a round trip per file and two per directory, not fs.rm's four (issue 13).
      for (const dir of [p.path, path.dirname(p.upper)]) await removeTree(dir).catch((e: unknown) => errors.push(e));
      // The container dir may hold other modules' files; remove it only when empty.
      await fsp.rmdir(path.dirname(p.path)).catch(() => undefined);
    }
    if (errors.length > 0) {
      throw new AggregateError(errors, `removing rootfs of container "${containerId}": ${errors.map(errorMessage).join('; ')}`);
    }
  }
}
