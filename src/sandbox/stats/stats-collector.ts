// CRI stats of containers and pods (S13): CPU (cumulative and the nano-cores rate from
// two samples), memory, the writable layer, pod network counters and process counts.
//
//   handler │ container CPU / memory                       │ pod CPU / memory / pids
//   ────────┼──────────────────────────────────────────────┼─────────────────────────
//   runc    │ the container's own cgroup (S13, last rule)  │ the pod cgroup
//   runsc   │ `runsc events --stats`: CPU already S13's    │ the pod cgroup, where the
//           │ share of the pod cgroup (never scaled again);│ whole sandbox runs (the
//           │ memory is the sandbox's                      │ cgroup-parent annotation)
//
// Timestamps are Unix nanoseconds. Figures that cannot be read (a container that is not
// running, a cgroup already gone) are left out rather than reported as zero.
import path from 'node:path';
import type { Logger } from 'pino';
import type { InterfaceCounters } from '../../network/netns-store.js';
import { runtimeFeatures, type RuntimeDriver, type RuntimeStats } from '../../oci/runtime.js';
import type { ContainerFilter } from '../container/container-filter.js';
import type { ContainerRecord } from '../container/container.js';
import { CgroupStatsReader, type CgroupStats, type MemoryStats } from './cgroup-stats.js';
import { CpuRateSampler } from './cpu-share.js';
import type { PodFilter } from '../pod/pod-manager.js';
import type { SandboxRecord } from '../pod/sandbox.js';
import { WritableLayerUsage } from './stats-writable-layer.js';

export interface CpuFigures {
  timestampNs: bigint;
  usageCoreNanoSeconds: bigint;
  /** undefined on the first sample of a container or pod. */
  usageNanoCores: number | undefined;
}

export interface MemoryFigures extends Omit<MemoryStats, 'limitBytes' | 'availableBytes'> {
  timestampNs: bigint;
  availableBytes: number | undefined;
}

export interface LayerFigures {
  timestampNs: bigint;
  mountpoint: string;
  usedBytes: number;
  inodesUsed: number;
}

export interface ContainerStatsSnapshot {
  record: ContainerRecord;
  cpu: CpuFigures | undefined;
  memory: MemoryFigures | undefined;
  writableLayer: LayerFigures | undefined;
  /** OOM kills counted in the container's own cgroup (runc); undefined under runsc. */
  oomKills: number | undefined;
}

export interface PodStatsSnapshot {
  record: SandboxRecord;
  cpu: CpuFigures | undefined;
  memory: MemoryFigures | undefined;
  network: { timestampNs: bigint; interfaces: InterfaceCounters[]; defaultInterface: InterfaceCounters | undefined } | undefined;
  process: { timestampNs: bigint; count: number } | undefined;
  oomKills: number | undefined;
  containers: ContainerStatsSnapshot[];
}

export interface StatsPods {
  list(filter?: PodFilter): ReadonlyArray<Readonly<SandboxRecord>>;
  get(idOrPrefix: string): SandboxRecord;
  driver(handler: string): RuntimeDriver;
}

export interface StatsContainers {
  list(filter?: ContainerFilter): Promise<ContainerRecord[]>;
  status(idOrPrefix: string): Promise<ContainerRecord>;
}

export interface StatsCollectorOptions {
  log: Logger;
  pods: StatsPods;
  containers: StatsContainers;
  /** The overlay upper dir of a container (its writable layer). */
  upperDir: (containerId: string) => string;
  /** Counters of the interfaces in a pod netns (NetworkManager.podNetworkCounters). */
  networkCounters: (netnsPath: string) => Promise<InterfaceCounters[]>;
  cgroups: CgroupStatsReader;
  runscStats?: (driver: RuntimeDriver, id: string) => Promise<RuntimeStats | undefined>;
  layers?: WritableLayerUsage;
  now?: () => bigint;
}

/** The pod's interface as the CNI plugins name it. */
export const DEFAULT_POD_INTERFACE = 'eth0';

export class StatsCollector {
  private readonly log: Logger;
  private readonly pods: StatsPods;
  private readonly containers: StatsContainers;
  private readonly upperDir: (id: string) => string;
  private readonly networkCounters: (netnsPath: string) => Promise<InterfaceCounters[]>;
  private readonly cgroups: CgroupStatsReader;
  private readonly runscStats: (driver: RuntimeDriver, id: string) => Promise<RuntimeStats | undefined>;
  private readonly layers: WritableLayerUsage;
  private readonly now: () => bigint;
  // One sampler per kind: a pod and a container never share a key.
  private readonly containerRates = new CpuRateSampler();
  private readonly podRates = new CpuRateSampler();

  constructor(options: StatsCollectorOptions) {
    this.log = options.log;
    this.pods = options.pods;
    this.containers = options.containers;
    this.upperDir = options.upperDir;
    this.networkCounters = options.networkCounters;
    this.cgroups = options.cgroups;
    this.runscStats = options.runscStats ?? (async (driver, id) => await driver.stats(id));
    this.layers = options.layers ?? new WritableLayerUsage({ log: options.log });
    this.now = options.now ?? (() => BigInt(Date.now()) * 1_000_000n);
  }

  /** ContainerStats: NotFound for an unknown container. */
  async container(idOrPrefix: string): Promise<ContainerStatsSnapshot> {
    return this.containerStats(await this.containers.status(idOrPrefix));
  }

  /** ListContainerStats (filter: id, pod_sandbox_id, labels). */
  async listContainers(filter: Pick<ContainerFilter, 'id' | 'podId' | 'labelSelector'> = {}): Promise<ContainerStatsSnapshot[]> {
    const recs = await this.containers.list(filter);
    if (filter.id === undefined && filter.podId === undefined && filter.labelSelector === undefined) this.forgetGone(recs);
    return Promise.all(recs.map((r) => this.containerStats(r)));
  }

  /** PodSandboxStats: NotFound for an unknown pod. */
  async pod(idOrPrefix: string): Promise<PodStatsSnapshot> {
    return this.podStats(this.pods.get(idOrPrefix));
  }

  /**
   * ListPodSandboxStats (filter: id, labels). `rates: false` (the metrics scrape) reads
   * without taking a rate sample, so it does not shorten the kubelet's sampling window.
   */
  async listPods(filter: Pick<PodFilter, 'id' | 'labelSelector'> = {}, options: { rates?: boolean } = {}): Promise<PodStatsSnapshot[]> {
    const recs = this.pods.list(filter);
    const rates = options.rates !== false;
    if (rates && filter.id === undefined && filter.labelSelector === undefined) {
      this.podRates.retain(recs.map((r) => r.id));
    }
    return Promise.all(recs.map((r) => this.podStats(r, rates)));
  }

  private forgetGone(recs: ContainerRecord[]): void {
    const ids = recs.map((r) => r.id);
    this.containerRates.retain(ids);
    this.layers.retain(ids);
  }

  private async containerStats(rec: ContainerRecord, rates = true): Promise<ContainerStatsSnapshot> {
    const writableLayer = await this.layer(rec);
    const out: ContainerStatsSnapshot = { record: rec, cpu: undefined, memory: undefined, writableLayer, oomKills: undefined };
    if (rec.state !== 'running') return out;
    if (runtimeFeatures(rec.runtimeType).containerStats === 'runtime') {
      let driver: RuntimeDriver;
      try {
        driver = this.pods.driver(rec.runtimeHandler);
      } catch {
        return out; // the handler is no longer configured
      }
      const ts = this.now();
      const rs = await this.runscStats(driver, rec.id).catch((e: unknown) => {
        this.log.debug({ err: e, containerId: rec.id }, 'reading runsc stats');
        return undefined;
      });
      if (rs === undefined) return out;
      // S13 is applied by runsc already (src/oci/runsc-stats.ts): used as reported.
      out.cpu = this.cpuFigures(rates ? this.containerRates : undefined, rec.id, ts, rs.cpuUsageNs);
      if (rs.memoryUsageBytes !== undefined) {
        // The sandbox kernel reports no page cache split, so usage is the working set.
        out.memory = {
          timestampNs: ts,
          usageBytes: rs.memoryUsageBytes,
          workingSetBytes: rs.memoryUsageBytes,
          rssBytes: rs.memoryUsageBytes,
          pageFaults: 0,
          majorPageFaults: 0,
          availableBytes: undefined,
        };
      }
      return out;
    }
    // S13: where each container has its own cgroup, its own cgroup is the answer.
    const cg = await this.readCgroup(rec.cgroupPath, { containerId: rec.id });
    if (cg === undefined) return out;
    if (cg.cpuUsageNs !== undefined) out.cpu = this.cpuFigures(rates ? this.containerRates : undefined, rec.id, cg.timestampNs, cg.cpuUsageNs);
    out.memory = memoryFigures(cg);
    out.oomKills = cg.oomKills;
    return out;
  }

  private async layer(rec: ContainerRecord): Promise<LayerFigures | undefined> {
    if (!rec.rootfsPrepared) return undefined;
    const upper = this.upperDir(rec.id);
    try {
      const u = await this.layers.usage(rec.id, upper);
      // fs_id: the directory holding every container's layers (<root_dir>/containers).
      return { timestampNs: u.timestampNs, mountpoint: path.dirname(path.dirname(path.dirname(upper))), usedBytes: u.usedBytes, inodesUsed: u.inodesUsed };
    } catch (e) {
      this.log.debug({ err: e, containerId: rec.id }, 'measuring the writable layer');
      return undefined;
    }
  }

  private async podStats(rec: SandboxRecord, rates = true): Promise<PodStatsSnapshot> {
    const containers = await this.containers.list({ podId: rec.id });
    const out: PodStatsSnapshot = {
      record: rec,
      cpu: undefined,
      memory: undefined,
      network: undefined,
      process: undefined,
      oomKills: undefined,
      containers: await Promise.all(containers.map((c) => this.containerStats(c, rates))),
    };
    if (rec.state !== 'running') return out;
    const cg = await this.readCgroup(rec.podCgroup, { podSandboxId: rec.id });
    if (cg !== undefined) {
      if (cg.cpuUsageNs !== undefined) out.cpu = this.cpuFigures(rates ? this.podRates : undefined, rec.id, cg.timestampNs, cg.cpuUsageNs);
      out.memory = memoryFigures(cg);
      if (cg.pids !== undefined) out.process = { timestampNs: cg.timestampNs, count: cg.pids };
      out.oomKills = cg.oomKills;
    }
    if (rec.netnsPath !== undefined) {
      const ts = this.now();
      try {
        const interfaces = (await this.networkCounters(rec.netnsPath)).filter((i) => i.name !== 'lo');
        out.network = { timestampNs: ts, interfaces, defaultInterface: interfaces.find((i) => i.name === DEFAULT_POD_INTERFACE) ?? interfaces[0] };
      } catch (e) {
        this.log.debug({ err: e, podSandboxId: rec.id }, 'reading pod network counters');
      }
    }
    return out;
  }

  private async readCgroup(cgPath: string, logFields: Record<string, string>): Promise<CgroupStats | undefined> {
    try {
      return await this.cgroups.stats(cgPath);
    } catch (e) {
      this.log.debug({ err: e, cgroup: cgPath, ...logFields }, 'reading cgroup stats');
      return undefined;
    }
  }

  private cpuFigures(rates: CpuRateSampler | undefined, key: string, ts: bigint, usage: bigint): CpuFigures {
    return { timestampNs: ts, usageCoreNanoSeconds: usage, usageNanoCores: rates?.sample(key, ts, usage) };
  }
}

function memoryFigures(cg: CgroupStats): MemoryFigures | undefined {
  const m = cg.memory;
  if (m === undefined) return undefined;
  return {
    timestampNs: cg.timestampNs,
    usageBytes: m.usageBytes,
    workingSetBytes: m.workingSetBytes,
    rssBytes: m.rssBytes,
    pageFaults: m.pageFaults,
    majorPageFaults: m.majorPageFaults,
    availableBytes: m.availableBytes,
  };
}
