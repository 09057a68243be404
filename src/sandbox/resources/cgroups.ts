// Pod cgroups on cgroupfs (S12), for cgroup v1 (one hierarchy per controller set, as on
// these machines, plus the empty v2 "unified" mount of a hybrid layout) and v2. The pod
// cgroup is made in every hierarchy the OCI runtime will use, so the runtime nests the
// infra container's cgroup under it; resources and overhead of the pod are written on
// it; on remove, the tree goes after every process in it is gone (EBUSY is retried
// briefly), and so do the ancestors that became empty, except those holding this
// process: runc creates the whole path in every hierarchy, and nothing may stay behind.
// The daemon's own parent of pods (cgroup_root + default_cgroup_parent, `keep`) and its
// ancestors stay while the daemon runs, as the kubelet's kubepods do, and go at close()
// when empty: pruned after every pod and made again for the next, they cost each pod
// ~20 mkdirs and rmdirs more in the 10 hierarchies of these machines (issue 13: daemon
// CPU per pod; cgroupfs mkdir and rmdir are the kernel's heavier calls).
//
// Creates share the tree; only pruning the ancestors takes it exclusively (a prune must
// not rmdir a parent a create has just made). A cgroup's own tree is its owner's alone
// and goes without the lock: with one global mutex, 20 pods at once waited ~1.1 s in
// RunPodSandbox and ~0.5 s in RemovePodSandbox for each other's removals (issue 13).
// cgroupfs calls are in-kernel (no disk, no journal): they are made synchronously, one
// syscall each, instead of a thread-pool round trip each (issue 13: with those, a pod's
// create and remove cost ~100 wake-ups of the pool); only EBUSY retries wait.
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { errnoCode, errorMessage, InternalError, InvalidArgumentError } from '../../errors.js';
import { SharedExclusiveLock } from '../../util/shared-exclusive-lock.js';

export interface CgroupHierarchy {
  mountpoint: string;
  /** v1: the controllers (or `name=systemd`); v2: [] (key ""). */
  controllers: string[];
  version: 1 | 2;
}

export interface CgroupLayout {
  version: 1 | 2;
  hierarchies: CgroupHierarchy[];
}

/** Super-block options of a v1 cgroup mount that are not controllers. */
const V1_MOUNT_OPTIONS = new Set(['rw', 'ro', 'relatime', 'noexec', 'nosuid', 'nodev', 'clone_children', 'noprefix', 'xattr']);

/** Reads the cgroup mounts from a mountinfo text (default: /proc/self/mountinfo). */
export function detectCgroupLayout(mountinfo = fsSync.readFileSync('/proc/self/mountinfo', 'utf8')): CgroupLayout {
  const hierarchies: CgroupHierarchy[] = [];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fields = line.slice(0, sep).split(' ');
    const [fstype, , superOpts = ''] = line.slice(sep + 3).split(' ');
    const mountpoint = fields[4];
    if (mountpoint === undefined) continue;
    if (fstype === 'cgroup2') hierarchies.push({ mountpoint, controllers: [], version: 2 });
    else if (fstype === 'cgroup') {
      const controllers = superOpts.split(',').filter((o) => (o.startsWith('name=') || !o.includes('=')) && !V1_MOUNT_OPTIONS.has(o));
      hierarchies.push({ mountpoint, controllers, version: 1 });
    }
  }
  const v1 = hierarchies.some((h) => h.version === 1);
  return { version: v1 ? 1 : 2, hierarchies };
}

/** The cgroup path of this process in a hierarchy, from a /proc/self/cgroup text. */
export function ownCgroupPath(h: CgroupHierarchy, procSelfCgroup: string): string | undefined {
  for (const line of procSelfCgroup.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const controllers = m[2].split(',').filter(Boolean).sort().join(',');
    if (controllers === [...h.controllers].sort().join(',')) return m[3];
  }
  return undefined;
}

/** LinuxContainerResources as the CRI decodes it (int64 as strings). */
export interface CriResources {
  cpu_period?: string | number;
  cpu_quota?: string | number;
  cpu_shares?: string | number;
  memory_limit_in_bytes?: string | number;
}

export interface PodResources {
  cpuShares?: number;
  cpuQuotaUs?: number;
  cpuPeriodUs?: number;
  memoryLimitBytes?: number;
}

const num = (v: string | number | undefined): number => (v === undefined || v === '' ? 0 : Number(v));

/** The pod's limits: its containers' total (`resources`) plus the runtime class `overhead`. */
export function podResources(resources?: CriResources | null, overhead?: CriResources | null): PodResources {
  const r = resources ?? {};
  const o = overhead ?? {};
  const out: PodResources = {};
  const shares = num(r.cpu_shares) + num(o.cpu_shares);
  if (shares > 0) out.cpuShares = Math.max(2, shares);
  const period = num(r.cpu_period) || num(o.cpu_period);
  // A quota of 0 or less means "no limit": the sum is only meaningful when the pod has one.
  if (num(r.cpu_quota) > 0) {
    const p = period || 100_000;
    const oq = num(o.cpu_quota) > 0 ? num(o.cpu_quota) * (p / (num(o.cpu_period) || p)) : 0;
    out.cpuQuotaUs = Math.round(num(r.cpu_quota) * (p / (num(r.cpu_period) || p)) + oq);
    out.cpuPeriodUs = p;
  }
  if (num(r.memory_limit_in_bytes) > 0) out.memoryLimitBytes = num(r.memory_limit_in_bytes) + Math.max(0, num(o.memory_limit_in_bytes));
  return out;
}

/** cgroup v1 cpu.shares → v2 cpu.weight (the formula runc and the kubelet use). */
export function sharesToWeight(shares: number): number {
  return Math.round(1 + ((shares - 2) * 9999) / 262142);
}

export interface CgroupManagerOptions {
  layout?: CgroupLayout;
  /** /proc/self/cgroup text (tests). */
  procSelfCgroup?: string;
  /** Cgroup paths kept while the daemon runs: a removal prunes no ancestor at or above one; close() prunes them. */
  keep?: string[];
}

const RMDIR_RETRY_MS = 5_000;

export class CgroupManager {
  readonly layout: CgroupLayout;
  private readonly self: string;
  // Creating a path and pruning empty ancestors must not interleave in one daemon;
  // creates may run together.
  private readonly treeLock = new SharedExclusiveLock();
  private readonly keep: readonly string[];

  constructor(options: CgroupManagerOptions = {}) {
    this.layout = options.layout ?? detectCgroupLayout();
    this.self = options.procSelfCgroup ?? fsSync.readFileSync('/proc/self/cgroup', 'utf8');
    this.keep = (options.keep ?? []).map((p) => path.normalize(assertCgroupPath(p)));
  }

  /** The directory of `cgPath` in every hierarchy. */
  dirs(cgPath: string): string[] {
    assertCgroupPath(cgPath);
    return this.layout.hierarchies.map((h) => path.join(h.mountpoint, cgPath));
  }

  /** The memory hierarchy's (v1) or unified (v2) directory: where "exists" is checked. */
  primaryDir(cgPath: string): string {
    const h =
      this.layout.hierarchies.find((x) => x.version === 2 && this.layout.version === 2) ??
      this.layout.hierarchies.find((x) => x.controllers.includes('memory')) ??
      this.layout.hierarchies[0];
    if (!h) throw new InternalError('no cgroup hierarchy is mounted');
    return path.join(h.mountpoint, cgPath);
  }

  /**
   * Creates `cgPath` in every hierarchy and writes the pod's limits. cgroupfs calls are
   * in-kernel and take microseconds: made synchronously, not as ~40 thread-pool round
   * trips per pod (each with its wake-ups; issue 13: daemon CPU and syscalls per pod).
   */
  async create(cgPath: string, res: PodResources): Promise<void> {
    assertCgroupPath(cgPath);
    await this.treeLock.shared(() => {
      for (const h of this.layout.hierarchies) makeCgroupDir(h, cgPath);
      return Promise.resolve();
    });
    this.apply(cgPath, res);
  }

  /** Writes the pod's limits on `cgPath` (synchronous cgroupfs writes, as create's). */
  apply(cgPath: string, res: PodResources): void {
    const writes: Array<[string, string]> = [];
    if (this.layout.version === 1) {
      const cpu = this.layout.hierarchies.find((h) => h.controllers.includes('cpu'));
      const mem = this.layout.hierarchies.find((h) => h.controllers.includes('memory'));
      if (cpu && res.cpuShares !== undefined) writes.push([path.join(cpu.mountpoint, cgPath, 'cpu.shares'), String(res.cpuShares)]);
      if (cpu && res.cpuPeriodUs !== undefined) writes.push([path.join(cpu.mountpoint, cgPath, 'cpu.cfs_period_us'), String(res.cpuPeriodUs)]);
      if (cpu && res.cpuQuotaUs !== undefined) writes.push([path.join(cpu.mountpoint, cgPath, 'cpu.cfs_quota_us'), String(res.cpuQuotaUs)]);
      if (mem && res.memoryLimitBytes !== undefined) writes.push([path.join(mem.mountpoint, cgPath, 'memory.limit_in_bytes'), String(res.memoryLimitBytes)]);
    } else {
      const dir = this.primaryDir(cgPath);
      if (res.cpuShares !== undefined || res.cpuQuotaUs !== undefined || res.memoryLimitBytes !== undefined) {
        this.enableV2Controllers(cgPath);
      }
      if (res.cpuShares !== undefined) writes.push([path.join(dir, 'cpu.weight'), String(sharesToWeight(res.cpuShares))]);
      if (res.cpuQuotaUs !== undefined) writes.push([path.join(dir, 'cpu.max'), `${res.cpuQuotaUs} ${res.cpuPeriodUs ?? 100_000}`]);
      if (res.memoryLimitBytes !== undefined) writes.push([path.join(dir, 'memory.max'), String(res.memoryLimitBytes)]);
    }
    for (const [file, value] of writes) {
      try {
        fsSync.writeFileSync(file, value);
      } catch (e) {
        throw new InternalError(`writing ${value} to "${file}": ${errnoCode(e) ?? errorMessage(e)}`, { cause: e });
      }
    }
  }

  private enableV2Controllers(cgPath: string): void {
    const h = this.layout.hierarchies.find((x) => x.version === 2)!;
    const parts = cgPath.split('/').filter(Boolean);
    for (let i = 0; i < parts.length; i++) {
      const dir = path.join(h.mountpoint, ...parts.slice(0, i));
      try {
        fsSync.writeFileSync(path.join(dir, 'cgroup.subtree_control'), '+cpu +memory');
      } catch {
        // a controller the parent cannot delegate: the limit's own write says so
      }
    }
  }

  /** Creates `cgPath` in every hierarchy and moves process `pid` into it there. */
  async placeProcess(cgPath: string, pid: number): Promise<void> {
    await this.create(cgPath, {});
    for (const dir of this.dirs(cgPath)) {
      const file = path.join(dir, 'cgroup.procs');
      try {
        await fs.writeFile(file, String(pid));
      } catch (e) {
        // ESRCH: the process is already gone; nothing to move.
        if (errnoCode(e) === 'ESRCH') return;
        throw new InternalError(`writing ${pid} to "${file}": ${errnoCode(e) ?? errorMessage(e)}`, { cause: e });
      }
    }
  }

  async exists(cgPath: string): Promise<boolean> {
    try {
      await fs.access(this.primaryDir(cgPath));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Removes `cgPath` (and its children) in every hierarchy, then the ancestors left empty.
   * Idempotent. The tree itself goes without the lock (its EBUSY retries keep no one
   * waiting); the prune holds it exclusively.
   */
  async remove(cgPath: string): Promise<void> {
    const kept = (p: string) => this.keep.some((k) => k === p || k.startsWith(`${p}/`));
    await removeTree(this.layout, this.self, cgPath, (prune) => this.treeLock.exclusive(prune), kept);
  }

  /** At the daemon's stop: the kept parents and their ancestors that are empty go (pods that outlive it keep theirs). */
  async close(): Promise<void> {
    await this.treeLock.exclusive(() => {
      for (const k of this.keep) pruneUp(this.layout.hierarchies, this.self, k, () => false);
      return Promise.resolve();
    });
  }
}

/**
 * The Conmon option that moves each started conmon into config.conmon_cgroup (below
 * cgroup_root); none when it is "".
 */
export function conmonPlacement(config: { cgroup_root: string; conmon_cgroup: string }, cgroups: CgroupManager): { place?: (pid: number) => Promise<void> } {
  if (config.conmon_cgroup === '') return {};
  const cgPath = path.join(config.cgroup_root, config.conmon_cgroup);
  return { place: (pid) => cgroups.placeProcess(cgPath, pid) };
}

/** For tests and recovery: removes a cgroup path everywhere without a manager. */
export async function removeCgroupTree(cgPath: string): Promise<void> {
  await removeTree(detectCgroupLayout(), fsSync.readFileSync('/proc/self/cgroup', 'utf8'), cgPath);
}

function assertCgroupPath(cgPath: string): string {
  if (!path.isAbsolute(cgPath) || cgPath.split('/').includes('..') || path.normalize(cgPath) === '/') {
    throw new InvalidArgumentError(`cgroup path "${cgPath}" must be absolute, below the root, without ".."`);
  }
  return cgPath;
}

/**
 * `cgPath` in one hierarchy; another daemon under the same root may prune an empty
 * ancestor right between two mkdirs (ENOENT): tried again a few times.
 */
function makeCgroupDir(h: CgroupHierarchy, cgPath: string): void {
  const dir = path.join(h.mountpoint, cgPath);
  for (let attempt = 0; ; attempt++) {
    try {
      if (h.controllers.includes('cpuset')) mkdirCpuset(h.mountpoint, cgPath);
      else fsSync.mkdirSync(dir, { recursive: true });
      return;
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT' || attempt >= 5) {
        throw new InternalError(`creating cgroup "${dir}": ${errnoCode(e) ?? errorMessage(e)}`, { cause: e });
      }
    }
  }
}

function mkdirCpuset(mountpoint: string, cgPath: string): void {
  // A v1 cpuset cgroup starts with empty cpus/mems and then accepts no task: copy the parent's.
  let cur = mountpoint;
  for (const part of cgPath.split('/').filter(Boolean)) {
    const parent = cur;
    cur = path.join(cur, part);
    try {
      fsSync.mkdirSync(cur);
    } catch (e) {
      if (errnoCode(e) !== 'EEXIST') throw e;
    }
    for (const f of ['cpuset.cpus', 'cpuset.mems']) {
      if (readTrimmed(path.join(cur, f)) === '') fsSync.writeFileSync(path.join(cur, f), fsSync.readFileSync(path.join(parent, f), 'utf8').trim());
    }
  }
}

function readTrimmed(file: string): string {
  try {
    return fsSync.readFileSync(file, 'utf8').trim();
  } catch {
    return '';
  }
}

/** rmdir, synchronously (cgroupfs); EBUSY (a process still leaving) is retried off the loop for RMDIR_RETRY_MS. */
async function rmdirRetry(dir: string): Promise<void> {
  const end = Date.now() + RMDIR_RETRY_MS;
  for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
    try {
      fsSync.rmdirSync(dir);
      return;
    } catch (e) {
      const code = errnoCode(e);
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || Date.now() > end) {
        throw new InternalError(`removing cgroup "${dir}": ${code ?? errorMessage(e)}`, { cause: e });
      }
    }
    await sleep(delay);
  }
}

async function removeDirTree(dir: string): Promise<void> {
  let entries: fsSync.Dirent[];
  try {
    entries = fsSync.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return;
    throw e;
  }
  for (const ent of entries) if (ent.isDirectory()) await removeDirTree(path.join(dir, ent.name));
  await rmdirRetry(dir);
}

/** Runs a prune of ancestors (under the caller's tree lock, if it has one). */
type PruneRunner = (prune: () => Promise<void>) => Promise<void>;

/** True for an ancestor a removal must not prune. */
type KeptPath = (cgPath: string) => boolean;

async function removeTree(
  layout: CgroupLayout,
  self: string,
  cgPath: string,
  locked: PruneRunner = (prune) => prune(),
  kept: KeptPath = () => false,
): Promise<void> {
  assertCgroupPath(cgPath);
  const errors: Error[] = [];
  const removed: CgroupHierarchy[] = [];
  for (const h of layout.hierarchies) {
    try {
      await removeDirTree(path.join(h.mountpoint, cgPath));
      removed.push(h);
    } catch (e) {
      errors.push(e instanceof Error ? e : new Error(String(e)));
    }
  }
  await locked(() => {
    if (path.dirname(cgPath) !== '/') pruneUp(removed, self, path.dirname(cgPath), kept);
    return Promise.resolve();
  });
  if (errors.length > 0) throw new AggregateError(errors, `removing cgroup "${cgPath}": ${errors.map((e) => e.message).join('; ')}`);
}

/**
 * Removes `from` and then its ancestors while they are empty, in each hierarchy; never one
 * that holds (or leads to) this process, nor a kept one.
 */
function pruneUp(hierarchies: CgroupHierarchy[], self: string, from: string, kept: KeptPath): void {
  for (const h of hierarchies) {
    const mine = ownCgroupPath(h, self) ?? '/';
    for (let p = from; p !== '/'; p = path.dirname(p)) {
      if (mine === p || mine.startsWith(`${p}/`) || kept(p)) break;
      try {
        fsSync.rmdirSync(path.join(h.mountpoint, p));
      } catch {
        break; // not empty (another pod, another tenant) or gone
      }
    }
  }
}
