// Image volumes (KEP-4639, CRI Mount.image): an image's filesystem mounted read-only
// for one container, from the same layer snapshots as container roots:
//   <containers_dir>/<id>/image-volumes/<index>
// Several layers are a read-only overlayfs with no upper dir; overlayfs needs two lower
// dirs without one, so a single layer is a read-only bind (a clone of its snapshot made
// read-only with mount_setattr). The runtime binds the ready path into the container.
// Unmounting goes by /proc/self/mountinfo; nothing is ever deleted through a mount.
import fsp from 'node:fs/promises';
import path from 'node:path';
import {
  AT_RECURSIVE,
  MNT_DETACH,
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
import { errnoCode } from '../errors.js';
import { digestHex } from './digest.js';
import { mountLayers, type RootfsMounter } from './rootfs.js';

/** The image-volume dir of a container. */
export function imageVolumesDir(containersDir: string, containerId: string): string {
  return path.join(containersDir, containerId, 'image-volumes');
}

/** Mounts the layers `chainIds` (bottom first) read-only at `target` (created, or an empty dir). */
export async function mountImageVolume(mounter: RootfsMounter, snapshotsDir: string, target: string, chainIds: readonly string[]): Promise<void> {
  await fsp.mkdir(target, { recursive: true, mode: 0o755 });
  if (chainIds.length >= 2) {
    await mountLayers(mounter, snapshotsDir, target, chainIds, 'ro');
    return;
  }
  // An image has at least one layer (the manifest check refuses none).
  const layer = path.join(snapshotsDir, digestHex(chainIds[0]), 'fs');
  withTreeFd(openTree(layer, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE), (fd) => {
    mountSetattr(fd, AT_RECURSIVE, { set: MOUNT_ATTR_RDONLY, propagation: MOUNT_PROPAGATION_PRIVATE });
    moveMountTo(fd, target);
  });
}

function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Unmounts every volume of `dir` (imageVolumesDir) and removes their empty mount points and the dir; idempotent. */
export async function unmountImageVolumes(dir: string): Promise<void> {
  const info = await fsp.readFile('/proc/self/mountinfo', 'utf8');
  const points = info
    .split('\n')
    .map((l) => unescapeMountPath(l.split(' ')[4] ?? ''))
    .filter((p) => p.startsWith(`${dir}/`))
    .sort((a, b) => a.length - b.length);
  for (const p of points) {
    try {
      umount2(p, MNT_DETACH);
    } catch (e) {
      if (errnoCode(e) !== 'EINVAL' && errnoCode(e) !== 'ENOENT') throw e;
    }
  }
  for (const n of await fsp.readdir(dir).catch(() => [] as string[])) await fsp.rmdir(path.join(dir, n));
  await fsp.rmdir(dir).catch((e: unknown) => {
    if (errnoCode(e) !== 'ENOENT') throw e;
  });
  // The container dir goes when nothing else of the container is left in it.
  await fsp.rmdir(path.dirname(dir)).catch(() => undefined);
}
