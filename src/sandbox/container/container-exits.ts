// How a container's end is learned: conmon writes `<exit dir>/<id>` (the exit code, or
// 128+signal) when the container's init exits; its mtime is the finish time, also
// after a daemon restart. The daemon watches the exit dir (fs.watch) and, because a
// watch may drop events, also stats a running container's exit file before answering
// Status/List. OOM kills come from the container's own cgroup (v1 memory.oom_control
// oom_kill, v2 memory.events oom_kill), read before `runtime delete` removes it.
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { errnoCode } from '../../errors.js';
import { readExitFile } from '../../oci/conmon.js';
import { CgroupStatsReader, detectCgroupLayout } from '../stats/cgroup-stats.js';
import { CONTAINER_ID_RE } from './container.js';

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

export async function waitPidGone(pid: number, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
    if (!processAlive(pid)) return true;
    if (Date.now() > end) return false;
    await sleep(delay);
  }
}

/**
 * Waits until the exit file appears (true), or the monitor is gone without writing one
 * (true as well: nothing will ever write it), or the timeout passes (false).
 */
export async function waitExit(exitDir: string, id: string, conmonPid: number, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
    if (exitFileExists(exitDir, id)) return true;
    if (conmonPid > 0 && !processAlive(conmonPid)) return true;
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

/**
 * Calls `onExit(id)` for every exit file conmon writes in `exitDir`. fs.watch may
 * coalesce or drop events under load; callers also look at the files before answering.
 */
export class ExitWatcher {
  private watcher: fsSync.FSWatcher | undefined;

  constructor(private readonly options: { exitDir: string; log: Logger; onExit: (id: string) => void }) {}

  start(): void {
    this.watcher = fsSync.watch(this.options.exitDir, { persistent: false }, (_event, filename) => {
      const name = filename?.toString();
      if (name === undefined || !CONTAINER_ID_RE.test(name)) return;
      this.options.onExit(name);
    });
    this.watcher.on('error', (e) => this.options.log.warn({ err: e }, 'watching container exit files'));
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }
}

export async function removeExitFile(exitDir: string, id: string): Promise<void> {
  try {
    await fs.rm(path.join(exitDir, id), { force: true });
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
  }
}
