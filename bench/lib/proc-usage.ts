// What a process costs, read from /proc: its own CPU (children excluded), RSS and PSS,
// peak RSS since a reset; and the processes whose command line names a path (the
// per-pod helpers of a runtime: conmon for sandlot, the runc shims for containerd).
import fs from 'node:fs';

/** Clock ticks per second of /proc/PID/stat (USER_HZ, 100 on Linux x86-64). */
const USER_HZ = 100;

/** utime + stime of the process itself (fields 14 and 15 of /proc/PID/stat), in ms. */
export function ownCpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which may hold spaces: rest[0] is field 3 (state).
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / USER_HZ;
}

/**
 * The CPU time of every thread of `pid` so far, in ms, from the scheduler's nanosecond
 * counts (/proc/PID/task/TID/schedstat): ownCpuMs counts in clock ticks (10 ms), too
 * coarse for a few hundred reads. Threads that ended meanwhile are not counted.
 */
export function threadsCpuMs(pid: number): number {
  let ns = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return ns / 1e6;
}

export interface Memory {
  rssKiB: number;
  pssKiB: number;
}

/** Rss and Pss of /proc/PID/smaps_rollup; zero for a process that is gone. */
export function memoryOf(pid: number): Memory {
  let text = '';
  try {
    text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  } catch {
    return { rssKiB: 0, pssKiB: 0 };
  }
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(text)?.[1] ?? 0);
  return { rssKiB: field('Rss'), pssKiB: field('Pss') };
}

export function sumMemory(pids: number[]): Memory {
  return pids.map(memoryOf).reduce((a, m) => ({ rssKiB: a.rssKiB + m.rssKiB, pssKiB: a.pssKiB + m.pssKiB }), { rssKiB: 0, pssKiB: 0 });
}

/** Resets VmHWM to the current RSS (clear_refs 5), so a later peakRssKiB covers only what follows. */
export function resetPeakRss(pid: number): void {
  fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

export function peakRssKiB(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`reading VmHWM of pid ${pid}: no VmHWM line`);
  return Number(m[1]);
}

/** PIDs whose argv[0] ends with `/name` (or is `name`) and whose command line contains `needle`. */
export function helperPids(name: string, needle: string): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const argv0 = argv[0] ?? '';
    if ((argv0 === name || argv0.endsWith(`/${name}`)) && argv.some((a) => a.includes(needle))) out.push(Number(entry));
  }
  return out;
}
