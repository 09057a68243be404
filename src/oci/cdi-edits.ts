// Applying CDI container edits to an app container's OCI spec, in the CDI library's
// order: for each requested device, its spec's own `containerEdits` (once per spec, the
// first time one of its devices comes), then the device's. Env entries replace the same
// key or are appended; device nodes replace the same path and get a device cgroup rule
// (type, major and minor read from the host node when the spec leaves them out, as CDI's
// fillMissingInfo); mounts replace the same destination and the list is ordered parents
// first; hooks are appended to their stage; additionalGids join the process's groups.
// S20: this is the host-side step before any helper of the container starts; each
// failure names the step, the device and its spec.
import path from 'node:path';
import { FailedPreconditionError, InvalidArgumentError, UnimplementedError } from '../errors.js';
import type { CdiContainerEdits, CdiDeviceNode } from './cdi-spec.js';
import type { CdiResolved } from './cdi-registry.js';
import type { SpecLookups } from './container-config.js';
import type { OciHook } from './oci-hooks.js';
import type { LinuxDevice, OciMount, OciSpec } from './spec-common.js';

const depth = (p: string): number => p.split('/').filter(Boolean).length;

/** Applies every resolved device's edits to `spec` (changed in place). */
export async function applyCdiEdits(
  spec: OciSpec,
  resolved: readonly CdiResolved[],
  lookups: Pick<SpecLookups, 'statDevice' | 'exists'>,
  opts: { handler?: string; hostDeviceNodes?: boolean } = {},
): Promise<void> {
  const specsDone = new Set<string>();
  let mountsAdded = false;
  for (const r of resolved) {
    const edits: Array<{ edits: CdiContainerEdits; what: string }> = [];
    if (!specsDone.has(r.spec.file)) {
      specsDone.add(r.spec.file);
      edits.push({ edits: r.spec.containerEdits, what: `applying the spec-level edits of CDI spec "${r.spec.file}" (for "${r.qualifiedName}")` });
    }
    edits.push({ edits: r.device.containerEdits, what: `applying CDI device "${r.qualifiedName}" of spec "${r.spec.file}"` });
    for (const e of edits) {
      if (opts.hostDeviceNodes === false && (e.edits.deviceNodes ?? []).length > 0) {
        throw new UnimplementedError(
          `${e.what}: device nodes cannot be passed into a gVisor sandbox (handler "${opts.handler ?? 'runsc'}": runsc ignores linux.devices, measured); CDI devices of env, mounts and hooks only work there`,
        );
      }
      mountsAdded = (await applyOne(spec, e.edits, e.what, lookups)) || mountsAdded;
    }
  }
  // Parents before children (stable), as the CDI library sorts after adding mounts.
  if (mountsAdded)
    spec.mounts = spec.mounts
      .map((m, i) => ({ m, i }))
      .sort((a, b) => depth(a.m.destination) - depth(b.m.destination) || a.i - b.i)
      .map((x) => x.m);
}

async function applyOne(spec: OciSpec, edits: CdiContainerEdits, what: string, lookups: Pick<SpecLookups, 'statDevice' | 'exists'>): Promise<boolean> {
  if (edits.intelRdt !== undefined) throw new UnimplementedError(`${what}: intelRdt edits are not supported`);
  for (const kv of edits.env ?? []) setEnv(spec.process.env, kv);
  for (const node of edits.deviceNodes ?? []) {
    const dev = await fillDevice(node, `${what}: device node "${node.path}"`, lookups);
    const devices = (spec.linux.devices ??= []);
    const at = devices.findIndex((d) => d.path === dev.path);
    if (at === -1) devices.push(dev);
    else devices[at] = dev;
    if (dev.type === 'b' || dev.type === 'c') {
      (spec.linux.resources ??= {}).devices ??= [];
      spec.linux.resources.devices.push({ allow: true, type: dev.type, major: dev.major, minor: dev.minor, access: node.permissions ?? 'rwm' });
    }
  }
  for (const m of edits.mounts ?? []) {
    if (!(await lookups.exists(m.hostPath))) throw new FailedPreconditionError(`${what}: mount "${m.containerPath}": host path "${m.hostPath}" does not exist`);
    const type = m.type ?? 'bind';
    const options = [...(m.options ?? [])];
    if (type === 'bind' && !options.includes('bind') && !options.includes('rbind')) options.unshift('rbind');
    const mount: OciMount = { destination: m.containerPath, type, source: m.hostPath, options };
    spec.mounts = [...spec.mounts.filter((x) => path.posix.normalize(x.destination) !== m.containerPath), mount];
  }
  for (const h of edits.hooks ?? []) {
    const hook: OciHook = { path: h.path, ...(h.args ? { args: h.args } : {}), ...(h.env ? { env: h.env } : {}), ...(h.timeout ? { timeout: h.timeout } : {}) };
    ((spec.hooks ??= {})[h.hookName] ??= []).push(hook);
  }
  if (edits.additionalGids !== undefined) {
    const gids = (spec.process.user.additionalGids ??= []);
    for (const g of edits.additionalGids) if (!gids.includes(g)) gids.push(g);
  }
  return (edits.mounts ?? []).length > 0;
}

/** KEY=VALUE replaces the same key in place, or is appended. */
function setEnv(env: string[], kv: string): void {
  const key = kv.slice(0, kv.indexOf('='));
  const at = env.findIndex((e) => e.startsWith(`${key}=`) || e === key);
  if (at === -1) env.push(kv);
  else env[at] = kv;
}

/** The OCI device of a CDI node: type/major/minor from the host node unless given (CDI's fillMissingInfo). */
async function fillDevice(node: CdiDeviceNode, what: string, lookups: Pick<SpecLookups, 'statDevice'>): Promise<LinuxDevice> {
  const hostPath = node.hostPath ?? node.path;
  let type = node.type;
  let major = node.major ?? 0;
  let minor = node.minor ?? 0;
  let fileMode = node.fileMode;
  if (type === undefined || (major === 0 && type !== 'p')) {
    const st = await lookups.statDevice(hostPath);
    if (st === undefined) throw new FailedPreconditionError(`${what}: looking up host device "${hostPath}": it does not exist`);
    if (st.kind !== 'c' && st.kind !== 'b') throw new FailedPreconditionError(`${what}: looking up host device "${hostPath}": it is not a device node`);
    // runc's DeviceFromPath reports character devices as "c" whether the spec said c or u.
    if (type !== undefined && type !== st.kind && !(type === 'u' && st.kind === 'c')) {
      throw new InvalidArgumentError(`${what}: the spec says type "${type}", the host device "${hostPath}" is "${st.kind}"`);
    }
    type ??= st.kind;
    if (major === 0) {
      major = st.major;
      minor = st.minor;
    }
    fileMode ??= st.mode;
  }
  return {
    path: node.path,
    type,
    major,
    minor,
    ...(fileMode !== undefined ? { fileMode } : {}),
    ...(node.uid !== undefined ? { uid: node.uid } : {}),
    ...(node.gid !== undefined ? { gid: node.gid } : {}),
  };
}
