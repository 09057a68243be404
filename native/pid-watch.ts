// The one exit watcher of the daemon: a single koffi-async poll() over every watched
// pidfd plus an eventfd that wakes it when the set changes (ARCHITECTURE.md: never park a
// blocking wait per process on koffi's 4-thread pool). Two kinds of watch share it:
// children spawn.ts started (their pidfd turns readable at exit; spawn.ts then reaps them
// with waitid), and any other PID (conmon, a pod's infra: not our children, so no
// waitid: a non-child's pidfd turns readable when it exits, a zombie counts as gone).
import fs from 'node:fs';
import { callAsync, check, errno, libc, SyscallError } from './libc.js';

const O_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const POLLIN = 1;
const ESRCH = 3;
const POLL_RETRY_MS = 10;

const pollFn = libc.func('int poll(void *fds, unsigned long nfds, int timeout)');
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
  onReadable: () => void;
}

const watched = new Map<number, Watch>();
/** Cancelled fds, closed only once the poll that may hold them has returned. */
const closeAfterPoll: number[] = [];
const WAKE = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);
let wakeFd = -1;
let polling = false;

/**
 * Calls `onReadable` once, when `fd` (a pidfd) turns readable; the fd is the callback's
 * to close from then on. Returns the cancel: the fd is closed by the watcher, and the
 * callback never runs.
 */
export function watchReadable(fd: number, onReadable: () => void): () => void {
  const w: Watch = { onReadable };
  watched.set(fd, w);
  wake();
  return () => {
    if (watched.get(fd) !== w) return; // fired already, or cancelled
    watched.delete(fd);
    if (polling) {
      closeAfterPoll.push(fd);
      wake();
    } else fs.closeSync(fd);
  };
}

function wake(): void {
  if (wakeFd === -1) wakeFd = check('eventfd', eventfdFn(0, O_CLOEXEC | EFD_NONBLOCK) as number);
  if (polling) fs.writeSync(wakeFd, WAKE);
  else void pollLoop();
}

async function pollLoop(): Promise<void> {
  polling = true;
  try {
    while (watched.size > 0) {
      const polled = [...watched.entries()];
      const pfds = Buffer.alloc(8 * (polled.length + 1));
      [wakeFd, ...polled.map(([fd]) => fd)].forEach((fd, i) => {
        pfds.writeInt32LE(fd, 8 * i);
        pfds.writeInt16LE(POLLIN, 8 * i + 4);
      });
      let n: number;
      try {
        n = await callAsync<number>(pollFn, pfds, polled.length + 1, -1);
      } catch {
        n = -1; // koffi could not run it: try again shortly
        await new Promise((r) => setTimeout(r, POLL_RETRY_MS));
      }
      for (const fd of closeAfterPoll.splice(0)) fs.closeSync(fd);
      if (n === -1) continue; // EINTR: poll again
      if (pfds.readInt16LE(6) !== 0) drainWake();
      polled.forEach(([fd, w], i) => {
        if (pfds.readInt16LE(8 * (i + 1) + 6) === 0 || watched.get(fd) !== w) return;
        watched.delete(fd);
        w.onReadable();
      });
    }
  } finally {
    polling = false;
    for (const fd of closeAfterPoll.splice(0)) fs.closeSync(fd);
  }
}

function drainWake(): void {
  try {
    fs.readSync(wakeFd, Buffer.alloc(8));
  } catch {
    // EAGAIN: another reader got it first
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
