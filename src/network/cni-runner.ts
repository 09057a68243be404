// Running a CNI network list the way libcni does: ADD through the plugins in order, each
// getting the previous one's result as prevResult; CHECK in order with the cached ADD
// result; DEL in reverse. Unlike libcni, DEL goes on through every plugin when one fails
// and reports all failures, so one broken plugin never strands the IPAM allocation
// another one holds (containerd#5768).
import fs from 'node:fs';
import path from 'node:path';
import { DeadlineExceededError, FailedPreconditionError, InternalError, errorMessage } from '../errors.js';
import { childSpan, SPAN_ATTR, withSpanAttributes } from '../observe/spans.js';
import type { CniNetworkList, CniPluginConf } from './cni-config.js';
import type { PluginExecutor } from './cni-exec.js';
import { parseCniError, parseCniResult, supportsCheck, type CniResult } from './cni-result.js';

/** Upper bound for one plugin call; a hung plugin must not hang RunPodSandbox. */
export const CNI_PLUGIN_TIMEOUT_MS = 60_000;

/** A port mapping as the portmap plugin reads it from runtimeConfig. */
export interface CniPortMapping {
  hostPort: number;
  containerPort: number;
  protocol: string;
  hostIP?: string;
}

/** What differs per pod in a call (libcni's RuntimeConf). */
export interface RuntimeConf {
  containerId: string;
  /** "" when the netns is gone (DEL only: plugins then just release what they hold). */
  netns: string;
  ifName: string;
  /** CNI_ARGS pairs, in order. */
  args: Array<[string, string]>;
  portMappings: CniPortMapping[];
}

type Command = 'ADD' | 'CHECK' | 'DEL';

/** The span of one network list's ADD/CHECK/DEL (its plugins' spans below it); all of them name the pod. */
function cniSpan<T>(cmd: Command, list: CniNetworkList, rt: RuntimeConf, fn: () => Promise<T>): Promise<T> {
  const arg = (k: string) => rt.args.find(([key]) => key === k)?.[1];
  const pod = {
    [SPAN_ATTR.podSandboxId]: rt.containerId,
    [SPAN_ATTR.podName]: arg('K8S_POD_NAME'),
    [SPAN_ATTR.podNamespace]: arg('K8S_POD_NAMESPACE'),
  };
  return withSpanAttributes(pod, () => childSpan(`CNI ${cmd}`, { 'cni.command': cmd, 'cni.network': list.name, 'cni.ifname': rt.ifName }, fn));
}

/**
 * The config one plugin gets on stdin: its own entry plus the list's name and cniVersion,
 * prevResult when there is one, and runtimeConfig for the capabilities it declares.
 */
export function buildPluginConfig(
  list: CniNetworkList,
  plugin: CniPluginConf,
  prevResult: Record<string, unknown> | undefined,
  rt: RuntimeConf,
): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  delete conf.runtimeConfig;
  delete conf.prevResult;
  if (prevResult !== undefined) conf.prevResult = prevResult;
  const runtimeConfig: Record<string, unknown> = {};
  if (plugin.capabilities?.portMappings === true && rt.portMappings.length > 0) {
    runtimeConfig.portMappings = rt.portMappings;
  }
  if (Object.keys(runtimeConfig).length > 0) conf.runtimeConfig = runtimeConfig;
  return conf;
}

/** CNI_ARGS: "K=V;K=V". Values are checked by the caller to hold neither ";" nor "=". */
export function formatCniArgs(args: Array<[string, string]>): string {
  return args.map(([k, v]) => `${k}=${v}`).join(';');
}

/**
 * The reference portmap plugin without port mappings is a no-op (measured with Debian's
 * containernetworking-plugins: ADD prints prevResult back, CHECK and DEL exit 0 without
 * touching the netns or iptables): such a call is answered here, without a process
 * (issue 13: two fewer per pod). With mappings, or with no result to pass on, it runs.
 */
function idlePortmap(cmd: Command, plugin: CniPluginConf, prevResult: Record<string, unknown> | undefined, rt: RuntimeConf): boolean {
  if (plugin.type !== 'portmap' || rt.portMappings.length > 0) return false;
  return cmd !== 'ADD' || prevResult !== undefined;
}

export interface CniRunnerOptions {
  binDirs: string[];
  exec: PluginExecutor;
  timeoutMs?: number;
}

export class CniRunner {
  private readonly binDirs: string[];
  private readonly exec: PluginExecutor;
  private readonly timeoutMs: number;

  constructor(opts: CniRunnerOptions) {
    this.binDirs = opts.binDirs;
    this.exec = opts.exec;
    this.timeoutMs = opts.timeoutMs ?? CNI_PLUGIN_TIMEOUT_MS;
  }

  /** The executable for a plugin type in the first bin dir that has it. */
  findPlugin(type: string): string | undefined {
    for (const dir of this.binDirs) {
      const file = path.join(dir, type);
      try {
        fs.accessSync(file, fs.constants.X_OK);
        if (fs.statSync(file).isFile()) return file;
      } catch {
        // not in this dir
      }
    }
    return undefined;
  }

  /** Plugin types (including IPAM ones) of `list` with no executable in any bin dir. */
  missingPlugins(list: CniNetworkList): string[] {
    const types = new Set<string>();
    for (const p of list.plugins) {
      types.add(p.type);
      const ipam = p.ipam as { type?: unknown } | undefined;
      if (ipam && typeof ipam.type === 'string') types.add(ipam.type);
    }
    return [...types].filter((t) => this.findPlugin(t) === undefined);
  }

  add(list: CniNetworkList, rt: RuntimeConf): Promise<CniResult> {
    return cniSpan('ADD', list, rt, () => this.addNow(list, rt));
  }

  private async addNow(list: CniNetworkList, rt: RuntimeConf): Promise<CniResult> {
    let prev: CniResult | undefined;
    for (const plugin of list.plugins) {
      const out = await this.call('ADD', list, plugin, prev?.raw, rt);
      prev = parseCniResult(out, this.what('ADD', list, plugin));
    }
    if (prev === undefined) throw new InternalError(`adding network "${list.name}": the list has no plugins`);
    return prev;
  }

  async check(list: CniNetworkList, rt: RuntimeConf, prevResult: Record<string, unknown>): Promise<void> {
    if (list.disableCheck || !supportsCheck(list.cniVersion)) return;
    await cniSpan('CHECK', list, rt, () => this.checkNow(list, rt, prevResult));
  }

  private async checkNow(list: CniNetworkList, rt: RuntimeConf, prevResult: Record<string, unknown>): Promise<void> {
    for (const plugin of list.plugins) {
      try {
        await this.call('CHECK', list, plugin, prevResult, rt);
      } catch (e) {
        if (!isPortmapIpv6CheckBug(plugin, prevResult, e)) throw e;
      }
    }
  }

  /** Every plugin in reverse, even after a failure; throws an AggregateError of all failures. */
  del(list: CniNetworkList, rt: RuntimeConf, prevResult: Record<string, unknown> | undefined): Promise<void> {
    return cniSpan('DEL', list, rt, () => this.delNow(list, rt, prevResult));
  }

  private async delNow(list: CniNetworkList, rt: RuntimeConf, prevResult: Record<string, unknown> | undefined): Promise<void> {
    const errors: unknown[] = [];
    for (const plugin of [...list.plugins].reverse()) {
      try {
        await this.call('DEL', list, plugin, prevResult, rt);
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) {
      throw new AggregateError(errors, `deleting network "${list.name}": ${errors.map(errorMessage).join('; ')}`);
    }
  }

  private what(cmd: Command, list: CniNetworkList, plugin: CniPluginConf): string {
    return `running CNI plugin "${plugin.type}" ${cmd} for network "${list.name}"`;
  }

  private call(cmd: Command, list: CniNetworkList, plugin: CniPluginConf, prevResult: Record<string, unknown> | undefined, rt: RuntimeConf): Promise<string> {
    if (idlePortmap(cmd, plugin, prevResult, rt)) return Promise.resolve(cmd === 'ADD' ? JSON.stringify(prevResult) : '');
    return childSpan(`CNI ${cmd} ${plugin.type}`, { 'cni.command': cmd, 'cni.network': list.name, 'cni.plugin': plugin.type }, () =>
      this.callNow(cmd, list, plugin, prevResult, rt),
    );
  }

  private async callNow(
    cmd: Command,
    list: CniNetworkList,
    plugin: CniPluginConf,
    prevResult: Record<string, unknown> | undefined,
    rt: RuntimeConf,
  ): Promise<string> {
    const what = this.what(cmd, list, plugin);
    const binary = this.findPlugin(plugin.type);
    if (binary === undefined) {
      throw new FailedPreconditionError(`${what}: no executable "${plugin.type}" in ${this.binDirs.map((d) => `"${d}"`).join(', ')}`);
    }
    const env: Record<string, string> = {
      CNI_COMMAND: cmd,
      CNI_CONTAINERID: rt.containerId,
      CNI_NETNS: rt.netns,
      CNI_IFNAME: rt.ifName,
      CNI_ARGS: formatCniArgs(rt.args),
      CNI_PATH: this.binDirs.join(':'),
    };
    const stdin = JSON.stringify(buildPluginConfig(list, plugin, prevResult, rt));
    let run;
    try {
      run = await this.exec.run(binary, env, stdin, this.timeoutMs);
    } catch (e) {
      throw new InternalError(`${what}: executing "${binary}": ${errorMessage(e)}`, { cause: e });
    }
    if (run.timedOut) throw new DeadlineExceededError(`${what}: no answer within ${this.timeoutMs} ms, killed`);
    if (run.code !== 0) {
      const pe = parseCniError(run.stdout);
      const detail = pe
        ? `${pe.msg}${pe.details ? `: ${pe.details}` : ''} (code ${pe.code})`
        : `exit status ${run.code}: ${(run.stdout + run.stderr).trim().slice(0, 500) || 'no output'}`;
      throw new InternalError(`${what}: ${detail}`);
    }
    return run.stdout;
  }
}

/**
 * portmap (before containernetworking/plugins#819 was fixed, as in Debian's build) checks
 * ip6tables for every address, so CHECK of an IPv4-only pod fails with "could not check
 * ipv6 dnat". It checks IPv4 first and only reaches that message after the IPv4 rules
 * were found, so for a pod without IPv6 addresses the failure says nothing about it.
 */
export function isPortmapIpv6CheckBug(plugin: CniPluginConf, prevResult: Record<string, unknown> | undefined, e: unknown): boolean {
  if (plugin.type !== 'portmap' || !errorMessage(e).includes('could not check ipv6 dnat')) return false;
  if (prevResult === undefined) return false;
  const ips = parseCniResult(JSON.stringify(prevResult), 'reading prevResult').ips;
  return ips.length > 0 && ips.every((ip) => !ip.address.includes(':'));
}
