// The mounts of a container the daemon makes itself before the runtime runs, handed
// to it as plain binds of ready paths (runc 1.1.5 has no `rro`; no runtime here mounts
// images):
//   recursive_read_only  a read-only clone of the source with every submount read-only
//                        too, at <state_dir>/mounts/<id>/<index>
//   image (KEP-4639)     the image's filesystem, read-only, mounted by the image service
//   uid/gidMappings      (S19) an idmapped clone through the pod's user namespace, so
//                        files the host's root owns are root's inside
// Ready paths live outside the container's state dir, which destroy deletes
// recursively: a mount left there by a failed unmount must make removal fail, never
// let a recursive delete walk into a volume.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { cloneMountTree, removeMountDir } from '../../native/index.js';
import { InvalidArgumentError, UnimplementedError, wrapError } from '../errors.js';
import type { CriMount } from './container-config.js';
import type { IdMapping } from './spec-sandbox.js';
import { cleanAbsolute } from './spec-container-mounts.js';

/** What preparing a container's mounts needs from the layers beside this one. */
export interface MountPreparation {
  /** preparedMountsDir(container dir). */
  dir: string;
  /** Mounts image `ref` read-only as volume `index`; its path. NotFound when the image is not present. */
  imageVolume(ref: string, index: number): Promise<string>;
  exists(hostPath: string): Promise<boolean>;
  /** S19: the pod's user namespace (a path to open) and its mappings, for idmapped volumes. */
  userns?: { path: string; uidMappings: readonly IdMapping[]; gidMappings: readonly IdMapping[] };
}

/** <state_dir>/mounts/<id> for the container dir <state_dir>/containers/<id>. */
export function preparedMountsDir(containerDir: string): string {
  return path.join(path.dirname(path.dirname(containerDir)), 'mounts', path.basename(containerDir));
}

const imageOf = (m: CriMount): string => m.image?.image ?? '';

/**
 * The CRI's rules for the mounts sandlot prepares (api.proto Mount): recursive
 * read-only needs `readonly` and PRIVATE propagation; an image volume names an image
 * and may not ask for propagation other than PRIVATE. `prefix` names the list in errors.
 */
export function checkPreparedMounts(mounts: readonly CriMount[], prefix: string): void {
  mounts.forEach((m, i) => {
    const field = `${prefix}[${i}]`;
    const propagation = m.propagation ?? 'PROPAGATION_PRIVATE';
    if (m.recursive_read_only) {
      if (!m.readonly) throw new InvalidArgumentError(`${field}.recursive_read_only: needs readonly: true`);
      if (propagation !== 'PROPAGATION_PRIVATE') {
        throw new InvalidArgumentError(`${field}.recursive_read_only: needs propagation PROPAGATION_PRIVATE, not ${propagation}`);
      }
    }
    if (imageOf(m) !== '') {
      if (propagation !== 'PROPAGATION_PRIVATE')
        throw new InvalidArgumentError(`${field}.image: an image volume takes propagation PROPAGATION_PRIVATE, not ${propagation}`);
      if ((m.image_sub_path ?? '') !== '') {
        throw new UnimplementedError(`${field}.image_sub_path: ${JSON.stringify(m.image_sub_path)}: sub-paths of image volumes are not supported`);
      }
    }
  });
}

/** The container's mounts with every one sandlot makes replaced by a read-only bind of its ready path. */
export async function prepareMounts(mounts: readonly CriMount[], p: MountPreparation): Promise<CriMount[]> {
  checkPreparedMounts(mounts, 'mounts');
  const out: CriMount[] = [];
  for (const [i, m] of mounts.entries()) {
    const field = `mounts[${i}]`;
    if (imageOf(m) !== '') {
      const ready = await p.imageVolume(imageOf(m), i).catch((e: unknown) => {
        throw wrapError(`${field}.image: mounting image "${imageOf(m)}"`, e);
      });
      out.push({ ...m, image: null, host_path: ready, readonly: true });
    } else if (m.recursive_read_only || hasMappings(m)) {
      out.push({
        ...m,
        host_path: await cloneTreeOf(m, field, i, p),
        recursive_read_only: false,
        readonly: m.readonly === true,
        uidMappings: [],
        gidMappings: [],
      });
    } else {
      out.push(m);
    }
  }
  return out;
}

const hasMappings = (m: CriMount): boolean => (m.uidMappings ?? []).length > 0 || (m.gidMappings ?? []).length > 0;

/** A mount's CRI IDMappings in the OCI form. */
function ociMappings(list: readonly unknown[] | null | undefined): IdMapping[] {
  return (list ?? []).map((x) => {
    const m = x as { container_id?: number; host_id?: number; length?: number };
    return { containerID: Number(m.container_id ?? 0), hostID: Number(m.host_id ?? 0), size: Number(m.length ?? 0) };
  });
}

/**
 * The user namespace fd path an idmapped volume uses: the pod's, whose mappings the
 * mount must repeat (what the kubelet sends for a `hostUsers: false` pod). S19:
 * mappings without a pod user namespace are INVALID_ARGUMENT.
 */
function idmapUsernsOf(m: CriMount, field: string, p: MountPreparation): string | undefined {
  if (!hasMappings(m)) return undefined;
  if (p.userns === undefined) throw new InvalidArgumentError(`${field}: uidMappings/gidMappings need a pod user namespace (S19)`);
  const same =
    JSON.stringify(ociMappings(m.uidMappings)) === JSON.stringify(p.userns.uidMappings) &&
    JSON.stringify(ociMappings(m.gidMappings)) === JSON.stringify(p.userns.gidMappings);
  if (!same) throw new UnimplementedError(`${field}: id-mapped mounts with mappings other than the pod user namespace's are not supported`);
  return p.userns.path;
}

async function cloneTreeOf(m: CriMount, field: string, i: number, p: MountPreparation): Promise<string> {
  const usernsPath = idmapUsernsOf(m, field, p);
  const source = cleanAbsolute(m.host_path, `${field}.host_path`);
  if (!(await p.exists(source))) throw new InvalidArgumentError(`${field}.host_path: mount source "${source}" does not exist`);
  const target = path.join(p.dir, String(i));
  // 0711: the runtime binds it as the container's root, an unprivileged uid in a pod user namespace (S19).
  await fsp.mkdir(p.dir, { recursive: true, mode: 0o711 });
  // A bind's mount point is of the source's kind.
  if ((await fsp.stat(source)).isDirectory()) await fsp.mkdir(target, { mode: 0o755 });
  else await fsp.writeFile(target, '', { mode: 0o644 });
  const userns = usernsPath === undefined ? undefined : fs.openSync(usernsPath, 'r');
  try {
    cloneMountTree(source, target, { readOnly: m.recursive_read_only === true, ...(userns !== undefined ? { idmapUsernsFd: userns } : {}) });
  } catch (e) {
    throw wrapError(`${field}: making a ${m.recursive_read_only ? 'recursive read-only' : 'idmapped'} clone of "${source}"`, e);
  } finally {
    if (userns !== undefined) fs.closeSync(userns);
  }
  return target;
}

/** S7: the ready paths of a container unmounted and removed; idempotent. */
export async function releasePreparedMounts(dir: string): Promise<void> {
  await removeMountDir(dir);
}
