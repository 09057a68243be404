// When a process started, from /proc (field 22 of /proc/<pid>/stat, in clock ticks since
// boot, against /proc/uptime). Recovery uses it to date a container that
// the runtime started while the daemon died before saving the new state (issue 11).
import fs from 'node:fs/promises';
import { parseProcStat } from '../../util/proc-stat.js';

/** Linux's USER_HZ: 100 on every architecture sandlot runs on. */
const CLOCK_TICKS = 100;

/** Start time of `pid` in ms since the epoch, or undefined when the process is gone or unreadable. */
export async function processStartTimeMs(pid: number): Promise<number | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    const ticks = parseProcStat(await fs.readFile(`/proc/${pid}/stat`, 'utf8'))?.startTicks ?? NaN;
    // Against /proc/uptime (the same boot clock), not btime (whole seconds, and the
    // wall clock drifts from the boot clock): exact to a tick for recent processes.
    const uptimeSec = Number((await fs.readFile('/proc/uptime', 'utf8')).split(' ')[0]);
    if (!Number.isFinite(ticks) || !Number.isFinite(uptimeSec)) return undefined;
    return Date.now() - (uptimeSec * 1000 - (ticks * 1000) / CLOCK_TICKS);
  } catch {
    return undefined;
  }
}
