// How a container's end is learned: conmon writes `<exit dir>/<id>` (the exit code, or
// 128+signal) when the container's init exits, then exits itself; the file's mtime is the
// finish time, also after a daemon restart. The daemon holds a pidfd of each container's
// conmon (native/pid-watch.ts: pushed, nothing dropped, no polling) and reads the exit
// file once when conmon is gone; at start, recovery reads the files of exits that
// happened while it was down. Status and List answer from memory. OOM kills come from
// the container's own cgroup (v1 memory.oom_control oom_kill, v2 memory.events oom_kill),
// read before `runtime delete` removes it.
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitPidExit } from '../../../native/index.js';
import { errnoCode } from '../../errors.js';
import { readExitFile } from '../../oci/conmon.js';
import { CgroupStatsReader, detectCgroupLayout } from '../stats/cgroup-stats.js';

/** The kubelet reads at most this much of a termination message. */
export const TERMINATION_MESSAGE_MAX_BYTES = 4096;

export interface ExitInfo {
  /** undefined when conmon left no exit file (it died, or the container never ran). */
  exitCode: number | undefined;
  /** Unix ms: the exit file's mtime, or now when there is none. */
  finishedAtMs: number;
}

/** The exit file's code and mtime; undefined while the container has not exited. */
export async function readExit(exitDir: string, id: string): Promise<ExitInfo | undefined> {
  const code = await readExitFile(exitDir, id);
  if (code === undefined) return undefined;
  const st = await fs.stat(path.join(exitDir, id)).catch(() => undefined);
  return { exitCode: code, finishedAtMs: st ? st.mtimeMs : Date.now() };
}

export function exitFileExists(exitDir: string, id: string): boolean {
  return fsSync.existsSync(path.join(exitDir, id));
}

/** Alive and not a zombie. */
export function processAlive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(fsSync.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** True once `pid` is gone (a zombie counts), false after `timeoutMs`: by pidfd, no polling. */
export async function waitPidGone(pid: number, timeoutMs: number): Promise<boolean> {
  return waitPidExit(pid, timeoutMs);
}

/**
 * Waits until the exit file is there (true): conmon writes it, then exits, so its end is
 * waited for by pidfd; gone without writing one is true as well (nothing will ever write
 * it); false when the timeout passes. Without a monitor PID the file is looked for.
 */
export async function waitExit(exitDir: string, id: string, conmonPid: number, timeoutMs: number): Promise<boolean> {
  if (exitFileExists(exitDir, id)) return true;
  if (conmonPid > 0) return waitPidExit(conmonPid, timeoutMs);
  const end = Date.now() + timeoutMs;
  for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
    if (exitFileExists(exitDir, id)) return true;
    if (Date.now() > end) return false;
    await sleep(delay);
  }
}

/** The termination message the container wrote (the kubelet's file), capped. */
export async function readTerminationMessage(hostPath: string | undefined): Promise<string> {
  if (hostPath === undefined) return '';
  try {
    const handle = await fs.open(hostPath, 'r');
    try {
      const buf = Buffer.alloc(TERMINATION_MESSAGE_MAX_BYTES);
      const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
      return buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await handle.close();
    }
  } catch {
    return '';
  }
}

/** OOM kills recorded in one cgroup; a cgroup that is gone or uncounted reads as 0. */
export class OomKillReader {
  private reader: Promise<CgroupStatsReader> | undefined;

  async kills(cgroupPath: string): Promise<number> {
    this.reader ??= detectCgroupLayout().then((layout) => new CgroupStatsReader({ layout }));
    try {
      return (await (await this.reader).oomKills(cgroupPath)) ?? 0;
    } catch {
      return 0;
    }
  }
}

/** The exit file goes with one unlink (fs.rm makes two lstats first: issue 13); a missing one is no error. */
export async function removeExitFile(exitDir: string, id: string): Promise<void> {
  try {
    await fs.unlink(path.join(exitDir, id));
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
  }
}
