// Reading a cgroup's CPU, memory, process and OOM figures for the CRI stats RPCs
// (S13 takes its cgroup usage from here), on cgroup v1, v2 and hybrid hosts.
//
// Layouts: v1 mounts one hierarchy per controller (/sys/fs/cgroup/<controller>); v2
// mounts one unified hierarchy; "hybrid" is v1 plus a cgroup2 mount without
// controllers (these machines: /sys/fs/cgroup/unified). A host is treated as v2 only
// when the memory controller lives in the unified hierarchy.
//
// Memory follows the kubelet/cAdvisor definitions: working set = usage −
// inactive_file (not below 0); available = limit − working set when a limit is set.

import { readFileSync } from 'node:fs';
import { errnoCode, NotFoundError, wrapError } from '../../errors.js';

/** v1 reports "no limit" as a page-rounded 2^63−1; anything this large is unlimited. */
export const V1_UNLIMITED_THRESHOLD_BYTES = 2n ** 62n;
const NS_PER_USEC = 1000n;

export interface CgroupLayout {
  version: 1 | 2;
  /** v1: controller name (cpu, cpuacct, memory, pids, name=systemd …) → mount point; 'unified' → the cgroup2 mount, if any. */
  mountpoints: Record<string, string>;
  /** v1 with a cgroup2 mount beside it. */
  hybrid: boolean;
}

/** Parses /proc/self/mountinfo into a cgroup layout. */
export function parseCgroupLayout(mountinfo: string): CgroupLayout {
  const mountpoints: Record<string, string> = {};
  let v1 = false;
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep === -1) continue;
    const pre = line.slice(0, sep).split(' ');
    const post = line.slice(sep + 3).split(' ');
    const fstype = post[0];
    const mountPoint = pre[4];
    if (mountPoint === undefined) continue;
    if (fstype === 'cgroup2') {
      mountpoints['unified'] ??= mountPoint;
    } else if (fstype === 'cgroup') {
      const superOptions = (post[2] ?? '').split(',');
      for (const opt of superOptions) {
        if (opt === 'rw' || opt === 'ro' || opt === '' || opt.startsWith('release_agent=') || opt === 'clone_children') continue;
        if (opt === 'noprefix' || opt === 'xattr' || opt === 'cpuset_v2_mode') continue;
        mountpoints[opt] ??= mountPoint;
        v1 = true;
      }
    }
  }
  if (v1 && mountpoints['memory'] !== undefined) {
    return { version: 1, mountpoints, hybrid: mountpoints['unified'] !== undefined };
  }
  if (mountpoints['unified'] !== undefined) return { version: 2, mountpoints, hybrid: false };
  throw new NotFoundError('detecting cgroup layout: no cgroup v1 memory hierarchy and no cgroup2 mount in mountinfo');
}

/** Detects this host's cgroup layout from /proc/self/mountinfo. */
export async function detectCgroupLayout(read: (path: string) => Promise<string> = readText): Promise<CgroupLayout> {
  let text: string;
  try {
    text = await read('/proc/self/mountinfo');
  } catch (e: unknown) {
    throw wrapError('detecting cgroup layout: reading /proc/self/mountinfo', e);
  }
  return parseCgroupLayout(text);
}

/** The cgroup paths of a process from /proc/<pid>/cgroup: v1 controller → path, and the unified path. */
export function parseProcCgroup(text: string): { v1: Map<string, string>; unified: string | undefined } {
  const v1 = new Map<string, string>();
  let unified: string | undefined;
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (m === null) continue;
    const controllers = m[2];
    const path = m[3];
    if (m[1] === '0' && controllers === '') unified = path;
    else for (const c of controllers.split(',')) if (c !== '') v1.set(c, path);
  }
  return { v1, unified };
}

/** "key value" lines (memory.stat, cpu.stat, memory.events) as bigints. */
export function parseFlatKeyed(text: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k === undefined || k === '' || v === undefined || !/^\d+$/.test(v)) continue;
    out.set(k, BigInt(v));
  }
  return out;
}

/** A single-number file; undefined for v2's "max". */
export function parseSingleValue(text: string, path: string): bigint | undefined {
  const t = text.trim();
  if (t === 'max') return undefined;
  if (!/^\d+$/.test(t)) throw wrapError(`parsing "${path}"`, new Error(`${JSON.stringify(t)} is not a number`));
  return BigInt(t);
}

export interface MemoryStats {
  usageBytes: number;
  workingSetBytes: number;
  rssBytes: number;
  pageFaults: number;
  majorPageFaults: number;
  /** undefined when the cgroup has no limit. */
  limitBytes: number | undefined;
  /** limit − working set (not below 0); undefined without a limit. */
  availableBytes: number | undefined;
}

export interface MemoryFiles {
  /** v1 memory.usage_in_bytes / v2 memory.current. */
  usage: bigint;
  stat: Map<string, bigint>;
  /** v1 memory.limit_in_bytes / v2 memory.max; undefined = "max". */
  limit: bigint | undefined;
}

/** CRI-shaped memory figures from v1 files (memory.stat's hierarchical total_* counters). */
export function memoryStatsV1(files: MemoryFiles): MemoryStats {
  const s = files.stat;
  const limit = files.limit !== undefined && files.limit < V1_UNLIMITED_THRESHOLD_BYTES ? files.limit : undefined;
  return memoryStats(files.usage, s.get('total_inactive_file') ?? s.get('inactive_file') ?? 0n, {
    rss: s.get('total_rss') ?? s.get('rss') ?? 0n,
    pgfault: s.get('total_pgfault') ?? s.get('pgfault') ?? 0n,
    pgmajfault: s.get('total_pgmajfault') ?? s.get('pgmajfault') ?? 0n,
    limit,
  });
}

/** CRI-shaped memory figures from v2 files. */
export function memoryStatsV2(files: MemoryFiles): MemoryStats {
  const s = files.stat;
  return memoryStats(files.usage, s.get('inactive_file') ?? 0n, {
    rss: s.get('anon') ?? 0n,
    pgfault: s.get('pgfault') ?? 0n,
    pgmajfault: s.get('pgmajfault') ?? 0n,
    limit: files.limit,
  });
}

function memoryStats(usage: bigint, inactiveFile: bigint, o: { rss: bigint; pgfault: bigint; pgmajfault: bigint; limit: bigint | undefined }): MemoryStats {
  const workingSet = usage > inactiveFile ? usage - inactiveFile : 0n;
  const available = o.limit === undefined ? undefined : o.limit > workingSet ? o.limit - workingSet : 0n;
  return {
    usageBytes: Number(usage),
    workingSetBytes: Number(workingSet),
    rssBytes: Number(o.rss),
    pageFaults: Number(o.pgfault),
    majorPageFaults: Number(o.pgmajfault),
    limitBytes: o.limit === undefined ? undefined : Number(o.limit),
    availableBytes: available === undefined ? undefined : Number(available),
  };
}

/** v2 cpu.stat usage_usec in nanoseconds. */
export function cpuUsageNsFromV2Stat(text: string): bigint {
  const usec = parseFlatKeyed(text).get('usage_usec');
  if (usec === undefined) throw wrapError('parsing cpu.stat', new Error('no usage_usec line'));
  return usec * NS_PER_USEC;
}

/**
 * The file operations the reader needs. By default a synchronous read: a cgroupfs file is
 * made by the kernel on read, in microseconds, where fs/promises took four or five
 * thread-pool round trips and a 64 KiB buffer per file (issue 13: ListContainerStats at
 * 100 containers, daemon CPU per call 40 → 9 ms, a minor GC every 0.6 → 3 calls).
 */
export interface CgroupFs {
  readFile(path: string): Promise<string>;
}

export const NODE_CGROUP_FS: CgroupFs = { readFile: readText };

function readText(path: string): Promise<string> {
  try {
    return Promise.resolve(readFileSync(path, 'utf8'));
  } catch (e: unknown) {
    return Promise.reject(e instanceof Error ? e : new Error(String(e)));
  }
}

export interface CgroupStats {
  /** When the files were read (Unix ns), for usage_nano_cores and the CRI timestamps. */
  timestampNs: bigint;
  /** undefined where the controller's cgroup does not exist (e.g. a v1 host with only some hierarchies). */
  cpuUsageNs: bigint | undefined;
  memory: MemoryStats | undefined;
  pids: number | undefined;
  oomKills: number | undefined;
}

export interface CgroupStatsReaderOptions {
  layout: CgroupLayout;
  fs?: CgroupFs;
  /** Unix time in ns; injected for tests. */
  now?: () => bigint;
}

/**
 * Reads one cgroup's figures. `path` is the cgroup path relative to the hierarchy
 * root (the OCI spec's cgroupsPath, e.g. "/process_api/x/sandlot/pod-1/ctr-2"); on v1
 * the same path is looked up in each controller's hierarchy.
 */
export class CgroupStatsReader {
  private readonly layout: CgroupLayout;
  private readonly fs: CgroupFs;
  private readonly now: () => bigint;

  constructor(options: CgroupStatsReaderOptions) {
    this.layout = options.layout;
    this.fs = options.fs ?? NODE_CGROUP_FS;
    this.now = options.now ?? (() => BigInt(Date.now()) * 1_000_000n);
  }

  /** Directory of `path` in the hierarchy holding `controller`. */
  dir(controller: string, path: string): string {
    const clean = path.split('/').filter((p) => p !== '' && p !== '.');
    if (clean.includes('..')) throw wrapError(`resolving cgroup "${path}"`, new Error('path escapes the hierarchy'));
    const mount = this.layout.version === 2 ? this.layout.mountpoints['unified'] : this.layout.mountpoints[controller];
    if (mount === undefined) throw new NotFoundError(`resolving cgroup "${path}": no hierarchy for controller ${controller}`);
    return [mount, ...clean].join('/');
  }

  /** Cumulative CPU time in ns (v1 cpuacct.usage, v2 cpu.stat usage_usec). */
  async cpuUsageNs(path: string): Promise<bigint> {
    if (this.layout.version === 2) return cpuUsageNsFromV2Stat(await this.read('cpu', path, 'cpu.stat'));
    const file = `${this.dir('cpuacct', path)}/cpuacct.usage`;
    return parseSingleValue(await this.read('cpuacct', path, 'cpuacct.usage'), file) ?? 0n;
  }

  async memory(path: string): Promise<MemoryStats> {
    if (this.layout.version === 2) {
      const [current, stat, max] = await Promise.all([
        this.read('memory', path, 'memory.current'),
        this.read('memory', path, 'memory.stat'),
        this.read('memory', path, 'memory.max'),
      ]);
      const dir = this.dir('memory', path);
      return memoryStatsV2({
        usage: parseSingleValue(current, `${dir}/memory.current`) ?? 0n,
        stat: parseFlatKeyed(stat),
        limit: parseSingleValue(max, `${dir}/memory.max`),
      });
    }
    const [usage, stat, limit] = await Promise.all([
      this.read('memory', path, 'memory.usage_in_bytes'),
      this.read('memory', path, 'memory.stat'),
      this.read('memory', path, 'memory.limit_in_bytes'),
    ]);
    const dir = this.dir('memory', path);
    return memoryStatsV1({
      usage: parseSingleValue(usage, `${dir}/memory.usage_in_bytes`) ?? 0n,
      stat: parseFlatKeyed(stat),
      limit: parseSingleValue(limit, `${dir}/memory.limit_in_bytes`),
    });
  }

  /** Number of tasks (pids.current; without the pids controller, the lines of cgroup.procs). */
  async pids(path: string): Promise<number> {
    try {
      const text = await this.read('pids', path, 'pids.current');
      return Number(parseSingleValue(text, `${this.dir('pids', path)}/pids.current`) ?? 0n);
    } catch (e: unknown) {
      if (!(e instanceof NotFoundError)) throw e;
    }
    const procs = await this.read('memory', path, 'cgroup.procs');
    return procs.split('\n').filter((l) => l.trim() !== '').length;
  }

  /**
   * OOM kills in the cgroup: v2 memory.events oom_kill; v1 memory.oom_control oom_kill
   * (kernels ≥ 4.13). undefined when the kernel does not count them.
   */
  async oomKills(path: string): Promise<number | undefined> {
    const file = this.layout.version === 2 ? 'memory.events' : 'memory.oom_control';
    const n = parseFlatKeyed(await this.read('memory', path, file)).get('oom_kill');
    return n === undefined ? undefined : Number(n);
  }

  /** One file of the cgroup; a missing one is a NotFoundError naming it. */
  private async read(controller: string, path: string, file: string): Promise<string> {
    const full = `${this.dir(controller, path)}/${file}`;
    try {
      return await this.fs.readFile(full);
    } catch (e: unknown) {
      if (errnoCode(e) === 'ENOENT') throw new NotFoundError(`reading cgroup file "${full}": no such file`, { cause: e });
      throw wrapError(`reading cgroup file "${full}"`, e);
    }
  }

  /** All figures of one cgroup; a part whose cgroup or file is missing is undefined. */
  async stats(path: string): Promise<CgroupStats> {
    const timestampNs = this.now();
    const [cpuUsageNs, memory, pids, oomKills] = await Promise.all([
      optional(this.cpuUsageNs(path)),
      optional(this.memory(path)),
      optional(this.pids(path)),
      optional(this.oomKills(path)),
    ]);
    return { timestampNs, cpuUsageNs, memory, pids, oomKills };
  }
}

async function optional<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (e: unknown) {
    if (e instanceof NotFoundError) return undefined;
    throw e;
  }
}
