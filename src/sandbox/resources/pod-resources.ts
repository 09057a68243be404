// UpdatePodSandboxResources: the kubelet tells the runtime a pod's overall resources
// changed (in-place pod resize). The new `resources` (the containers' total) plus the
// runtime class `overhead` are written on the pod cgroup (S12: the parent of the infra
// and of every container cgroup), the same sum RunPodSandbox writes (cgroups.ts
// podResources), plus the cpuset. What was applied is kept beside the pod's other files
// (<state_dir>/pods/<id>/resources.json, gone with the pod) for verbose status.
//
// proto3 cannot tell 0 from unset: a 0 field leaves that limit as it is, as at run.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { errnoCode, errorMessage, FailedPreconditionError, InternalError, wrapError } from '../../errors.js';
import { writeFileAtomic } from '../../util/atomic-file.js';
import { podResources, type CgroupManager, type CriResources, type PodResources } from './cgroups.js';
import type { PodManager } from '../pod/pod-manager.js';
import { requireState, type SandboxRecord } from '../pod/sandbox.js';

/** LinuxContainerResources fields a pod cgroup takes (validated at src/cri). */
export interface PodCriResources extends CriResources {
  cpuset_cpus?: string;
  cpuset_mems?: string;
}

export interface PodResourcesUpdate {
  resources: PodCriResources | undefined;
  overhead: PodCriResources | undefined;
}

export interface PodCgroupLimits extends PodResources {
  cpusetCpus?: string;
  cpusetMems?: string;
}

/** What resources.json holds. */
export interface AppliedPodResources {
  version: 1;
  /** Unix nanoseconds of the update. */
  updatedAt: string;
  resources: PodCriResources | undefined;
  overhead: PodCriResources | undefined;
  /** The figures written on the pod cgroup. */
  limits: PodCgroupLimits;
}

export interface PodResourcesUpdaterOptions {
  pods: Pick<PodManager, 'withSandbox' | 'get'>;
  cgroups: CgroupManager;
  log: Logger;
}

const RESOURCES_FILE = 'resources.json';

/** The cgroup limits of an update: podResources' sum, and the cpuset (resources' own, else the overhead's). */
export function podCgroupLimits(update: PodResourcesUpdate): PodCgroupLimits {
  const out: PodCgroupLimits = podResources(update.resources, update.overhead);
  const cpus = update.resources?.cpuset_cpus || update.overhead?.cpuset_cpus || '';
  const mems = update.resources?.cpuset_mems || update.overhead?.cpuset_mems || '';
  if (cpus !== '') out.cpusetCpus = cpus;
  if (mems !== '') out.cpusetMems = mems;
  return out;
}

export class PodResourcesUpdater {
  private readonly pods: PodResourcesUpdaterOptions['pods'];
  private readonly cgroups: CgroupManager;
  private readonly log: Logger;

  constructor(options: PodResourcesUpdaterOptions) {
    this.pods = options.pods;
    this.cgroups = options.cgroups;
    this.log = options.log;
  }

  /** NotFound for an unknown pod; S4: only a running (ready) pod is updated. */
  async update(idOrPrefix: string, update: PodResourcesUpdate): Promise<AppliedPodResources> {
    const id = this.pods.get(idOrPrefix).id;
    return this.pods.withSandbox(id, async (rec) => {
      requireState(rec, 'update resources of', 'running');
      const limits = podCgroupLimits(update);
      try {
        await this.applyCpuset(rec.podCgroup, limits);
        this.cgroups.apply(rec.podCgroup, limits);
      } catch (e) {
        throw wrapError(`updating resources of sandbox "${id}"`, e);
      }
      const applied: AppliedPodResources = {
        version: 1,
        updatedAt: (BigInt(Date.now()) * 1_000_000n).toString(),
        resources: update.resources,
        overhead: update.overhead,
        limits,
      };
      await writeFileAtomic(path.join(rec.paths.dir, RESOURCES_FILE), JSON.stringify(applied, null, 1), { mode: 0o600 });
      this.log.info({ podSandboxId: id, limits }, 'pod sandbox resources updated');
      return applied;
    });
  }

  /** The last update applied to the pod, if any. */
  async current(rec: SandboxRecord): Promise<AppliedPodResources | undefined> {
    const file = path.join(rec.paths.dir, RESOURCES_FILE);
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return undefined;
      throw new InternalError(`reading "${file}": ${errorMessage(e)}`, { cause: e });
    }
    return JSON.parse(text) as AppliedPodResources;
  }

  /**
   * cgroups.ts writes CPU and memory; the cpuset is written here. v1: the cpuset
   * hierarchy's cpuset.cpus/mems; v2: the unified ones (the controller enabled down the
   * path). The kernel refuses a set that leaves out CPUs a child cgroup uses (EBUSY on
   * v1): the error says so.
   */
  private async applyCpuset(podCgroup: string, limits: PodCgroupLimits): Promise<void> {
    if (limits.cpusetCpus === undefined && limits.cpusetMems === undefined) return;
    const layout = this.cgroups.layout;
    let dir: string;
    if (layout.version === 1) {
      const h = layout.hierarchies.find((x) => x.controllers.includes('cpuset'));
      if (!h) throw new InternalError('writing the pod cpuset: no cpuset cgroup hierarchy is mounted');
      dir = path.join(h.mountpoint, podCgroup);
    } else {
      dir = this.cgroups.primaryDir(podCgroup);
      const h = layout.hierarchies.find((x) => x.version === 2)!;
      const parts = podCgroup.split('/').filter(Boolean);
      for (let i = 0; i < parts.length; i++) {
        await fs.writeFile(path.join(h.mountpoint, ...parts.slice(0, i), 'cgroup.subtree_control'), '+cpuset').catch(() => undefined);
      }
    }
    const writes: Array<[string, string | undefined]> = [
      ['cpuset.cpus', limits.cpusetCpus],
      ['cpuset.mems', limits.cpusetMems],
    ];
    for (const [name, value] of writes) {
      if (value === undefined) continue;
      const file = path.join(dir, name);
      try {
        await fs.writeFile(file, value);
      } catch (e) {
        const code = errnoCode(e);
        if (code === 'EBUSY') {
          throw new FailedPreconditionError(`writing ${value} to "${file}": EBUSY (a container of the pod uses CPUs or memory nodes outside it)`, { cause: e });
        }
        throw new InternalError(`writing ${value} to "${file}": ${code ?? errorMessage(e)}`, { cause: e });
      }
    }
  }
}
