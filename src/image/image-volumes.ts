// Image volumes (KEP-4639, CRI Mount.image): an image's filesystem mounted read-only
// for one container, from the same layer snapshots as container roots:
//   <containers_dir>/<id>/image-volumes/<index>
// Several layers are a read-only overlayfs with no upper dir; overlayfs needs two lower
// dirs without one, so a single layer is a read-only bind (a clone of its snapshot made
// read-only with mount_setattr). The runtime binds the ready path into the container.
// Unmounting goes by /proc/self/mountinfo; nothing is ever deleted through a mount.
import fsp from 'node:fs/promises';
import path from 'node:path';
import { cloneMountTree, removeMountDir } from '../../native/index.js';
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
  cloneMountTree(layer, target, { readOnly: true });
}

/** Unmounts every volume of `dir` (imageVolumesDir) and removes their empty mount points and the dir; idempotent. */
export async function unmountImageVolumes(dir: string): Promise<void> {
  await removeMountDir(dir);
  // The container dir goes when nothing else of the container is left in it.
  await fsp.rmdir(path.dirname(dir)).catch(() => undefined);
}
