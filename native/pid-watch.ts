// The one exit watcher of the daemon: an epoll set of every watched pidfd (plus an
// eventfd), waited on by a single koffi-async epoll_wait (ARCHITECTURE.md: never park a
// blocking wait per process on koffi's 4-thread pool). A watch joins the set with one
// synchronous epoll_ctl, which the wait in flight sees at once: nothing wakes it and no fd
// array is rebuilt per change (issue 13: a poll() over the fds woken and marshalled again
// for every new watch was 19 pool round trips per pod lifecycle). The eventfd only wakes
// the wait when the last watch is cancelled, so the pool thread is given back. Two kinds of
// watch share it: children spawn.ts started (their pidfd turns readable at exit; spawn.ts
// then reaps them with waitid), and any other PID (conmon, a pod's infra: not our
// children, so no waitid: a non-child's pidfd turns readable when it exits, a zombie
// counts as gone).
import fs from 'node:fs';
import { callAsync, check, errno, libc, SyscallError } from './libc.js';

const O_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const EPOLL_CTL_ADD = 1;
const EPOLL_CTL_DEL = 2;
const EPOLLIN = 1;
const ESRCH = 3;
const POLL_RETRY_MS = 10;
/** struct epoll_event is packed on x86-64: u32 events, u64 data. */
const EVENT_BYTES = 12;
const MAX_EVENTS = 64;
/** The eventfd's token; watches get 1, 2, … (never reused while the daemon runs: 2^32 watches). */
const WAKE_TOKEN = 0;

const epollCreateFn = libc.func('int epoll_create1(int flags)');
const epollCtlFn = libc.func('int epoll_ctl(int epfd, int op, int fd, void *event)');
const epollWaitFn = libc.func('int epoll_wait(int epfd, void *events, int maxevents, int timeout)');
const eventfdFn = libc.func('int eventfd(unsigned int initval, int flags)');
const pidfdOpenFn = libc.func('int pidfd_open(int pid, unsigned int flags)');
const pidfdSignalFn = libc.func('int pidfd_send_signal(int pidfd, int sig, void *info, unsigned int flags)');

/** A pidfd of `pid` (PIDFD_NONBLOCK unset); undefined when the process is gone (ESRCH). */
export function openPidfd(pid: number): number | undefined {
  const fd = pidfdOpenFn(pid, 0) as number;
  if (fd !== -1) return fd;
  const e = errno();
  if (e === ESRCH) return undefined;
  throw new SyscallError('pidfd_open', e, `pid ${pid}`);
}

/**
 * Sends signal number `signal` to the process of `pidfd` (never a recycled PID); false
 * when it has exited (ESRCH), a throw for any other failure.
 */
export function pidfdSendSignal(pidfd: number, signal: number): boolean {
  if ((pidfdSignalFn(pidfd, signal, null, 0) as number) === 0) return true;
  const e = errno();
  if (e === ESRCH) return false;
  throw new SyscallError('pidfd_send_signal', e, `signal ${signal}`);
}

interface Watch {
  fd: number;
  onReadable: () => void;
}

/** Watches by token (the epoll data of their fd): a token is never reused, so an event of a cancelled watch is never taken for a newer one on the same fd number. */
const watched = new Map<number, Watch>();
const WAKE = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);
/** Written by the pool thread during a wait; one wait at a time. */
const events = Buffer.alloc(EVENT_BYTES * MAX_EVENTS);
/** epoll_ctl's argument (main thread only). */
const ctlEvent = Buffer.alloc(EVENT_BYTES);
let epollFd = -1;
let wakeFd = -1;
let lastToken = WAKE_TOKEN;
let waiting = false;

function epollCtl(op: number, fd: number, token: number): void {
  ctlEvent.writeUInt32LE(EPOLLIN, 0);
  ctlEvent.writeUInt32LE(token, 4);
  ctlEvent.writeUInt32LE(0, 8);
  check('epoll_ctl', epollCtlFn(epollFd, op, fd, ctlEvent) as number, `fd ${fd}`);
}

function ensureEpoll(): void {
  if (epollFd !== -1) return;
  epollFd = check('epoll_create1', epollCreateFn(O_CLOEXEC) as number);
  wakeFd = check('eventfd', eventfdFn(0, O_CLOEXEC | EFD_NONBLOCK) as number);
  epollCtl(EPOLL_CTL_ADD, wakeFd, WAKE_TOKEN);
}

/**
 * Calls `onReadable` once, when `fd` (a pidfd) turns readable; the fd is the callback's
 * to close from then on. Returns the cancel: the fd is closed by the watcher, and the
 * callback never runs.
 */
export function watchReadable(fd: number, onReadable: () => void): () => void {
  ensureEpoll();
  lastToken = lastToken >= 0xffff_ffff ? 1 : lastToken + 1;
  const token = lastToken;
  const w: Watch = { fd, onReadable };
  epollCtl(EPOLL_CTL_ADD, fd, token);
  watched.set(token, w);
  if (!waiting) void waitLoop();
  return () => {
    if (watched.get(token) !== w) return; // fired already, or cancelled
    watched.delete(token);
    forget(fd);
    fs.closeSync(fd);
    // The last watch gone: the wait ends, and its pool thread is free again.
    if (watched.size === 0 && waiting) fs.writeSync(wakeFd, WAKE);
  };
}

/** Takes `fd` out of the epoll set (before it is closed, so its number may be reused). */
function forget(fd: number): void {
  try {
    epollCtl(EPOLL_CTL_DEL, fd, 0);
  } catch {
    // not in the set: nothing to take out
  }
}

async function waitLoop(): Promise<void> {
  waiting = true;
  try {
    while (watched.size > 0) {
      let n: number;
      try {
        n = await callAsync<number>(epollWaitFn, epollFd, events, MAX_EVENTS, -1);
      } catch {
        n = -1; // koffi could not run it: try again shortly
        await new Promise((r) => setTimeout(r, POLL_RETRY_MS));
      }
      for (let i = 0; i < n; i++) {
        const token = events.readUInt32LE(EVENT_BYTES * i + 4);
        if (token === WAKE_TOKEN) {
          drainWake();
          continue;
        }
        const w = watched.get(token);
        if (w === undefined) continue; // cancelled while the wait ran
        watched.delete(token);
        forget(w.fd);
        w.onReadable();
      }
    }
  } finally {
    waiting = false;
  }
}

function drainWake(): void {
  try {
    fs.readSync(wakeFd, Buffer.alloc(8));
  } catch {
    // EAGAIN: drained already
  }
}

/** The end of one process (any PID: no waitid, nothing reaped). */
export interface PidWatch {
  readonly pid: number;
  /** Settles when the process has exited (at once when it was gone already). */
  readonly gone: Promise<void>;
  /** True once `gone` has settled. */
  readonly ended: boolean;
  /** Stops watching; `gone` then never settles. Idempotent. */
  close(): void;
}

/**
 * Watches `pid` through a pidfd. Open it while the PID is known to be the process meant
 * (a PID that ended before can be another process's by now).
 */
export function watchPid(pid: number): PidWatch {
  let ended = false;
  let cancel = (): void => undefined;
  let resolveGone!: () => void;
  const gone = new Promise<void>((r) => (resolveGone = r));
  const end = (): void => {
    ended = true;
    resolveGone();
  };
  const fd = pid > 0 ? openPidfd(pid) : undefined;
  if (fd === undefined) end();
  else {
    cancel = watchReadable(fd, () => {
      fs.closeSync(fd);
      end();
    });
  }
  return {
    pid,
    gone,
    get ended() {
      return ended;
    },
    close: () => cancel(),
  };
}

/** True when the watched process has ended within `timeoutMs`; false at the deadline. */
export async function endedWithin(w: PidWatch, timeoutMs: number): Promise<boolean> {
  if (w.ended) return true;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)));
  try {
    return await Promise.race([w.gone.then(() => true), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** True when `pid` has exited (or is a zombie) within `timeoutMs`; false at the deadline. */
export async function waitPidExit(pid: number, timeoutMs: number): Promise<boolean> {
  const w = watchPid(pid);
  try {
    return await endedWithin(w, timeoutMs);
  } finally {
    w.close();
  }
}

/**
 * One watch per key (a container's or a pod's ID): `onGone(key)` runs once when its
 * process ends. A key watched already keeps its first watch, ended or not, until it is
 * forgotten (when its object is removed).
 */
export class PidWatches {
  private readonly watches = new Map<string, PidWatch>();

  constructor(private readonly onGone: (key: string) => void) {}

  watch(key: string, pid: number): void {
    if (pid <= 0 || this.watches.has(key)) return;
    const w = watchPid(pid);
    this.watches.set(key, w);
    void w.gone.then(() => this.watches.get(key) === w && this.onGone(key)); // else forgotten meanwhile
  }

  /** The watch of `key` (ended or not); undefined when it was never watched or is forgotten. */
  get(key: string): PidWatch | undefined {
    return this.watches.get(key);
  }

  forget(key: string): void {
    this.watches.get(key)?.close();
    this.watches.delete(key);
  }

  close(): void {
    for (const w of this.watches.values()) w.close();
    this.watches.clear();
  }
}
