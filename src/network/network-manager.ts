// Pod networking: a pinned netns per pod and CNI ADD/CHECK/DEL on it.
//
//   createNetns ──► setUp (loopback ADD on lo, network ADD on eth0) ──► check ──► tearDown ──► removeNetns
//                        │ failure: DEL of everything, then the error           (DEL in reverse; last pod:
//                        ▼                                                       bridge removed BRIDGE_LINGER_MS later)
//                   result cache (<state_dir>/cni/results/<podId>.json), written BEFORE the ADD,
//                   so a crash half-way still leaves what the DEL needs: no leaked IP (containerd#5768).
//
// Host-network pods never come here: they have no netns and skip CNI.
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { SandlotConfig } from '../config/types.js';
import { FailedPreconditionError, InvalidArgumentError, errorMessage, wrapError } from '../errors.js';
import { HOST_BRIDGE_OPS, type BridgeOps } from './bridge-ops.js';
import {
  LOOPBACK_NETWORK,
  defaultNetworkList,
  parsePodCidrs,
  selectNetworkConfig,
  type CniNetworkList,
  type ConfigReader,
  type SelectedConfig,
} from './cni-config.js';
import { ProcessPluginExecutor, type PluginExecutor } from './cni-exec.js';
import { podIps } from './cni-result.js';
import { CniRunner, type CniPortMapping, type RuntimeConf } from './cni-runner.js';
import { NetnsStore, validatePodId, type InterfaceCounters, type NetnsOps, type PodUserns } from './netns-store.js';
import { ResultCache } from './result-cache.js';
import { SharedExclusiveLock } from '../util/shared-exclusive-lock.js';

export interface PortMapping {
  protocol: 'TCP' | 'UDP' | 'SCTP';
  containerPort: number;
  hostPort: number;
  hostIp: string;
}

export interface PodNetworkRequest {
  /** Sandbox id (K8S_POD_INFRA_CONTAINER_ID, CNI_CONTAINERID). */
  podId: string;
  name: string;
  namespace: string;
  uid: string;
  netnsPath: string;
  portMappings: PortMapping[];
}

export interface PodNetworkResult {
  ip: string;
  additionalIps: string[];
  interface: string;
}

export interface NetworkStatus {
  ready: boolean;
  reason: string;
  message: string;
}

export interface NetworkManagerOptions {
  config: SandlotConfig;
  log: Logger;
  /** Test seams; the real OS by default. */
  exec?: PluginExecutor;
  netnsOps?: NetnsOps;
  bridgeOps?: BridgeOps;
  configReader?: ConfigReader;
  /** How long a bridge without pods stays for the next pod (default BRIDGE_LINGER_MS; 0: removed at once). */
  bridgeLingerMs?: number;
}

/**
 * A CNI bridge without pods is kept this long for the next pod: deleting it with the last
 * pod and making it again with the next cost a pod lifecycle two more processes and the
 * bridge's setup (issue 13: 203 times in one run of 78 pod tests). close() removes it.
 */
export const BRIDGE_LINGER_MS = 60_000;

export const POD_INTERFACE = 'eth0';
export const NOT_READY_REASON = 'NetworkPluginNotReady';
const PROTOCOLS: ReadonlySet<string> = new Set(['TCP', 'UDP', 'SCTP']);

const FS_CONFIG_READER: ConfigReader = {
  list(dir) {
    try {
      return fs.readdirSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  },
  read: (file) => fs.readFileSync(file, 'utf8'),
};

export class NetworkManager {
  private readonly config: SandlotConfig;
  private readonly log: Logger;
  private readonly runner: CniRunner;
  private readonly netns: NetnsStore;
  private readonly cache: ResultCache;
  private readonly bridges: BridgeOps;
  private readonly reader: ConfigReader;
  private readonly lock = new SharedExclusiveLock();
  private readonly ipamDataDir: string;
  private podCidrs: string[] | undefined;
  private readonly bridgeLingerMs: number;
  /** Bridges whose last pod left, each with its pending removal. */
  private readonly bridgeTimers = new Map<string, NodeJS.Timeout>();

  private constructor(opts: NetworkManagerOptions) {
    this.config = opts.config;
    this.log = opts.log;
    const cniDir = path.join(opts.config.state_dir, 'cni');
    this.ipamDataDir = path.join(cniDir, 'networks');
    this.cache = new ResultCache(path.join(cniDir, 'results'));
    this.runner = new CniRunner({ binDirs: opts.config.cni_bin_dirs, exec: opts.exec ?? new ProcessPluginExecutor() });
    this.netns = new NetnsStore({ dir: path.join(opts.config.state_dir, 'netns'), ...(opts.netnsOps ? { ops: opts.netnsOps } : {}) });
    this.bridges = opts.bridgeOps ?? HOST_BRIDGE_OPS;
    this.reader = opts.configReader ?? FS_CONFIG_READER;
    this.bridgeLingerMs = opts.bridgeLingerMs ?? BRIDGE_LINGER_MS;
  }

  static create(opts: NetworkManagerOptions): Promise<NetworkManager> {
    return promised(() => {
      const m = new NetworkManager(opts);
      m.netns.init();
      // Before any call: temp files of saves a crash interrupted (issue 11 item 3).
      const swept = m.cache.removeTemps();
      if (swept > 0) m.log.warn({ count: swept }, 'removed CNI result temp files left by a crash');
      return m;
    });
  }

  /** At daemon shutdown: removes the bridges no pod uses, unmounts the netns dir when no pod uses it. */
  async close(): Promise<void> {
    const lingering = [...this.bridgeTimers.keys()];
    for (const t of this.bridgeTimers.values()) clearTimeout(t);
    this.bridgeTimers.clear();
    await this.removeIdleBridgesNow(lingering).catch((e: unknown) => this.log.warn({ err: e }, 'removing idle bridge'));
    await promised(() => this.netns.release());
  }

  /** The network list new pods join now (config file or the embedded default). */
  currentNetwork(): CniNetworkList {
    return this.selectNetwork().list;
  }

  private selectNetwork(): SelectedConfig {
    return selectNetworkConfig(this.config.cni_conf_dir, this.reader, () =>
      defaultNetworkList({
        bridge: this.config.cni_default_bridge,
        subnets: this.podCidrs ?? [this.config.cni_default_subnet],
        ipamDataDir: this.ipamDataDir,
      }),
    );
  }

  /** Ready only with a usable network config whose plugins (and loopback) all exist. */
  status(): Promise<NetworkStatus> {
    return promised(() => this.statusNow());
  }

  private statusNow(): NetworkStatus {
    let selected: SelectedConfig;
    try {
      selected = this.selectNetwork();
    } catch (e) {
      return { ready: false, reason: NOT_READY_REASON, message: errorMessage(e) };
    }
    const { list, skipped } = selected;
    const missing = [...new Set([...this.runner.missingPlugins(LOOPBACK_NETWORK), ...this.runner.missingPlugins(list)])];
    if (missing.length > 0) {
      return {
        ready: false,
        reason: NOT_READY_REASON,
        message: `CNI network "${list.name}" (${list.source}): plugins ${missing.map((m) => `"${m}"`).join(', ')} not found in ${this.config.cni_bin_dirs.map((d) => `"${d}"`).join(', ')}`,
      };
    }
    const note = skipped.length > 0 ? `; skipped: ${skipped.join('; ')}` : '';
    return { ready: true, reason: '', message: `CNI network "${list.name}" (${list.source})${note}` };
  }

  /** The node's pod CIDR(s) from UpdateRuntimeConfig; feeds the embedded default's IPAM ranges. */
  setPodCidr(cidr: string): void {
    const cidrs = parsePodCidrs(cidr);
    this.podCidrs = cidrs.length > 0 ? cidrs : undefined;
    this.log.info({ podCidr: cidr }, 'pod CIDR set for the default CNI network');
  }

  /** Where a pod's netns is pinned (createNetns), known before it is made. */
  netnsPath(podId: string): string {
    return this.netns.path(podId);
  }

  /** The pod's pinned netns; with `userns` (S19) inside a new user namespace pinned at usernsPath(podId). */
  createNetns(podId: string, userns?: PodUserns): Promise<string> {
    return userns === undefined ? promised(() => this.netns.create(podId)) : this.netns.createInUserns(podId, userns);
  }

  /** Where a pod's user namespace is pinned (createNetns with `userns`). */
  usernsPath(podId: string): string {
    return this.netns.usernsPath(podId);
  }

  removeNetns(podId: string): Promise<void> {
    return promised(() => this.netns.remove(podId));
  }

  /** Pod IDs with a netns file (pinned, or left half-made by a crash: removeNetns cleans both). */
  listPinned(): Promise<string[]> {
    return promised(() => this.netns.list());
  }

  /** Pod IDs whose CNI attachment is still recorded (each needs a tearDown before it goes). */
  listAttached(): Promise<string[]> {
    return promised(() => this.cache.list());
  }

  async setUp(req: PodNetworkRequest): Promise<PodNetworkResult> {
    const started = Date.now();
    const what = `setting up network of pod "${req.podId}"`;
    const rt = this.runtimeConf(req, POD_INTERFACE);
    if (!this.netns.isPinned(req.netnsPath)) {
      throw new FailedPreconditionError(`${what}: no network namespace pinned at "${req.netnsPath}"`);
    }
    let list: CniNetworkList;
    try {
      list = this.currentNetwork();
    } catch (e) {
      throw wrapError(what, e);
    }
    const missing = this.runner.missingPlugins(list).concat(this.runner.missingPlugins(LOOPBACK_NETWORK));
    if (missing.length > 0) {
      throw new FailedPreconditionError(
        `${what}: CNI plugins ${missing.map((m) => `"${m}"`).join(', ')} not found in ${this.config.cni_bin_dirs.map((d) => `"${d}"`).join(', ')}`,
      );
    }
    if (this.cache.load(req.podId) !== undefined) {
      throw new FailedPreconditionError(`${what}: the pod's network is already set up; tear it down first`);
    }
    const outcome = await this.lock.shared(async () => {
      // Recorded before the ADD: whatever happens next, a DEL knows what to undo.
      await this.cache.save({ version: 1, podId: req.podId, ifName: POD_INTERFACE, network: list, portMappings: rt.portMappings, result: {} });
      try {
        // `lo` is up already: the netns store sets it up when it makes the netns.
        const result = await this.runner.add(list, rt);
        await this.cache.save({ version: 1, podId: req.podId, ifName: POD_INTERFACE, network: list, portMappings: rt.portMappings, result: result.raw });
        return { ok: true as const, ips: podIps(result) };
      } catch (e) {
        await this.undoAdd(req.podId, list, rt);
        return { ok: false as const, err: e };
      }
    });
    if (!outcome.ok) {
      // Outside the shared section: removing the bridge takes the lock exclusively.
      await this.removeIdleBridges(list).catch((e: unknown) => this.log.warn({ err: e }, 'removing idle bridge'));
      throw wrapError(what, outcome.err);
    }
    this.log.info({ podSandboxId: req.podId, ip: outcome.ips.ip, network: list.name, durationMs: Date.now() - started }, 'pod network set up');
    return { ...outcome.ips, interface: POD_INTERFACE };
  }

  async check(req: PodNetworkRequest): Promise<void> {
    const what = `checking network of pod "${req.podId}"`;
    const rt = this.runtimeConf(req, POD_INTERFACE);
    const cached = this.cache.load(req.podId);
    if (cached === undefined) throw new FailedPreconditionError(`${what}: the pod has no network set up`);
    if (!this.netns.isPinned(req.netnsPath)) {
      throw new FailedPreconditionError(`${what}: no network namespace pinned at "${req.netnsPath}"`);
    }
    try {
      await this.runner.check(cached.network, { ...rt, portMappings: cached.portMappings }, cached.result);
    } catch (e) {
      throw wrapError(what, e);
    }
  }

  /** CNI DEL with the network and result recorded at ADD; idempotent. Call before removeNetns. */
  async tearDown(req: PodNetworkRequest): Promise<void> {
    const started = Date.now();
    const what = `tearing down network of pod "${req.podId}"`;
    validatePodId(req.podId);
    const cached = this.cache.load(req.podId);
    if (cached === undefined) return; // never set up, or already torn down
    const rt = this.runtimeConf(req, cached.ifName);
    const conf = { ...rt, portMappings: cached.portMappings };
    // A netns already gone took the veth with it; the plugins then only release what they hold.
    if (!this.netns.isPinned(req.netnsPath)) conf.netns = '';
    try {
      await this.lock.shared(async () => {
        const prev = Object.keys(cached.result).length > 0 ? cached.result : undefined;
        // No loopback DEL: it only takes lo down in a netns that holds no process any more
        // and is removed next (issue 13: one process fewer per pod).
        await this.runner.del(cached.network, conf, prev);
      });
    } catch (e) {
      throw wrapError(what, e);
    }
    this.cache.remove(req.podId);
    this.log.info({ podSandboxId: req.podId, network: cached.network.name, durationMs: Date.now() - started }, 'pod network torn down');
    await this.removeIdleBridges(cached.network);
  }

  /** Counters of every interface inside the pod's netns (lo included), read from there. */
  podNetworkCounters(netnsPath: string): Promise<InterfaceCounters[]> {
    return promised(() => {
      if (!this.netns.isPinned(netnsPath)) {
        throw new FailedPreconditionError(`reading network counters: no network namespace pinned at "${netnsPath}"`);
      }
      return this.netns.counters(netnsPath);
    });
  }

  /** Runs under the shared lock: DEL of what the failed ADD may have made. */
  private async undoAdd(podId: string, list: CniNetworkList, rt: RuntimeConf): Promise<void> {
    try {
      await this.runner.del(list, rt, undefined);
      this.cache.remove(podId);
    } catch (e) {
      // The record stays, so a later tearDown (or recovery) retries the DEL.
      this.log.warn({ podSandboxId: podId, err: e }, 'undoing a failed CNI ADD');
    }
  }

  /**
   * The CNI bridge plugin's DEL leaves the bridge: remove it when no pod is attached any
   * more, bridgeLingerMs after the last one left (each leaving pod restarts the wait).
   */
  private async removeIdleBridges(list: CniNetworkList): Promise<void> {
    const names = list.plugins.filter((p) => p.type === 'bridge').map((p) => (typeof p.bridge === 'string' && p.bridge !== '' ? p.bridge : 'cni0'));
    if (this.bridgeLingerMs === 0) return this.removeIdleBridgesNow(names);
    for (const bridge of names) {
      clearTimeout(this.bridgeTimers.get(bridge));
      const timer = setTimeout(() => {
        this.bridgeTimers.delete(bridge);
        this.removeIdleBridgesNow([bridge]).catch((e: unknown) => this.log.warn({ err: e, bridge }, 'removing idle bridge'));
      }, this.bridgeLingerMs);
      timer.unref();
      this.bridgeTimers.set(bridge, timer);
    }
  }

  /** Removes each of these bridges that has no pod attached (a pod coming meanwhile keeps it). */
  private async removeIdleBridgesNow(names: string[]): Promise<void> {
    if (names.length === 0) return;
    await this.lock.exclusive(async () => {
      for (const bridge of names) {
        const ports = this.bridges.ports(bridge);
        if (ports === undefined || ports.length > 0) continue;
        await this.bridges.remove(bridge);
        this.log.info({ bridge }, 'removed CNI bridge: no pod left on it');
      }
    });
  }

  private runtimeConf(req: PodNetworkRequest, ifName: string): RuntimeConf {
    validatePodId(req.podId);
    const args: Array<[string, string]> = [
      ['IgnoreUnknown', '1'],
      ['K8S_POD_NAMESPACE', req.namespace],
      ['K8S_POD_NAME', req.name],
      ['K8S_POD_INFRA_CONTAINER_ID', req.podId],
      ['K8S_POD_UID', req.uid],
    ];
    for (const [k, v] of args) {
      if (/[;=\s]/.test(v)) throw new InvalidArgumentError(`pod "${req.podId}": ${k} = "${v}": ";", "=" and spaces are not allowed in CNI_ARGS`);
    }
    return { containerId: req.podId, netns: req.netnsPath, ifName, args, portMappings: toCniPortMappings(req) };
  }
}

/** CRI port mappings → portmap's runtimeConfig; mappings without a host port publish nothing. */
export function toCniPortMappings(req: PodNetworkRequest): CniPortMapping[] {
  const out: CniPortMapping[] = [];
  req.portMappings.forEach((pm, i) => {
    const field = `port_mappings[${i}]`;
    if (!PROTOCOLS.has(pm.protocol)) {
      throw new InvalidArgumentError(`pod "${req.podId}": ${field}.protocol = "${pm.protocol}": allowed TCP, UDP, SCTP`);
    }
    for (const [key, v] of [
      ['container_port', pm.containerPort],
      ['host_port', pm.hostPort],
    ] as const) {
      if (!Number.isInteger(v) || v < 0 || v > 65535) {
        throw new InvalidArgumentError(`pod "${req.podId}": ${field}.${key} = ${v}: a port 0-65535 is required`);
      }
    }
    if (pm.hostPort === 0) return;
    if (pm.containerPort === 0) {
      throw new InvalidArgumentError(`pod "${req.podId}": ${field}.container_port = 0: a port 1-65535 is required with a host port`);
    }
    out.push({
      hostPort: pm.hostPort,
      containerPort: pm.containerPort,
      protocol: pm.protocol.toLowerCase(),
      ...(pm.hostIp !== '' ? { hostIP: pm.hostIp } : {}),
    });
  });
  return out;
}

/**
 * `fn`'s result as a promise, a throw as a rejection: the synchronous steps behind this
 * class's async interface fail the way its callers expect (as an async method would).
 */
function promised<T>(fn: () => T): Promise<T> {
  return new Promise<T>((resolve) => resolve(fn()));
}
