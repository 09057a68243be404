// Container roots in a pod user namespace (S19) without chowning image layers: each
// layer snapshot is cloned as an idmapped mount through the pod's user namespace
// (open_tree + mount_setattr MOUNT_ATTR_IDMAP + move_mount), and overlayfs is mounted
// over those clones:
//   <containers_dir>/<id>/idmapped/<n>   layer n (top first), idmapped
// Measured on this kernel (6.x): overlayfs itself refuses to be idmapped (EINVAL), but
// takes idmapped lower dirs; an idmapped upper dir makes it read-only (the mounter, host
// root, is not mapped there: "failed to create directory …/work (errno: 75)"). So the
// upper dir, the container's own, is a plain dir owned by the container's root.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { cloneMountTree, removeMountDir } from '../../native/index.js';
import { digestHex } from './digest.js';

/** The parts of rootfs.ts's RootfsMounter and RootfsPaths used here (rootfs.ts imports this file). */
interface OverlayMounter {
  mountOverlay(target: string, options: string, cwd: string | undefined): Promise<void>;
}
interface RootfsPaths {
  path: string;
  upper: string;
  work: string;
}

const MOUNT_DATA_MAX_BYTES = 4000;

/** The pod's user namespace: a path to open (/proc/PID/ns/user) and where container root 0 lands on the host. */
export interface RootfsIdmap {
  usernsPath: string;
  rootUid: number;
  rootGid: number;
}

const idmappedDir = (p: RootfsPaths): string => path.join(path.dirname(p.path), 'idmapped');

/** The overlay of idmapped clones of `chainIds` (bottom first) at p.path, the upper dir owned by the mapped root. */
export async function mountIdmappedLayers(
  mounter: OverlayMounter,
  snapshotsDir: string,
  p: RootfsPaths,
  chainIds: readonly string[],
  idmap: RootfsIdmap,
): Promise<void> {
  const dir = idmappedDir(p);
  const top = [...chainIds].reverse();
  const userns = fs.openSync(idmap.usernsPath, 'r');
  try {
    for (const [n, c] of top.entries()) {
      const target = path.join(dir, String(n));
      await fsp.mkdir(target, { recursive: true, mode: 0o755 });
      cloneMountTree(path.join(snapshotsDir, digestHex(c), 'fs'), target, { idmapUsernsFd: userns });
    }
  } finally {
    fs.closeSync(userns);
  }
  await fsp.chown(p.upper, idmap.rootUid, idmap.rootGid);
  // The runtime binds the rootfs as the container's root (an unprivileged host uid): the
  // dirs above it (the container's, then <root_dir>/containers) must let it pass, as
  // containerd's 0711 dirs do; nothing can be listed, and no container process ever sees
  // these paths after its pivot_root.
  for (const d of [path.dirname(p.path), path.dirname(path.dirname(p.path))]) {
    const st = await fsp.stat(d);
    if ((st.mode & 0o011) !== 0o011) await fsp.chmod(d, (st.mode & 0o7777) | 0o011);
  }
  const tail = `upperdir=${p.upper},workdir=${p.work}`;
  const abs = `lowerdir=${top.map((_c, n) => path.join(dir, String(n))).join(':')},${tail}`;
  if (abs.length <= MOUNT_DATA_MAX_BYTES) await mounter.mountOverlay(p.path, abs, undefined);
  else await mounter.mountOverlay(p.path, `lowerdir=${top.map((_c, n) => String(n)).join(':')},${tail}`, dir);
}

/** Unmounts and removes the idmapped layer clones (after the overlay over them); idempotent. */
export async function unmountIdmappedLayers(p: RootfsPaths): Promise<void> {
  await removeMountDir(idmappedDir(p));
}
