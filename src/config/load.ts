// Configuration is read once at start: embedded defaults ← YAML file ← environment
// (SANDLOT_<FLAG>) ← command-line flags. A bad value is a ConfigError naming the key,
// the value and what is allowed; the daemon exits 2 on it.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import YAML from 'yaml';
import { errnoCode, errorMessage } from '../errors.js';
import { DEFAULT_CONFIG_FILE, defaultConfig } from './defaults.js';
import { ConfigError } from './config-error.js';
import { validateStreamingTls } from './streaming-tls.js';
import { LOG_LEVELS, RUNSC_NETWORKS, RUNTIME_TYPES, type RuntimeHandlerConfig, type SandlotConfig } from './types.js';

/** Flags the daemon takes, each also read from env SANDLOT_<UPPER_SNAKE>. */
export const CONFIG_FLAGS = {
  socket: 'socket_path',
  root: 'root_dir',
  state: 'state_dir',
  'log-level': 'log_level',
  'metrics-address': 'metrics_address',
  'otlp-endpoint': 'otlp_endpoint',
  'streaming-address': 'streaming_address',
  'cgroup-root': 'cgroup_root',
  'default-runtime': 'default_runtime',
  'cni-conf-dir': 'cni_conf_dir',
  preload: 'preload_images',
} as const satisfies Record<string, keyof SandlotConfig>;

export type ConfigFlag = keyof typeof CONFIG_FLAGS;

/** Keys whose flag or env value is a comma-separated list. */
const LIST_KEYS = new Set<string>(['preload_images']);
const splitList = (v: string): string[] =>
  v
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');

export function envName(flag: string): string {
  return `SANDLOT_${flag.toUpperCase().replace(/-/g, '_')}`;
}

export interface LoadConfigOptions {
  /** --config; when unset, SANDLOT_CONFIG, then /etc/sandlot/config.yaml if it exists. */
  configFile?: string | undefined;
  flags?: Partial<Record<ConfigFlag, string>>;
  env?: NodeJS.ProcessEnv;
}

export interface LoadedConfig {
  config: SandlotConfig;
  /** The file that was read, if any. */
  file: string | undefined;
}

export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const explicit = options.configFile ?? env[envName('config')];
  const file = explicit ?? (fs.existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);

  const raw: Record<string, unknown> = { ...defaultConfig() };
  if (file !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new ConfigError('config', file, `reading the file: ${errnoCode(e) ?? errorMessage(e)}`);
    }
    let doc: unknown;
    try {
      doc = YAML.parse(text) ?? {};
    } catch (e) {
      throw new ConfigError('config', file, `parsing YAML: ${errorMessage(e)}`);
    }
    if (typeof doc !== 'object' || Array.isArray(doc)) {
      throw new ConfigError('config', file, 'the file must hold a YAML mapping');
    }
    mergeFile(raw, doc as Record<string, unknown>);
  }
  for (const [flag, key] of Object.entries(CONFIG_FLAGS)) {
    const fromEnv = env[envName(flag)];
    if (fromEnv !== undefined) raw[key] = LIST_KEYS.has(key) ? splitList(fromEnv) : fromEnv;
  }
  for (const [flag, value] of Object.entries(options.flags ?? {})) {
    const key = CONFIG_FLAGS[flag as ConfigFlag];
    if (value !== undefined) raw[key] = LIST_KEYS.has(key) ? splitList(value) : value;
  }
  return { config: validateConfig(raw), file };
}

function mergeFile(into: Record<string, unknown>, doc: Record<string, unknown>): void {
  const defaults = defaultConfig();
  for (const [key, value] of Object.entries(doc)) {
    if (!(key in defaults)) {
      throw new ConfigError(key, value, `unknown key; known keys: ${Object.keys(defaults).join(', ')}`);
    }
    if (key === 'runtimes' && value && typeof value === 'object' && !Array.isArray(value)) {
      // Handlers named in the file replace or add to the built-in ones.
      into.runtimes = { ...(into.runtimes as object), ...value };
    } else {
      into[key] = value;
    }
  }
}

const str = (key: string, v: unknown): string => {
  if (typeof v !== 'string') throw new ConfigError(key, v, 'a string is required');
  return v;
};
const absPath = (key: string, v: unknown): string => {
  const s = str(key, v);
  if (!path.isAbsolute(s) || s.split('/').includes('..')) {
    throw new ConfigError(key, v, 'an absolute path without ".." is required');
  }
  return path.normalize(s);
};
const strList = (key: string, v: unknown): string[] => {
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
    throw new ConfigError(key, v, 'a list of strings is required');
  }
  return v as string[];
};
const oneOf = <T extends string>(key: string, v: unknown, allowed: readonly T[]): T => {
  if (typeof v !== 'string' || !allowed.includes(v as T)) {
    throw new ConfigError(key, v, `allowed values: ${allowed.join(', ')}`);
  }
  return v as T;
};

/** "" (off) or host:port with a numeric port 0-65535. */
export function parseHostPort(key: string, v: unknown, allowEmpty: boolean): string {
  const s = str(key, v);
  if (s === '' && allowEmpty) return s;
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(s);
  if (!m || Number(m[2]) > 65535) {
    throw new ConfigError(key, v, `host:port with a port 0-65535${allowEmpty ? ', or "" to turn it off' : ''}`);
  }
  return s;
}

function validateRuntime(name: string, v: unknown): RuntimeHandlerConfig {
  const key = `runtimes.${name}`;
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name)) {
    throw new ConfigError(key, name, 'a handler name must be a DNS label (lowercase letters, digits, "-")');
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(key, v, 'a mapping is required');
  const h = v as Record<string, unknown>;
  for (const k of Object.keys(h)) {
    if (!['type', 'path', 'args', 'network', 'overlay', 'port_forward_relay'].includes(k)) {
      throw new ConfigError(`${key}.${k}`, h[k], 'unknown key; known: type, path, args, network, overlay, port_forward_relay');
    }
  }
  const type = oneOf(`${key}.type`, h.type ?? 'oci', RUNTIME_TYPES);
  const bin = str(`${key}.path`, h.path ?? name);
  if (bin === '') throw new ConfigError(`${key}.path`, bin, 'a binary name or absolute path is required');
  const relay = h.port_forward_relay ?? false;
  if (typeof relay !== 'boolean') throw new ConfigError(`${key}.port_forward_relay`, relay, 'true or false');
  return {
    type,
    path: bin,
    args: strList(`${key}.args`, h.args ?? []),
    network: oneOf(`${key}.network`, h.network ?? 'auto', RUNSC_NETWORKS),
    overlay: str(`${key}.overlay`, h.overlay ?? ''),
    port_forward_relay: relay,
  };
}

const CIDR_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

export function validateConfig(raw: Record<string, unknown>): SandlotConfig {
  const runtimesRaw = raw.runtimes;
  if (!runtimesRaw || typeof runtimesRaw !== 'object' || Array.isArray(runtimesRaw)) {
    throw new ConfigError('runtimes', runtimesRaw, 'a mapping of handler name to {type, path, args} is required');
  }
  const runtimes: Record<string, RuntimeHandlerConfig> = {};
  for (const [name, h] of Object.entries(runtimesRaw)) runtimes[name] = validateRuntime(name, h);
  const defaultRuntime = str('default_runtime', raw.default_runtime);
  if (!(defaultRuntime in runtimes)) {
    throw new ConfigError('default_runtime', defaultRuntime, `configured handlers: ${Object.keys(runtimes).join(', ')}`);
  }
  const subnet = str('cni_default_subnet', raw.cni_default_subnet);
  const cm = CIDR_RE.exec(subnet);
  if (!cm || cm.slice(1, 5).some((o) => Number(o) > 255) || Number(cm[5]) > 30 || Number(cm[5]) < 8) {
    throw new ConfigError('cni_default_subnet', subnet, 'an IPv4 CIDR with a prefix of /8 to /30');
  }
  const mirrorsRaw = raw.registry_mirrors ?? {};
  if (typeof mirrorsRaw !== 'object' || Array.isArray(mirrorsRaw)) {
    throw new ConfigError('registry_mirrors', mirrorsRaw, 'a mapping of registry host to a list of endpoints');
  }
  const mirrors: Record<string, string[]> = {};
  for (const [host, list] of Object.entries(mirrorsRaw as Record<string, unknown>)) {
    mirrors[host] = strList(`registry_mirrors.${host}`, list).map((u) => {
      if (!/^https?:\/\/[^/\s]+\/?$/.test(u)) {
        throw new ConfigError(`registry_mirrors.${host}`, u, 'each endpoint is http(s)://host[:port]');
      }
      return u.replace(/\/$/, '');
    });
  }
  const bridge = str('cni_default_bridge', raw.cni_default_bridge);
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(bridge)) {
    throw new ConfigError('cni_default_bridge', bridge, 'an interface name of 1-15 letters, digits, "_", "." or "-"');
  }
  const otlp = str('otlp_endpoint', raw.otlp_endpoint);
  if (otlp !== '' && !/^https?:\/\/\S+$/.test(otlp)) {
    throw new ConfigError('otlp_endpoint', otlp, 'an http(s):// URL, or "" to turn tracing off');
  }
  const metrics = parseHostPort('metrics_address', raw.metrics_address, true);
  if (metrics !== '') assertLoopbackOrAny('metrics_address', metrics);
  return {
    socket_path: absPath('socket_path', raw.socket_path),
    root_dir: absPath('root_dir', raw.root_dir),
    state_dir: absPath('state_dir', raw.state_dir),
    log_level: oneOf('log_level', raw.log_level, LOG_LEVELS),
    metrics_address: metrics,
    otlp_endpoint: otlp,
    default_runtime: defaultRuntime,
    runtimes,
    conmon_path: str('conmon_path', raw.conmon_path),
    conmon_cgroup: conmonCgroup(raw.conmon_cgroup),
    catatonit_path: str('catatonit_path', raw.catatonit_path),
    cni_conf_dir: absPath('cni_conf_dir', raw.cni_conf_dir),
    cni_bin_dirs: strList('cni_bin_dirs', raw.cni_bin_dirs).map((d, i) => absPath(`cni_bin_dirs[${i}]`, d)),
    cni_default_subnet: subnet,
    cni_default_bridge: bridge,
    registry_mirrors: mirrors,
    insecure_registries: strList('insecure_registries', raw.insecure_registries ?? []),
    streaming_address: parseHostPort('streaming_address', raw.streaming_address, false),
    ...validateStreamingTls(raw),
    cgroup_root: absPath('cgroup_root', raw.cgroup_root),
    default_cgroup_parent: absPath('default_cgroup_parent', raw.default_cgroup_parent),
    preload_images: strList('preload_images', raw.preload_images ?? []).map((p, i) => absPath(`preload_images[${i}]`, p)),
    ...unpackLimits(raw),
    hooks_dirs: strList('hooks_dirs', raw.hooks_dirs).map((d, i) => absPath(`hooks_dirs[${i}]`, d)),
    cdi_spec_dirs: strList('cdi_spec_dirs', raw.cdi_spec_dirs).map((d, i) => absPath(`cdi_spec_dirs[${i}]`, d)),
  };
}

/** "" or an absolute cgroup path below cgroup_root (not the root itself). */
function conmonCgroup(v: unknown): string {
  const s = str('conmon_cgroup', v ?? '');
  if (s === '') return s;
  const p = absPath('conmon_cgroup', s);
  if (p === '/')
    throw new ConfigError('conmon_cgroup', v, 'a cgroup below cgroup_root such as "/sandlot-conmon", or "" to keep conmon in the daemon\'s cgroup');
  return p;
}

/** The unpack limits: positive byte counts, the per-layer one no larger than the per-image one. */
function unpackLimits(raw: Record<string, unknown>): Pick<SandlotConfig, 'max_layer_unpacked_bytes' | 'max_image_unpacked_bytes'> {
  const bytes = (key: string, v: unknown): number => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new ConfigError(key, v, 'a positive whole number of bytes is required');
    return v;
  };
  const layer = bytes('max_layer_unpacked_bytes', raw.max_layer_unpacked_bytes);
  const image = bytes('max_image_unpacked_bytes', raw.max_image_unpacked_bytes);
  if (layer > image) {
    throw new ConfigError('max_layer_unpacked_bytes', layer, `must not exceed max_image_unpacked_bytes (${image})`);
  }
  return { max_layer_unpacked_bytes: layer, max_image_unpacked_bytes: image };
}

function assertLoopbackOrAny(key: string, hostPort: string): void {
  const host = hostPort.slice(0, hostPort.lastIndexOf(':')).replace(/^\[|\]$/g, '');
  if (host !== 'localhost' && net.isIP(host) === 0 && !/^[A-Za-z0-9.-]+$/.test(host)) {
    throw new ConfigError(key, hostPort, 'the host must be an IP address or a host name');
  }
}

/** Splits "host:port" into its parts ("[::1]:9" → ["::1", 9]). */
export function splitHostPort(hostPort: string): { host: string; port: number } {
  const i = hostPort.lastIndexOf(':');
  return { host: hostPort.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(hostPort.slice(i + 1)) };
}
