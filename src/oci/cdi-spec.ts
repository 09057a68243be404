// CDI (Container Device Interface) spec files, versions 0.3.0 to 0.8.0, JSON or YAML:
// a `kind` (vendor/class), devices each with `containerEdits`, and spec-level
// `containerEdits` applied with any of them. Parsing and validation only (pure); the
// registry (cdi-registry.ts) reads the directories, cdi-edits.ts applies the edits.
// A feature newer than the spec's `cdiVersion` makes the spec invalid, as the CDI
// library's minimum-version check does.
import path from 'node:path';
import YAML from 'yaml';
import { HOOK_STAGES, type HookStage } from './oci-hooks.js';

export const CDI_VERSIONS = ['0.3.0', '0.4.0', '0.5.0', '0.6.0', '0.7.0', '0.8.0'] as const;
export const CDI_ANNOTATION_PREFIX = 'cdi.k8s.io/';

export interface CdiDeviceNode {
  path: string;
  hostPath?: string;
  type?: 'b' | 'c' | 'u' | 'p';
  major?: number;
  minor?: number;
  fileMode?: number;
  /** Device cgroup access, default "rwm". */
  permissions?: string;
  uid?: number;
  gid?: number;
}

export interface CdiMount {
  hostPath: string;
  containerPath: string;
  type?: string;
  options?: string[];
}

export interface CdiHook {
  hookName: HookStage;
  path: string;
  args?: string[];
  env?: string[];
  timeout?: number;
}

export interface CdiContainerEdits {
  env?: string[];
  deviceNodes?: CdiDeviceNode[];
  mounts?: CdiMount[];
  hooks?: CdiHook[];
  additionalGids?: number[];
  intelRdt?: unknown;
}

export interface CdiDevice {
  name: string;
  containerEdits: CdiContainerEdits;
}

export interface CdiSpec {
  file: string;
  version: string;
  kind: string;
  devices: CdiDevice[];
  containerEdits: CdiContainerEdits;
}

export class CdiSpecError extends Error {
  override readonly name = 'CdiSpecError';
}

const VENDOR_RE = /^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$/;
const CLASS_RE = /^[A-Za-z]([A-Za-z0-9_-]*[A-Za-z0-9])?$/;
const NAME_RE = /^[A-Za-z0-9]([A-Za-z0-9_.:-]*[A-Za-z0-9])?$/;

/** "vendor.com/class=name" → its parts; undefined when it is no qualified CDI device name. */
export function parseQualifiedName(name: string): { kind: string; name: string } | undefined {
  const eq = name.indexOf('=');
  const slash = name.indexOf('/');
  if (eq < 0 || slash < 0 || slash > eq) return undefined;
  const vendor = name.slice(0, slash);
  const cls = name.slice(slash + 1, eq);
  const dev = name.slice(eq + 1);
  if (!VENDOR_RE.test(vendor) || !CLASS_RE.test(cls) || !NAME_RE.test(dev)) return undefined;
  return { kind: `${vendor}/${cls}`, name: dev };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const atLeast = (version: string, min: string): boolean => CDI_VERSIONS.indexOf(version as never) >= CDI_VERSIONS.indexOf(min as never);

/** Parses a spec file's text (JSON, or YAML for *.yaml / *.yml). */
export function parseCdiSpec(text: string, file: string): CdiSpec {
  let doc: unknown;
  try {
    doc = /\.ya?ml$/.test(file) ? YAML.parse(text) : JSON.parse(text);
  } catch (e) {
    throw new CdiSpecError(`parsing ${/\.ya?ml$/.test(file) ? 'YAML' : 'JSON'}: ${(e as Error).message}`);
  }
  if (!isObject(doc)) throw new CdiSpecError('the file must hold an object');
  const version = doc.cdiVersion;
  if (typeof version !== 'string' || !(CDI_VERSIONS as readonly string[]).includes(version)) {
    throw new CdiSpecError(`cdiVersion: ${JSON.stringify(version)} is not supported (${CDI_VERSIONS.join(', ')})`);
  }
  const kind = doc.kind;
  if (typeof kind !== 'string' || parseQualifiedName(`${kind}=x`) === undefined) throw new CdiSpecError(`kind: ${JSON.stringify(kind)} is not "vendor/class"`);
  if (doc.annotations !== undefined && !atLeast(version, '0.6.0')) throw new CdiSpecError(`annotations need cdiVersion 0.6.0 (the spec says ${version})`);
  if (!Array.isArray(doc.devices) || doc.devices.length === 0) throw new CdiSpecError('devices: at least one device is required');
  const names = new Set<string>();
  const devices = doc.devices.map((d: unknown, i: number): CdiDevice => {
    const field = `devices[${i}]`;
    if (!isObject(d) || typeof d.name !== 'string' || !NAME_RE.test(d.name))
      throw new CdiSpecError(`${field}.name: ${JSON.stringify(isObject(d) ? d.name : d)} is no device name`);
    if (/^[0-9]/.test(d.name) && !atLeast(version, '0.5.0')) throw new CdiSpecError(`${field}.name: a name starting with a digit needs cdiVersion 0.5.0`);
    if (names.has(d.name)) throw new CdiSpecError(`${field}.name: "${d.name}" is defined twice`);
    names.add(d.name);
    if (d.annotations !== undefined && !atLeast(version, '0.6.0')) throw new CdiSpecError(`${field}.annotations need cdiVersion 0.6.0`);
    const edits = parseEdits(d.containerEdits, `${field}.containerEdits`, version);
    if (Object.keys(edits).length === 0) throw new CdiSpecError(`${field}.containerEdits: a device needs at least one edit`);
    return { name: d.name, containerEdits: edits };
  });
  return { file, version, kind, devices, containerEdits: doc.containerEdits === undefined ? {} : parseEdits(doc.containerEdits, 'containerEdits', version) };
}

function parseEdits(v: unknown, field: string, version: string): CdiContainerEdits {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw new CdiSpecError(`${field}: an object is required`);
  const out: CdiContainerEdits = {};
  if (v.env !== undefined && v.env !== null) {
    if (!isStringList(v.env) || v.env.some((e) => !/^[^=\0]+=/.test(e))) throw new CdiSpecError(`${field}.env: a list of KEY=VALUE strings is required`);
    out.env = v.env;
  }
  if (Array.isArray(v.deviceNodes)) out.deviceNodes = v.deviceNodes.map((d: unknown, i: number) => parseDeviceNode(d, `${field}.deviceNodes[${i}]`, version));
  if (Array.isArray(v.mounts)) out.mounts = v.mounts.map((m: unknown, i: number) => parseMount(m, `${field}.mounts[${i}]`, version));
  if (Array.isArray(v.hooks)) out.hooks = v.hooks.map((h: unknown, i: number) => parseCdiHook(h, `${field}.hooks[${i}]`));
  if (v.additionalGids !== undefined && v.additionalGids !== null) {
    if (!atLeast(version, '0.7.0')) throw new CdiSpecError(`${field}.additionalGids need cdiVersion 0.7.0`);
    if (!Array.isArray(v.additionalGids) || !v.additionalGids.every(isUint)) throw new CdiSpecError(`${field}.additionalGids: a list of group IDs is required`);
    out.additionalGids = v.additionalGids;
  }
  if (v.intelRdt !== undefined && v.intelRdt !== null) {
    if (!atLeast(version, '0.7.0')) throw new CdiSpecError(`${field}.intelRdt needs cdiVersion 0.7.0`);
    out.intelRdt = v.intelRdt;
  }
  return out;
}

function absolute(v: unknown, field: string): string {
  if (typeof v !== 'string' || !path.posix.isAbsolute(v) || v.split('/').includes('..') || v.includes('\0')) {
    throw new CdiSpecError(`${field}: ${JSON.stringify(v)} is not an absolute path without ".."`);
  }
  return path.posix.normalize(v);
}

function parseDeviceNode(v: unknown, field: string, version: string): CdiDeviceNode {
  if (!isObject(v)) throw new CdiSpecError(`${field}: an object is required`);
  const d: CdiDeviceNode = { path: absolute(v.path, `${field}.path`) };
  if (v.hostPath !== undefined) {
    if (!atLeast(version, '0.5.0')) throw new CdiSpecError(`${field}.hostPath needs cdiVersion 0.5.0`);
    d.hostPath = absolute(v.hostPath, `${field}.hostPath`);
  }
  if (v.type !== undefined && v.type !== '') {
    if (!['b', 'c', 'u', 'p'].includes(v.type as string)) throw new CdiSpecError(`${field}.type: ${JSON.stringify(v.type)} is not b, c, u or p`);
    d.type = v.type as CdiDeviceNode['type'];
  }
  for (const k of ['major', 'minor', 'fileMode', 'uid', 'gid'] as const) {
    if (v[k] === undefined || v[k] === null) continue;
    if (!isUint(v[k])) throw new CdiSpecError(`${field}.${k}: ${JSON.stringify(v[k])} is not a whole number`);
    d[k] = v[k];
  }
  if (v.permissions !== undefined && v.permissions !== '') {
    const p = v.permissions;
    if (typeof p !== 'string' || !/^[rwm]{1,3}$/.test(p) || new Set(p).size !== p.length)
      throw new CdiSpecError(`${field}.permissions: ${JSON.stringify(p)} is not a combination of r, w and m`);
    d.permissions = p;
  }
  return d;
}

function parseMount(v: unknown, field: string, version: string): CdiMount {
  if (!isObject(v)) throw new CdiSpecError(`${field}: an object is required`);
  const m: CdiMount = { hostPath: absolute(v.hostPath, `${field}.hostPath`), containerPath: absolute(v.containerPath, `${field}.containerPath`) };
  if (v.type !== undefined && v.type !== '') {
    if (!atLeast(version, '0.4.0')) throw new CdiSpecError(`${field}.type needs cdiVersion 0.4.0`);
    if (typeof v.type !== 'string') throw new CdiSpecError(`${field}.type: a string is required`);
    m.type = v.type;
  }
  if (v.options !== undefined && v.options !== null) {
    if (!isStringList(v.options)) throw new CdiSpecError(`${field}.options: a list of strings is required`);
    m.options = v.options;
  }
  return m;
}

function parseCdiHook(v: unknown, field: string): CdiHook {
  if (!isObject(v)) throw new CdiSpecError(`${field}: an object is required`);
  if (!(HOOK_STAGES as readonly unknown[]).includes(v.hookName))
    throw new CdiSpecError(`${field}.hookName: ${JSON.stringify(v.hookName)} is not an OCI hook stage`);
  const h: CdiHook = { hookName: v.hookName as HookStage, path: absolute(v.path, `${field}.path`) };
  if (v.args !== undefined && v.args !== null) {
    if (!isStringList(v.args)) throw new CdiSpecError(`${field}.args: a list of strings is required`);
    h.args = v.args;
  }
  if (v.env !== undefined && v.env !== null) {
    if (!isStringList(v.env)) throw new CdiSpecError(`${field}.env: a list of strings is required`);
    h.env = v.env;
  }
  if (v.timeout !== undefined && v.timeout !== null) {
    if (!isUint(v.timeout) || v.timeout === 0) throw new CdiSpecError(`${field}.timeout: a positive whole number of seconds is required`);
    h.timeout = v.timeout;
  }
  return h;
}

/** The qualified device names a container asks for: CDI_devices, then every `cdi.k8s.io/*` annotation's comma list. */
export function requestedCdiDevices(cdiDevices: ReadonlyArray<{ name: string }>, annotations: Record<string, string>): Array<{ name: string; field: string }> {
  const out: Array<{ name: string; field: string }> = [];
  const seen = new Set<string>();
  const add = (name: string, field: string): void => {
    if (seen.has(name)) return;
    seen.add(name);
    out.push({ name, field });
  };
  cdiDevices.forEach((d, i) => add(d.name, `CDI_devices[${i}]`));
  for (const key of Object.keys(annotations).sort()) {
    if (!key.startsWith(CDI_ANNOTATION_PREFIX)) continue;
    for (const name of annotations[key].split(',')) if (name.trim() !== '') add(name.trim(), `annotations["${key}"]`);
  }
  return out;
}
