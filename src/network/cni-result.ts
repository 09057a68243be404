// Reading what CNI plugins print: results (0.1.0/0.2.0 `ip4`/`ip6`; 0.3.x, 0.4.0 and
// 1.0.0 `ips[].address` with an optional `interface` index) and errors ({code, msg, details}).
import net from 'node:net';
import { InternalError, errorMessage } from '../errors.js';

export interface CniIpConfig {
  /** CIDR notation, e.g. "10.88.0.5/16". */
  address: string;
  gateway?: string;
  /** Index into `interfaces`, when the plugin said. */
  interface?: number;
}

export interface CniInterface {
  name: string;
  mac?: string;
  /** Set for interfaces inside the pod's netns. */
  sandbox?: string;
}

export interface CniResult {
  cniVersion: string;
  interfaces: CniInterface[];
  ips: CniIpConfig[];
  /** The JSON as the plugin printed it; chained on as prevResult. */
  raw: Record<string, unknown>;
}

export interface CniPluginError {
  code: number;
  msg: string;
  details: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses a plugin's stdout on success. `what` names the call for error messages. */
export function parseCniResult(stdout: string, what: string): CniResult {
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch (e) {
    throw new InternalError(`${what}: parsing result ${JSON.stringify(stdout.slice(0, 200))}: ${errorMessage(e)}`);
  }
  if (!isObject(doc)) throw new InternalError(`${what}: parsing result: a JSON object is required`);
  const cniVersion = typeof doc.cniVersion === 'string' ? doc.cniVersion : '';
  const interfaces: CniInterface[] = [];
  if (Array.isArray(doc.interfaces)) {
    for (const i of doc.interfaces) {
      if (!isObject(i) || typeof i.name !== 'string') continue;
      interfaces.push({
        name: i.name,
        ...(typeof i.mac === 'string' ? { mac: i.mac } : {}),
        ...(typeof i.sandbox === 'string' ? { sandbox: i.sandbox } : {}),
      });
    }
  }
  const ips: CniIpConfig[] = [];
  const addIp = (v: unknown, addressKey: 'address' | 'ip'): void => {
    if (!isObject(v) || typeof v[addressKey] !== 'string') return;
    const address = v[addressKey];
    if (net.isIP(address.split('/')[0]) === 0) {
      throw new InternalError(`${what}: parsing result: ip ${JSON.stringify(address)} is no IP address`);
    }
    ips.push({
      address,
      ...(typeof v.gateway === 'string' ? { gateway: v.gateway } : {}),
      ...(typeof v.interface === 'number' ? { interface: v.interface } : {}),
    });
  };
  if (Array.isArray(doc.ips)) for (const ip of doc.ips) addIp(ip, 'address');
  // Results before 0.3.0 carry one address per family.
  addIp(doc.ip4, 'ip');
  addIp(doc.ip6, 'ip');
  return { cniVersion, interfaces, ips, raw: doc };
}

/** A plugin's error output, if it printed the CNI error object (on stdout, per the spec). */
export function parseCniError(stdout: string): CniPluginError | undefined {
  try {
    const doc: unknown = JSON.parse(stdout);
    if (isObject(doc) && typeof doc.msg === 'string') {
      return {
        code: typeof doc.code === 'number' ? doc.code : 0,
        msg: doc.msg,
        details: typeof doc.details === 'string' ? doc.details : '',
      };
    }
  } catch {
    // not JSON: the caller reports the raw output
  }
  return undefined;
}

/**
 * The pod's addresses (no prefix length): the first IPv4 one is the primary (the CRI's
 * `ip`), the others are additional. Only addresses on an interface inside the sandbox,
 * or not tied to an interface, count.
 */
export function podIps(result: CniResult): { ip: string; additionalIps: string[] } {
  const addrs: string[] = [];
  for (const ip of result.ips) {
    if (ip.interface !== undefined) {
      const iface = result.interfaces[ip.interface];
      if (iface !== undefined && iface.sandbox === undefined) continue;
    }
    const a = ip.address.split('/')[0];
    if (!addrs.includes(a)) addrs.push(a);
  }
  const primary = addrs.find((a) => net.isIPv4(a)) ?? addrs[0] ?? '';
  return { ip: primary, additionalIps: addrs.filter((a) => a !== primary) };
}

/** CHECK exists from CNI 0.4.0 on; older versions skip it. */
export function supportsCheck(cniVersion: string): boolean {
  const [maj = 0, min = 0] = cniVersion.split('.').map(Number);
  return maj >= 1 || (maj === 0 && min >= 4);
}
