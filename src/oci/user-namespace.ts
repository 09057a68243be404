// S19 pod user namespaces (CRI userns_options mode POD, Kubernetes `hostUsers: false`):
// the kubelet's mappings checked and turned into the OCI form, and what a container's
// idmapped rootfs needs from them. Mappings without a user namespace are an error.
import { InvalidArgumentError } from '../errors.js';
import type { IdMapping, PodNamespaces } from './spec-sandbox.js';

/** The CRI IDMapping as @grpc/proto-loader decodes it. */
export interface CriIdMapping {
  host_id?: number;
  container_id?: number;
  length?: number;
}

/** CRI UserNamespace (namespace_options.userns_options). */
export interface CriUserNamespace {
  mode?: string;
  uids?: CriIdMapping[] | null;
  gids?: CriIdMapping[] | null;
}

const U32_MAX = 0xffffffff;

function mappings(list: readonly CriIdMapping[], field: string): IdMapping[] {
  return list.map((m, i) => {
    const [c, h, n] = [Number(m.container_id ?? 0), Number(m.host_id ?? 0), Number(m.length ?? 0)];
    const ok = [c, h, n].every((v) => Number.isInteger(v) && v >= 0) && n > 0 && c + n - 1 <= U32_MAX && h + n - 1 <= U32_MAX;
    if (!ok) throw new InvalidArgumentError(`${field}[${i}]: ${JSON.stringify(m)} is not a mapping of length > 0 within 32-bit IDs`);
    return { containerID: c, hostID: h, size: n };
  });
}

/** True when `id` of the container falls in the mappings (0 must: the container's root). */
function maps(id: number, ms: readonly IdMapping[]): boolean {
  return ms.some((m) => id >= m.containerID && id < m.containerID + m.size);
}

/**
 * The pod's user namespace from CRI userns_options (`field` names it in errors):
 * undefined for NODE; POD needs uid and gid mappings that map the container's root;
 * S19: mappings with mode NODE (no user namespace) are INVALID_ARGUMENT, as is any
 * other mode (the CRI defines NODE and POD for user namespaces).
 */
export function podUserNamespace(opt: CriUserNamespace | null | undefined, field: string): PodNamespaces['user'] {
  const mode = opt?.mode ?? 'NODE';
  const uids = opt?.uids ?? [];
  const gids = opt?.gids ?? [];
  if (mode === 'NODE') {
    if (uids.length > 0 || gids.length > 0) throw new InvalidArgumentError(`${field}: uid/gid mappings need a user namespace (mode POD), not mode NODE (S19)`);
    return undefined;
  }
  if (mode !== 'POD') throw new InvalidArgumentError(`${field}.mode ${JSON.stringify(mode)} is not supported for user namespaces (NODE or POD)`);
  if (uids.length === 0 || gids.length === 0) throw new InvalidArgumentError(`${field}: mode POD needs uids and gids mappings`);
  const user = { uidMappings: mappings(uids, `${field}.uids`), gidMappings: mappings(gids, `${field}.gids`) };
  if (!maps(0, user.uidMappings) || !maps(0, user.gidMappings)) throw new InvalidArgumentError(`${field}: the mappings must map the container's root (ID 0)`);
  return user;
}

/** The host ID that container ID `id` maps to. */
export function hostIdOf(id: number, ms: readonly IdMapping[]): number {
  const m = ms.find((x) => id >= x.containerID && id < x.containerID + x.size);
  if (m === undefined) throw new InvalidArgumentError(`ID ${id} is not mapped`);
  return m.hostID + (id - m.containerID);
}

/** What an idmapped rootfs of a container in the pod's user namespace needs (rootfs-idmap.ts): the infra's namespace and the root's host IDs. */
export function rootfsIdmapOf(user: NonNullable<PodNamespaces['user']>, infraPid: number): { usernsPath: string; rootUid: number; rootGid: number } {
  return { usernsPath: `/proc/${infraPid}/ns/user`, rootUid: hostIdOf(0, user.uidMappings), rootGid: hostIdOf(0, user.gidMappings) };
}
