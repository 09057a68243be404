// Which CNI network a pod joins: the first usable *.conflist / *.conf / *.json (sorted by
// name) in cni_conf_dir, else an embedded default. The default is a bridge with the gateway
// on it, host-local IPAM under sandlot's own state dir and NO default route: pods reach the
// bridge subnet and nothing beyond it (a test pod must never leave the node).
import net from 'node:net';
import path from 'node:path';
import { FailedPreconditionError, InvalidArgumentError, errorMessage } from '../errors.js';

/** One plugin entry of a network list, as the plugin will read it (plus what we inject). */
export interface CniPluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

export interface CniNetworkList {
  name: string;
  cniVersion: string;
  disableCheck: boolean;
  plugins: CniPluginConf[];
  /** The file it came from, or "embedded default". */
  source: string;
}

export const DEFAULT_NETWORK_NAME = 'sandlot';
export const EMBEDDED_SOURCE = 'embedded default';
export const CONFIG_EXTENSIONS: readonly string[] = ['.conflist', '.conf', '.json'];
/** The loopback plugin runs on its own for `lo`, before the pod network. */
export const LOOPBACK_NETWORK: CniNetworkList = {
  name: 'cni-loopback',
  cniVersion: '1.0.0',
  disableCheck: true,
  plugins: [{ type: 'loopback' }],
  source: 'embedded loopback',
};

/** Names in a conf dir that may hold a network config, in the order they are tried. */
export function configCandidates(names: readonly string[]): string[] {
  return names.filter((n) => CONFIG_EXTENSIONS.includes(path.extname(n)) && !n.startsWith('.')).sort();
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Parses a .conflist (name, cniVersion, plugins[]) or a single-plugin .conf (type at the top,
 * turned into a one-plugin list, as libcni does). Throws InvalidArgumentError naming the field.
 */
export function parseNetworkConfig(text: string, source: string): CniNetworkList {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new InvalidArgumentError(`parsing CNI config "${source}": ${errorMessage(e)}`);
  }
  if (!isObject(doc)) throw new InvalidArgumentError(`parsing CNI config "${source}": a JSON object is required`);
  const field = (key: string): string => {
    const v = doc[key];
    if (typeof v !== 'string' || v === '') {
      throw new InvalidArgumentError(`parsing CNI config "${source}": field "${key}" = ${JSON.stringify(v)}: a non-empty string is required`);
    }
    return v;
  };
  const name = field('name');
  const cniVersion = field('cniVersion');
  let plugins: CniPluginConf[];
  if (source.endsWith('.conflist') || 'plugins' in doc) {
    const raw = doc.plugins;
    if (!Array.isArray(raw) || raw.length === 0) {
      throw new InvalidArgumentError(`parsing CNI config "${source}": field "plugins" must be a non-empty list`);
    }
    plugins = raw.map((p, i) => {
      if (!isObject(p) || typeof p.type !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(p.type)) {
        throw new InvalidArgumentError(
          `parsing CNI config "${source}": plugins[${i}].type = ${JSON.stringify(isObject(p) ? p.type : p)}: a plugin binary name is required`,
        );
      }
      return p as CniPluginConf;
    });
  } else {
    const type = field('type');
    if (!/^[A-Za-z0-9_.-]+$/.test(type)) {
      throw new InvalidArgumentError(`parsing CNI config "${source}": field "type" = "${type}": a plugin binary name is required`);
    }
    const plugin: Record<string, unknown> = { ...doc };
    delete plugin.name;
    delete plugin.cniVersion;
    plugins = [plugin as CniPluginConf];
  }
  return { name, cniVersion, disableCheck: doc.disableCheck === true, plugins, source };
}

export interface DefaultNetworkOptions {
  bridge: string;
  /** One or more CIDRs (e.g. the node's pod CIDR, dual stack as two), each an IPAM range. */
  subnets: string[];
  /** host-local's dataDir: under sandlot's state dir, never the global /var/lib/cni. */
  ipamDataDir: string;
}

export function defaultNetworkList(opts: DefaultNetworkOptions): CniNetworkList {
  return {
    name: DEFAULT_NETWORK_NAME,
    cniVersion: '1.0.0',
    disableCheck: false,
    source: EMBEDDED_SOURCE,
    plugins: [
      {
        type: 'bridge',
        bridge: opts.bridge,
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        // No `routes`: without 0.0.0.0/0 the pod only reaches its own subnet.
        ipam: {
          type: 'host-local',
          dataDir: opts.ipamDataDir,
          ranges: opts.subnets.map((subnet) => [{ subnet }]),
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

/** Validates a pod CIDR list from UpdateRuntimeConfig ("10.244.1.0/24[,fd00::/64]"). */
export function parsePodCidrs(value: string): string[] {
  const parts = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const cidr of parts) {
    const m = /^([^/]+)\/(\d{1,3})$/.exec(cidr);
    const family = m ? net.isIP(m[1]) : 0;
    const prefix = m ? Number(m[2]) : -1;
    const max = family === 4 ? 30 : 126;
    if (family === 0 || prefix < 8 || prefix > max) {
      throw new InvalidArgumentError(
        `setting pod CIDR: "${cidr}" in "${value}": an IPv4 or IPv6 CIDR with a prefix of /8 to /${family === 6 ? 126 : 30} is required`,
      );
    }
  }
  return parts;
}

/** Reads a directory and files; the OS side of config loading, swappable in unit tests. */
export interface ConfigReader {
  /** Names in `dir`; [] when it does not exist. */
  list(dir: string): string[];
  read(file: string): string;
}

export interface SelectedConfig {
  list: CniNetworkList;
  /** Files that were skipped, with why (for Status). */
  skipped: string[];
}

/**
 * The first valid config file wins; with no candidate files the default is used. When
 * files exist but none is valid, the operator meant a config: that is an error, not a
 * silent fall-back to a network they did not ask for.
 */
export function selectNetworkConfig(dir: string, reader: ConfigReader, fallback: () => CniNetworkList): SelectedConfig {
  const candidates = configCandidates(reader.list(dir));
  if (candidates.length === 0) return { list: fallback(), skipped: [] };
  const skipped: string[] = [];
  for (const name of candidates) {
    const file = path.join(dir, name);
    try {
      return { list: parseNetworkConfig(reader.read(file), file), skipped };
    } catch (e) {
      skipped.push(errorMessage(e));
    }
  }
  throw new FailedPreconditionError(`loading CNI config from "${dir}": no usable file: ${skipped.join('; ')}`);
}
