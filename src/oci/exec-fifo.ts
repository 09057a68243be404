// Starting a container runc created, without a `runc start` process (issue 13: a Go
// process start for each pod's infra and each app container). What `runc start` does for
// a created container (runc 1.1.5, libcontainer/container_linux.go `exec`,
// `handleFifoResult`; start.go):
//
//   runc create                         runc init (the container's PID 1 to be)
//     mkfifo <root>/<id>/exec.fifo        … namespaces, mounts, hooks up to createContainer
//     init_process_pid/_start → state.json  open(exec.fifo, O_WRONLY)  ← blocks: no reader
//   runc start                            │
//     status: init alive (same start time, not a zombie), not frozen, fifo there → created
//     open(exec.fifo, O_RDONLY) ─────────→ returns; write "0"; startContainer hooks; exec
//     read to EOF (the writer is close-on-exec: EOF = the exec, or the init's death)
//     "0" read → unlink exec.fifo (the runtime's state turns "running": no fifo, init alive)
//     nothing read → "cannot start an already running container"
//     init dead while waiting → what the fifo holds decides; else "container process is
//     already dead"
//
// Here the same handshake runs in the daemon: the status checks from state.json and
// /proc, then the fifo opened O_RDONLY|O_NONBLOCK and read through a net.Socket (libuv's
// epoll on the event loop: no pool thread waits on it), raced against the init's exit
// (a pidfd, native/pid-watch.ts) and a deadline. runc 1.1.5 runs poststart hooks during
// `create` and startContainer hooks in the init after the fifo write, so `start` itself
// runs no hook: nothing about hooks changes (hook-stages.ts). Whatever is not a plain
// created container (no fifo, an init that is gone, a frozen cgroup, an unreadable
// state) is answered `not-created`: the caller runs `runc start`, whose answer it was.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { watchPid, type PidWatch } from '../../native/index.js';
import { errnoCode, errorMessage } from '../errors.js';
import { parseProcStat } from '../util/proc-stat.js';

export const EXEC_FIFO = 'exec.fifo';
const STATE_FILE = 'state.json';

/** What runc's state.json says of a container's init. */
export interface RuncInit {
  pid: number;
  /** Field 22 of /proc/<pid>/stat when the init started (clock ticks since boot). */
  startTicks: number;
  /** The file that says whether the cgroup is frozen (runc's `paused`): v1 freezer.state, else v2 cgroup.freeze. */
  freezeFile: string | undefined;
}

/** The init of a runc state.json (its `init_process_pid`, `init_process_start`, `cgroup_paths`); undefined when it has none. */
export function parseRuncState(text: string): RuncInit | undefined {
  let state: { init_process_pid?: unknown; init_process_start?: unknown; cgroup_paths?: unknown };
  try {
    state = JSON.parse(text) as typeof state;
  } catch {
    return undefined;
  }
  const pid = state.init_process_pid;
  const startTicks = state.init_process_start;
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0 || typeof startTicks !== 'number') return undefined;
  const paths = typeof state.cgroup_paths === 'object' && state.cgroup_paths !== null ? (state.cgroup_paths as Record<string, unknown>) : {};
  // runc asks the v1 freezer when there is one (hybrid layouts have a unified path too).
  const freezeFile =
    typeof paths.freezer === 'string'
      ? path.join(paths.freezer, 'freezer.state')
      : typeof paths[''] === 'string'
        ? path.join(paths[''], 'cgroup.freeze')
        : undefined;
  return { pid, startTicks, freezeFile };
}

/** runc's isPaused: a v1 freezer.state of FROZEN (or on its way there), a v2 cgroup.freeze of 1. */
export function isFrozen(file: string, content: string): boolean {
  const v = content.trim();
  return file.endsWith('cgroup.freeze') ? v === '1' : v === 'FROZEN' || v === 'FREEZING';
}

/**
 * Is the container of runtime dir `dir` created (runc's status `created`): its init alive,
 * not frozen? Its pidfd watch when it is. Synchronous: small files on tmpfs, procfs and
 * cgroupfs, microseconds each, where a promise read costs a pool round trip (measured:
 * ~0.7 ms of CPU per file, more than the rest of the start).
 */
function createdInit(dir: string): { init: RuncInit; watch: PidWatch } | undefined {
  const init = parseRuncState(readSmall(path.join(dir, STATE_FILE)) ?? '');
  if (init === undefined) return undefined;
  let watch: PidWatch;
  try {
    watch = watchPid(init.pid);
  } catch {
    return undefined;
  }
  // The pidfd is open first: a process with the init's start time now is the one it pins.
  const proc = parseProcStat(readSmall(`/proc/${init.pid}/stat`) ?? '');
  const alive = !watch.ended && proc !== undefined && proc.startTicks === init.startTicks && proc.state !== 'Z' && proc.state !== 'X';
  if (!alive || frozenNow(init.freezeFile) !== false) {
    watch.close();
    return undefined;
  }
  return { init, watch };
}

/** A small file's text; undefined when it cannot be read. */
function readSmall(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** undefined when the freeze file cannot be read (runc then decides); a missing one is not frozen, as for runc. */
function frozenNow(file: string | undefined): boolean | undefined {
  if (file === undefined) return false;
  try {
    return isFrozen(file, fs.readFileSync(file, 'utf8'));
  } catch (e) {
    return errnoCode(e) === 'ENOENT' ? false : undefined;
  }
}

/** `started`, or `not-created`: not a plain created container here, `runc start` answers. */
export type FifoStart = 'started' | 'not-created';

/**
 * `runc start` of the container whose runtime dir is `dir` (`<root>/<id>`), in-process.
 * Throws (runc's words) when the init dies before it started, when another start took
 * it, or at the deadline.
 */
export async function startThroughExecFifo(dir: string, timeoutMs: number): Promise<FifoStart> {
  const created = createdInit(dir);
  if (created === undefined) return 'not-created';
  const { init, watch } = created;
  const fifo = path.join(dir, EXEC_FIFO);
  let fd: number;
  try {
    // Non-blocking: open returns at once, and the init's blocked open for writing returns
    // too (close-on-exec: libuv opens every file so).
    fd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch {
    watch.close();
    return 'not-created'; // started meanwhile, or deleted: runc says which
  }
  try {
    await readFifo(fd, watch, timeoutMs, init.pid);
  } finally {
    watch.close();
  }
  // As runc: the fifo's removal is what makes the runtime's state say "running".
  try {
    fs.unlinkSync(fifo);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw e;
  }
  return 'started';
}

/**
 * Reads the fifo to its end (the init's exec), racing the init's death and the deadline;
 * resolves when the init's "0" was read, throws otherwise. Closes `fd`.
 */
function readFifo(fd: number, watch: PidWatch, timeoutMs: number, pid: number): Promise<void> {
  let socket: net.Socket;
  try {
    socket = new net.Socket({ fd, readable: true, writable: false });
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
  let bytes = 0;
  let timer: NodeJS.Timeout | undefined;
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err === undefined) resolve();
      else reject(err);
    };
    const ended = (): void => settle(bytes > 0 ? undefined : new Error('cannot start an already running container'));
    socket.on('data', (d: Buffer) => (bytes += d.length));
    socket.once('end', ended);
    socket.once('error', (e) => settle(new Error(`reading "${EXEC_FIFO}": ${errorMessage(e)}`, { cause: e })));
    // Dead: its writer is closed, so the fifo holds all it ever will (runc's non-blocking look).
    void watch.gone.then(() => {
      if (settled) return; // the fd may be closed already, its number another file's
      bytes += readAvailable(fd);
      settle(bytes > 0 ? undefined : new Error(`container process is already dead (pid ${pid})`));
    });
    timer = setTimeout(() => settle(new Error(`container process (pid ${pid}) did not take the start within ${timeoutMs} ms`)), timeoutMs);
  }).finally(() => socket.destroy());
}

/** What a non-blocking read finds in the fifo now (0 at EOF, or when the socket took it all). */
function readAvailable(fd: number): number {
  const buf = Buffer.alloc(64);
  let n = 0;
  try {
    for (let got = fs.readSync(fd, buf); got > 0; got = fs.readSync(fd, buf)) n += got;
  } catch {
    // EAGAIN: a writer is still open, nothing more there now
  }
  return n;
}

/**
 * The probe's question: does this runtime leave a created container waiting on runc's
 * exec fifo, with the init named in state.json? (runc does; runsc and crun do not.)
 */
export async function waitsOnExecFifo(dir: string): Promise<boolean> {
  const st = await fsp.lstat(path.join(dir, EXEC_FIFO)).catch(() => undefined);
  if (st?.isFIFO() !== true) return false;
  const text = await fsp.readFile(path.join(dir, STATE_FILE), 'utf8').catch(() => '');
  return parseRuncState(text) !== undefined;
}

/** The name (comm) runc gives a container's init until it executes the container's program. */
export const RUNC_INIT_COMM = 'runc:[2:INIT]';

/** After the exec, how long a PID 1 may take to block or catch the signal before it is sent anyway. */
const HANDLER_WAIT_MS = 100;

/** What /proc/<pid>/status says about receiving `signo`. */
export interface SignalReadiness {
  /** Still runc's init (the program not executed yet). */
  runcInit: boolean;
  /** PID 1 of its PID namespace (the kernel drops a signal it neither blocks nor catches). */
  namespaceInit: boolean;
  /** The signal is blocked (it waits, e.g. for a signalfd) or has a handler. */
  handled: boolean;
}

export function parseSignalReadiness(status: string, signo: number): SignalReadiness {
  const field = (name: string): string => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1].trim() ?? '';
  const bit = 1n << BigInt(signo - 1);
  const has = (name: string): boolean => /^[0-9a-f]+$/i.test(field(name)) && (BigInt(`0x${field(name)}`) & bit) !== 0n;
  const nspids = field('NSpid').split(/\s+/);
  return {
    runcInit: field('Name') === RUNC_INIT_COMM,
    namespaceInit: nspids.length > 1 && nspids[nspids.length - 1] === '1',
    handled: has('SigBlk') || has('SigCgt'),
  };
}

/**
 * Waits until a signal `signo` sent to a started container's init would reach its
 * program (polling /proc/<pid>/status). A start answers once the init has read the exec
 * fifo, a moment before its execve, and the program then needs a moment to block or
 * catch signals. As PID 1 of its namespace, a process that does neither has the kernel
 * drop the signal: sent too early, a StopContainer right after StartContainer lost its
 * SIGTERM and waited out its whole grace (10 s at 20 pods at once in
 * bench/vs-containerd.ts, a catatonit container). So: wait while runc's init still runs
 * (up to `timeoutMs`), then, for a namespace's PID 1, up to HANDLER_WAIT_MS for the
 * signal to be blocked or caught (a program that never does would drop it whenever it
 * came). True when the signal would be taken (or the process is gone), false when a
 * bound ran out (the caller sends it anyway).
 */
export async function awaitSignalReady(pid: number, signo: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let executedAt: number | undefined;
  for (;;) {
    let status: string;
    try {
      status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    } catch {
      return true; // gone: nothing left to wait for
    }
    const r = parseSignalReadiness(status, signo);
    const now = Date.now();
    if (!r.runcInit) {
      if (!r.namespaceInit || r.handled) return true;
      executedAt ??= now;
      if (now - executedAt >= HANDLER_WAIT_MS) return false;
    } else if (now >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
