// Who a pod's infra process is, without a conmon (issue 13): the daemon creates the infra
// with the runtime directly, so the infra is nobody's child we know of (the runtime's
// create exits and the kernel hands it to the nearest subreaper). What tells it from a
// later process with its PID is its start time (field 22 of /proc/<pid>/stat, clock
// ticks after boot), recorded at create: a PID is reused, never with the same start
// time. A pidfd opened *before* the start time is read pins the process that was read
// (a process that had ended before could only be replaced by one started later).
//
// Pods made by earlier versions have an infra conmon (a record with conmonPid > 0) and
// no start time: for them the guard stays conmon's (signalContainerInit: the infra is
// its conmon's child).
import { closeSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { openPidfd, pidfdSendSignal } from '../../../native/index.js';
import { parseProcStat } from '../../util/proc-stat.js';

/** The start time of `pid` in clock ticks after boot; undefined when it is gone (or a zombie). */
export function processStartTicks(pid: number): number | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const parsed = parseProcStat(stat);
  if (parsed === undefined || parsed.state === 'Z') return undefined;
  return Number.isSafeInteger(parsed.startTicks) ? parsed.startTicks : undefined;
}

/**
 * Whether `pid` is still the process that started at `startTicks`. An undefined
 * `startTicks` (a record without one) cannot be checked: true when the PID runs.
 */
export function isSameProcess(pid: number, startTicks: number | undefined): boolean {
  const now = processStartTicks(pid);
  return now !== undefined && (startTicks === undefined || now === startTicks);
}

/**
 * Signals the infra process `pid` that started at `startTicks` through a pidfd (no
 * runtime process): 'sent', or 'gone' when it has exited (its PID free or another
 * process's). `signal` is a name ("SIGKILL").
 */
export function signalInfraProcess(pid: number, startTicks: number, signal: NodeJS.Signals): 'sent' | 'gone' {
  const pidfd = pid > 0 ? openPidfd(pid) : undefined;
  if (pidfd === undefined) return 'gone';
  try {
    if (processStartTicks(pid) !== startTicks) return 'gone';
    return pidfdSendSignal(pidfd, os.constants.signals[signal]) ? 'sent' : 'gone';
  } finally {
    closeSync(pidfd);
  }
}
