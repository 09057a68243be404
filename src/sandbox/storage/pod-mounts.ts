// Pod mount hints applied to real pods (S14). At RunPodSandbox the hints are the pod's
// `dev.gvisor.spec.mount.*` annotations plus one derived per Kubernetes emptyDir
// volume (mount-hints.ts); they are kept in the pod's record.
//
//   runsc: the hints travel as annotations on the sandbox spec and on every container
//          spec; gVisor sets each shared volume up once inside the sandbox. As gVisor's
//          containerd shim does, a container's bind mount of a pod-shared tmpfs hint's
//          source becomes a `tmpfs` mount in its spec: the installed runsc (2022)
//          otherwise mounts the hint as a gofer mount and fails at start ("gofer mount
//          requires a connection FD", measured).
//   runc:  a `tmpfs` hint shared by the pod becomes one tmpfs mounted once for the pod
//          under <pod dir>/mounts/<name>; each container mount of the hint's source is
//          bound from it instead, so all containers of the pod see one file system.
//          Derived hints are skipped: for a memory emptyDir the kubelet has mounted a
//          tmpfs at the source already, and a bind of it is shared as it is.
//          The tmpfs goes when the pod is removed (also at recovery of a dead pod).
import fs from 'node:fs/promises';
import path from 'node:path';
import { MNT_DETACH, MS_NODEV, MS_NOEXEC, MS_NOSUID, mountAsync, mountPointsUnder, umount2 } from '../../../native/index.js';
import { errnoCode, errorMessage, InternalError } from '../../errors.js';
import type { OciMount } from '../../oci/spec-common.js';
import { removeTree } from '../../util/remove-tree.js';
import type { CriMount } from '../../oci/spec-container.js';
import {
  deriveEmptyDirHints,
  discoverEmptyDirVolumes,
  hintForMountSource,
  NODE_EMPTY_DIR_FS,
  parseMountHints,
  shouldShareMount,
  type EmptyDirFs,
  type MountHint,
} from './mount-hints.js';

/** Where a pod's own mounts for its hints live. */
export function podMountsDir(podDir: string): string {
  return path.join(podDir, 'mounts');
}

const POD_UID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

export interface PodMountHintsOptions {
  kubeletRootDir?: string;
  fs?: EmptyDirFs;
}

/**
 * S14 at RunPodSandbox: the pod's hints, explicit and derived. A bad annotation is an
 * InvalidArgumentError naming it. A pod UID that cannot be a kubelet directory name
 * (not from a kubelet) has no emptyDir volumes to derive hints from.
 */
export async function podMountHints(annotations: Readonly<Record<string, string>>, podUid: string, options: PodMountHintsOptions = {}): Promise<MountHint[]> {
  const explicit = parseMountHints(annotations, {
    ...(POD_UID_RE.test(podUid) ? { podUid } : {}),
    ...(options.kubeletRootDir !== undefined ? { kubeletRootDir: options.kubeletRootDir } : {}),
  });
  if (!POD_UID_RE.test(podUid)) return explicit;
  const volumes = await discoverEmptyDirVolumes(options.fs ?? NODE_EMPTY_DIR_FS, podUid, options.kubeletRootDir);
  return deriveEmptyDirHints(volumes, explicit);
}

/** runc: the hints that get one tmpfs of the pod's own (S14). */
export function podTmpfsHints(hints: readonly MountHint[]): MountHint[] {
  return hints.filter((h) => h.type === 'tmpfs' && shouldShareMount(h) && !h.derived);
}

/** The pod tmpfs of a hint. */
export function podTmpfsPath(podDir: string, hint: MountHint): string {
  return path.join(podMountsDir(podDir), hint.name);
}

const FLAG_BITS: Record<string, number> = { nosuid: MS_NOSUID, nodev: MS_NODEV, noexec: MS_NOEXEC };
const TMPFS_DATA = new Set(['size', 'mode', 'nr_inodes']);

/** Mount flags and tmpfs data from a hint's options (the rest apply to the binds). */
export function tmpfsMountArgs(options: readonly string[]): { flags: number; data: string } {
  let flags = MS_NOSUID | MS_NODEV;
  const data: string[] = [];
  for (const o of options) {
    const eq = o.indexOf('=');
    if (eq > 0 && TMPFS_DATA.has(o.slice(0, eq))) data.push(o);
    else if (FLAG_BITS[o] !== undefined) flags |= FLAG_BITS[o];
  }
  if (!data.some((d) => d.startsWith('mode='))) data.push('mode=1777');
  return { flags, data: data.join(',') };
}

/** runc: mounts the pod's tmpfs for each pod-shared tmpfs hint. Undo with unmountPodMounts. */
export async function mountPodTmpfs(podDir: string, hints: readonly MountHint[]): Promise<void> {
  for (const h of podTmpfsHints(hints)) {
    const target = podTmpfsPath(podDir, h);
    await fs.mkdir(target, { recursive: true, mode: 0o755 });
    const { flags, data } = tmpfsMountArgs(h.options);
    try {
      await mountAsync('tmpfs', target, 'tmpfs', flags, data);
    } catch (e) {
      throw new InternalError(`mounting the pod tmpfs of mount hint "${h.name}" at "${target}": ${errorMessage(e)}`, { cause: e });
    }
  }
}

/** Unmounts every mount under the pod's mounts dir (idempotent; before the pod dir goes). */
export async function unmountPodMounts(podDir: string): Promise<void> {
  const dir = podMountsDir(podDir);
  // No mounts dir (a pod without pod-shared tmpfs volumes): nothing can be mounted below it.
  if (!(await pathExists(dir))) return;
  const errors: Error[] = [];
  for (let round = 0; round < 8; round++) {
    // Deepest first: each is unmounted on its own, a parent after its children.
    const points = (await mountPointsUnder(dir)).reverse();
    if (points.length === 0) break;
    for (const p of points) {
      try {
        umount2(p, MNT_DETACH);
      } catch (e) {
        if (round === 7) errors.push(new InternalError(`unmounting pod mount "${p}": ${errorMessage(e)}`, { cause: e }));
      }
    }
  }
  if (errors.length > 0) throw new AggregateError(errors, errors.map((e) => e.message).join('; '));
  await removeTree(dir);
}

/** False only when `p` is not there (ENOENT); any other failure of the stat says "maybe". */
async function pathExists(p: string): Promise<boolean> {
  try {
    await fs.stat(p);
    return true;
  } catch (e) {
    return errnoCode(e) !== 'ENOENT';
  }
}

/**
 * runc: the container's mounts with each source that a pod tmpfs hint describes bound
 * from the pod's tmpfs instead (S14: every container uses the one master mount).
 */
export function bindPodTmpfs(mounts: readonly CriMount[], podDir: string, hints: readonly MountHint[]): CriMount[] {
  const tmpfs = podTmpfsHints(hints);
  if (tmpfs.length === 0) return [...mounts];
  return mounts.map((m) => {
    const h = hintForMountSource(tmpfs, m.host_path);
    return h === undefined ? m : { ...m, host_path: podTmpfsPath(podDir, h) };
  });
}

/** runsc: container bind mounts of pod-shared tmpfs hint sources turned into tmpfs mounts (S14). */
export function runscTmpfsHintMounts(mounts: readonly OciMount[], hints: readonly MountHint[]): OciMount[] {
  const tmpfs = hints.filter((h) => h.type === 'tmpfs' && shouldShareMount(h));
  if (tmpfs.length === 0) return [...mounts];
  return mounts.map((m) => {
    if (m.type !== 'bind' || m.source === undefined || hintForMountSource(tmpfs, m.source) === undefined) return m;
    return { ...m, type: 'tmpfs', options: (m.options ?? []).filter((o) => o !== 'bind' && o !== 'rbind') };
  });
}
