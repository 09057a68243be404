// Starting programs off the event loop's fork path: posix_spawn(3) (glibc clones with
// CLONE_VM|CLONE_VFORK, so the cost does not grow with the daemon's heap, unlike
// child_process's fork on the event loop: ~9 ms each here), a pidfd per child, and one
// exit watcher for all of them: a single koffi-async poll() over every pidfd plus an
// eventfd that wakes it when the set changes (ARCHITECTURE.md: never park a blocking
// wait per process on koffi's 4-thread pool; never wait4(-1), libuv reaps its own
// children by PID; the watcher is native/pid-watch.ts, shared with the watches of PIDs
// that are not our children). Exit statuses come from waitid(P_PIDFD), which also reaps.
import fs from 'node:fs';
import os from 'node:os';
import { callAsync, check, libc, SyscallError } from './libc.js';
import { openPidfd, pidfdSendSignal, watchReadable } from './pid-watch.js';

const POSIX_SPAWN_SETSIGDEF = 0x04;
const POSIX_SPAWN_SETSIGMASK = 0x08;
const POSIX_SPAWN_SETSID = 0x80;
const O_RDWR = 2;
const ESRCH = 3;
const MFD_CLOEXEC = 1;
const P_PIDFD = 3;
const WEXITED = 4;
const CLD_EXITED = 1;
/** glibc's posix_spawn_file_actions_t is 80 bytes, posix_spawnattr_t 336, sigset_t 128: room to spare. */
const OPAQUE_BYTES = 1024;
const SIGINFO_BYTES = 128;

const spawnpFn = libc.func('int posix_spawnp(_Out_ int *pid, const char *file, void *actions, void *attr, const char **argv, const char **envp)');
const faInit = libc.func('int posix_spawn_file_actions_init(void *actions)');
const faDestroy = libc.func('int posix_spawn_file_actions_destroy(void *actions)');
const faDup2 = libc.func('int posix_spawn_file_actions_adddup2(void *actions, int fd, int newfd)');
const faOpen = libc.func('int posix_spawn_file_actions_addopen(void *actions, int fd, const char *path, int oflag, uint32_t mode)');
const faChdir = libc.func('int posix_spawn_file_actions_addchdir_np(void *actions, const char *path)');
const attrInit = libc.func('int posix_spawnattr_init(void *attr)');
const attrFlags = libc.func('int posix_spawnattr_setflags(void *attr, short flags)');
const attrSigmask = libc.func('int posix_spawnattr_setsigmask(void *attr, void *sigset)');
const attrSigdefault = libc.func('int posix_spawnattr_setsigdefault(void *attr, void *sigset)');
const sigemptysetFn = libc.func('int sigemptyset(void *set)');
const sigfillsetFn = libc.func('int sigfillset(void *set)');
const waitidFn = libc.func('int waitid(int idtype, int id, void *infop, int options)');
const memfdCreateFn = libc.func('int memfd_create(const char *name, unsigned int flags)');

/** How a child ended: its exit code, or the signal that killed it (the other is null). */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  /** The child's fds 0, 1, 2, 3 …: a parent fd to dup2 there, or 'ignore' (/dev/null). */
  stdio: Array<number | 'ignore'>;
  /** The whole environment (default: this process's). */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** A new session (setsid), like child_process's `detached`. */
  setsid?: boolean;
}

export interface SpawnedChild {
  pid: number;
  /** Settles when the child has exited and is reaped. */
  exited: Promise<ChildExit>;
  /** Sends a signal through the pidfd (never a recycled PID); false once it is gone. */
  kill(signal: NodeJS.Signals): boolean;
}

const SIGNALS: Record<string, number> = os.constants.signals;

function signalName(n: number): NodeJS.Signals | null {
  const e = Object.entries(SIGNALS).find(([, v]) => v === n);
  return (e?.[0] as NodeJS.Signals | undefined) ?? null;
}

function envArray(env: Record<string, string | undefined>): Array<string | null> {
  const out: Array<string | null> = [];
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out.push(`${k}=${v}`);
  out.push(null);
  return out;
}

function fileActions(o: SpawnOptions): Buffer {
  const fa = Buffer.alloc(OPAQUE_BYTES);
  faInit(fa);
  try {
    o.stdio.forEach((fd, target) => {
      const rc = fd === 'ignore' ? (faOpen(fa, target, '/dev/null', O_RDWR, 0) as number) : (faDup2(fa, fd, target) as number);
      if (rc !== 0) throw new SyscallError('posix_spawn_file_actions', rc, `fd ${target}`);
    });
    const rc = o.cwd === undefined ? 0 : (faChdir(fa, o.cwd) as number);
    if (rc !== 0) throw new SyscallError('posix_spawn_file_actions_addchdir_np', rc, `"${o.cwd}"`);
  } catch (e) {
    faDestroy(fa);
    throw e;
  }
  return fa;
}

/**
 * The two attribute sets (with and without setsid), made once: posix_spawn only reads
 * them, so one serves every spawn, on any thread (six libc calls and three buffers less
 * per spawn; issue 13). They live as long as the process (glibc's destroy frees nothing).
 */
const spawnAttrs = new Map<boolean, Buffer>();

function sharedSpawnAttr(setsid: boolean): Buffer {
  let attr = spawnAttrs.get(setsid);
  if (attr === undefined) {
    attr = spawnAttr(setsid);
    spawnAttrs.set(setsid, attr);
  }
  return attr;
}

/** Every signal back to its default and none blocked in the child, as libuv does for child_process. */
function spawnAttr(setsid: boolean): Buffer {
  const attr = Buffer.alloc(OPAQUE_BYTES);
  attrInit(attr);
  const all = Buffer.alloc(OPAQUE_BYTES);
  const none = Buffer.alloc(OPAQUE_BYTES);
  sigfillsetFn(all);
  // sigfillset leaves out glibc's internal signals 32 and 33, which glibc's spawn child
  // then ignores: set their bits too (signal n is bit n-1), so nothing stays SIG_IGN.
  all[3] |= 0x80;
  all[4] |= 0x01;
  sigemptysetFn(none);
  attrSigdefault(attr, all);
  attrSigmask(attr, none);
  attrFlags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | (setsid ? POSIX_SPAWN_SETSID : 0));
  return attr;
}

/** Starts `file` (searched on PATH when it has no slash) with argv [file, ...args]. */
export function spawnProcess(file: string, args: string[], o: SpawnOptions): SpawnedChild {
  const call = spawnCall(file, args, o);
  let rc: number;
  try {
    rc = spawnpFn(...call.args) as number;
  } finally {
    call.done();
  }
  return spawned(file, rc, call.pid[0]);
}

/**
 * spawnProcess on one of koffi's pool threads: posix_spawn's CLONE_VFORK suspends the
 * calling thread until the child has exec'd (under load, milliseconds of a busy run
 * queue), and on the event loop that held every RPC up (issue 13: what serialized
 * CreateContainer at once). The fds in `o.stdio` must stay open until it settles.
 */
export async function spawnProcessAsync(file: string, args: string[], o: SpawnOptions): Promise<SpawnedChild> {
  const call = spawnCall(file, args, o);
  let rc: number;
  try {
    rc = await callAsync<number>(spawnpFn, ...call.args);
  } finally {
    call.done();
  }
  return spawned(file, rc, call.pid[0]);
}

/** posix_spawnp's arguments, and what frees them once it has returned. */
function spawnCall(file: string, args: string[], o: SpawnOptions): { args: unknown[]; pid: Int32Array; done: () => void } {
  const fa = fileActions(o);
  const attr = sharedSpawnAttr(o.setsid ?? false);
  const pid = new Int32Array(1);
  return {
    args: [pid, file, fa, attr, [file, ...args, null], envArray(o.env ?? process.env)],
    pid,
    done: () => {
      faDestroy(fa);
    },
  };
}

/** The child posix_spawnp started (rc 0), its exit watched through a pidfd. */
function spawned(file: string, rc: number, pid: number): SpawnedChild {
  if (rc !== 0) throw new SyscallError('posix_spawnp', rc, `"${file}"`);
  // The child is ours and not reaped yet, so the PID cannot have been recycled.
  const pidfd = openPidfd(pid);
  if (pidfd === undefined) throw new SyscallError('pidfd_open', ESRCH, `pid ${pid}`);
  // Set when the pidfd is closed (synchronously, before its number can be reused).
  let gone = false;
  const exited = watchExit(pidfd, () => (gone = true));
  return {
    pid,
    exited,
    kill: (signal) => !gone && pidfdSendSignalQuiet(pidfd, SIGNALS[signal] ?? 9),
  };
}

/** A signal to a child of ours: false when it is gone or cannot be signalled (as kill(2)'s -1 was read before). */
function pidfdSendSignalQuiet(pidfd: number, signal: number): boolean {
  try {
    return pidfdSendSignal(pidfd, signal);
  } catch {
    return false;
  }
}

/** Settles once the child has exited and is reaped (its pidfd in the one exit watcher). */
function watchExit(pidfd: number, closing: () => void): Promise<ChildExit> {
  return new Promise<ChildExit>((resolve) => watchReadable(pidfd, () => void reap(pidfd, closing).then(resolve)));
}

/**
 * waitid(P_PIDFD) on a readable pidfd: the exit status, and the child is reaped. Async:
 * a multi-threaded child (runc, a Go program) may take a moment between its pidfd turning
 * readable and its last thread being gone (measured ~1 ms), not to be spent on the event loop.
 */
async function reap(pidfd: number, closing: () => void): Promise<ChildExit> {
  const info = Buffer.alloc(SIGINFO_BYTES);
  // No signal handler runs on koffi's pool threads, so no EINTR there.
  const rc = await callAsync<number>(waitidFn, P_PIDFD, pidfd, info, WEXITED).catch(() => -1);
  closing();
  fs.closeSync(pidfd);
  // si_code at offset 8, si_status at 24 (x86-64 siginfo_t, SIGCHLD layout).
  const code = info.readInt32LE(8);
  const status = info.readInt32LE(24);
  return rc === -1 ? { code: null, signal: null } : code === CLD_EXITED ? { code: status, signal: null } : { code: null, signal: signalName(status) };
}

/** A close-on-exec anonymous file (memfd_create), for a child's captured output or its input. */
export function memFile(name: string): number {
  return check('memfd_create', memfdCreateFn(name, MFD_CLOEXEC) as number, `"${name}"`);
}

/** The whole content of a file descriptor from offset 0 (pread: the offset is left alone). */
export function readWhole(fd: number, limit: number): { data: Buffer; truncated: boolean } {
  const size = fs.fstatSync(fd).size;
  const data = Buffer.alloc(Math.min(size, limit));
  let got = 0;
  while (got < data.length) {
    const n = fs.readSync(fd, data, got, data.length - got, got);
    if (n === 0) break;
    got += n;
  }
  return { data: data.subarray(0, got), truncated: size > limit };
}

export interface RunOptions {
  env?: Record<string, string | undefined>;
  /** Written to the child's stdin (else stdin is /dev/null). */
  input?: string;
  timeoutMs: number;
  /** Bytes kept of stdout and of stderr each. */
  outputLimit: number;
  /** Both stdout and stderr go to this fd instead of being captured. */
  outputFd?: number;
}

export interface RunResult extends ChildExit {
  stdout: string;
  stderr: string;
  /** Killed (SIGKILL) after timeoutMs. */
  timedOut: boolean;
  /** stdout or stderr was longer than outputLimit (cut there). */
  truncated: boolean;
}

/**
 * Runs a program to its exit with stdout and stderr captured in memfds (read once it has
 * exited: a grandchild keeping them open does not hold the caller up).
 */
export async function runProcess(file: string, args: string[], o: RunOptions): Promise<RunResult> {
  const fds: number[] = [];
  const own = (fd: number): number => (fds.push(fd), fd);
  try {
    let stdin: number | 'ignore' = 'ignore';
    if (o.input !== undefined) {
      stdin = own(memFile('stdin'));
      fs.writeSync(stdin, o.input, 0); // at offset 0, which stays the file's offset
    }
    const [out, err] = o.outputFd !== undefined ? [o.outputFd, o.outputFd] : [own(memFile('stdout')), own(memFile('stderr'))];
    const child = await spawnProcessAsync(file, args, { stdio: [stdin, out, err], ...(o.env ? { env: o.env } : {}) });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = child.kill('SIGKILL');
    }, o.timeoutMs);
    const exit = await child.exited.finally(() => clearTimeout(timer));
    if (o.outputFd !== undefined) return { ...exit, stdout: '', stderr: '', timedOut, truncated: false };
    const [so, se] = [readWhole(out, o.outputLimit), readWhole(err, o.outputLimit)];
    return { ...exit, stdout: so.data.toString('utf8'), stderr: se.data.toString('utf8'), timedOut, truncated: so.truncated || se.truncated };
  } finally {
    for (const fd of fds) fs.closeSync(fd);
  }
}
