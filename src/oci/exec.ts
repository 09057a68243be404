// One `<runtime> exec` of a command in a container (S18): the process JSON, the runtime
// invocation, and how to kill what it started. What differs per handler type (the pid
// file flag, how a process tree is killed) the runtime answers (`ExecRuntime`, which
// every RuntimeDriver is); the sandbox layer's sessions (src/sandbox/io/) reach this
// through `RuntimeDriver.exec`.
//
// The process is the container's own (env, user, capabilities, rlimits, apparmor …)
// with the args replaced, as containerd does for exec; with a TTY it gets
// `terminal: true` and TERM=xterm when the image set no TERM. It goes to the runtime as
// `--process <file>`, which works the same for runc and runsc.
//
// Killing (measured): SIGKILL to `runc exec` or `runsc exec` leaves the exec'd process
// running in the container. runc writes the process's host PID to --pid-file, and runc
// exec is its subreaper, so while runc exec lives that PID is the process (or its
// zombie): kill it. A runsc process has no host PID; runsc writes the sandbox-internal
// PID to --internal-pid-file and `runsc kill --pid <pid> <id> KILL` ends it.
// A kill takes the whole tree the command started (a `sh -c` child would live on), and
// then lets the runtime's exec reap the process and exit by itself: SIGKILLing the exec
// at once left the process a zombie in the container.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pipe } from '../../native/index.js';
import { errnoCode, errorMessage, InternalError } from '../errors.js';
import { endProcessSpan, startProcessSpan } from './command-span.js';

/** The subset of an OCI process the exec copies from the container. */
export interface OciProcess {
  terminal?: boolean;
  args: string[];
  env?: string[];
  cwd: string;
  [key: string]: unknown;
}

/** The exec's process: the container's, with `cmd` as args and the TTY flag (pure). */
export function execProcessSpec(base: OciProcess, cmd: string[], tty: boolean, consoleSize?: { width: number; height: number }): OciProcess {
  const p: OciProcess = { ...structuredClone(base), args: [...cmd], terminal: tty };
  delete p.consoleSize;
  if (tty && consoleSize) p.consoleSize = { height: consoleSize.height, width: consoleSize.width };
  const env = [...(p.env ?? [])];
  if (tty && !env.some((e) => e.startsWith('TERM='))) env.push('TERM=xterm');
  p.env = env;
  return p;
}

/** The scratch files of one exec: the process JSON and the file the runtime writes the PID to. */
export interface ExecFiles {
  process: string;
  pid: string;
}

/**
 * The pid file of an exec whose PID is a host PID (runc). A runtime whose exec'd process
 * lives in a sandbox (runsc) writes a sandbox PID, under another name
 * (EXEC_SANDBOX_PID_FILE), so nothing on the host takes it for a host PID (the start-time
 * sweep kills what a crash orphaned: src/sandbox/io/exec-scratch-sweep.ts).
 */
export const EXEC_HOST_PID_FILE = 'exec.pid';
export const EXEC_SANDBOX_PID_FILE = 'exec.sandbox-pid';

/** What an exec needs of the runtime it runs through (RuntimeDriver has it all). */
export interface ExecRuntime {
  /** Is the PID the runtime writes for an exec a host PID? */
  readonly execPidOnHost: boolean;
  /** The binary; throws FailedPrecondition when it is missing. */
  binaryPath(): string;
  globalArgs(): string[];
  /** The arguments of `<runtime> exec` after the global args (pure). */
  execArgs(containerId: string, files: ExecFiles): string[];
  /** SIGKILLs the exec'd process (`pid` as the runtime wrote it) and everything it started. */
  killExecTree(containerId: string, pid: number): Promise<void>;
}

/**
 * A stdio slot of the exec: 'pipe' (a real pipe, see native/pipe.ts: never a
 * socketpair, which gVisor breaks for the runtime), 'ignore', or an fd of ours.
 */
export type ExecStdio = 'pipe' | 'ignore' | number;

export interface ExecLaunch {
  /** The `<runtime> exec` child; its exit status is the process's. */
  child: ChildProcess;
  /** Our ends of the 'pipe' slots. */
  stdin: net.Socket | undefined;
  stdout: net.Socket | undefined;
  stderr: net.Socket | undefined;
  /** Resolves once every output pipe has closed (the process and its heirs let go). */
  outputClosed: Promise<void>;
  /** Kills the exec'd process (and the runtime's exec), best effort and idempotent. */
  kill(): Promise<void>;
  /** Resolves with the exit code once the runtime's exec has exited (128+N for a signal). */
  exited: Promise<number>;
  /** Removes the exec's scratch files. */
  cleanup(): Promise<void>;
}

/** One exec as the sandbox layer asks for it (`RuntimeDriver.exec`). */
export interface ExecOptions {
  containerId: string;
  /** The container's OCI bundle config.json (the base process). */
  specPath: string;
  /** Scratch directory for the process file and the pid file (removed at cleanup). */
  scratchDir: string;
  cmd: string[];
  tty: boolean;
  stdio: [ExecStdio, ExecStdio, ExecStdio];
  /** Give the child its own session (a TTY exec: the pty must not be ours). */
  detached?: boolean;
  /** The terminal's initial size (TTY only). */
  consoleSize?: { width: number; height: number };
}

export interface LaunchOptions extends ExecOptions {
  runtime: ExecRuntime;
}

export async function launchExec(o: LaunchOptions): Promise<ExecLaunch> {
  const base = await readBaseProcess(o.containerId, o.specPath);
  const bin = o.runtime.binaryPath(); // FailedPrecondition before anything is made
  const dir = path.join(o.scratchDir, randomBytes(8).toString('hex'));
  const files = await writeExecFiles(dir, o, base);
  const args = [...o.runtime.globalArgs(), ...o.runtime.execArgs(o.containerId, files)];
  const { child, ours } = spawnExec(bin, args, o);
  const span = startProcessSpan(bin, args);
  const outputClosed = Promise.all(
    ours.slice(1).map((sock) => (sock === undefined ? Promise.resolve() : new Promise<void>((resolve) => sock.once('close', () => resolve())))),
  ).then(() => undefined);
  let done = false;
  const exited = new Promise<number>((resolve) => {
    child.once('error', () => {
      done = true;
      resolve(127);
    });
    child.once('exit', (code, sig) => {
      done = true;
      resolve(code ?? 128 + (sig ? (os.constants.signals[sig] ?? 9) : 0));
    });
  });
  void exited.then((code) => endProcessSpan(span, code));
  let killing: Promise<void> | undefined;
  const kill = (): Promise<void> => {
    killing ??= (async () => {
      if (done) return;
      const pid = await readPid(files.pid);
      if (pid > 0 && !done) {
        // The whole tree the command started: a child of a killed `sh -c` would live on.
        await o.runtime.killExecTree(o.containerId, pid);
        // The runtime's exec reaps the process and then exits: killing it now would
        // leave the process a zombie in the container (measured under runc).
        await Promise.race([exited, new Promise((r) => setTimeout(r, REAP_WAIT_MS).unref())]);
      }
      // Before the process started (no pid yet) or as a last resort: the runtime's exec.
      if (!done) child.kill('SIGKILL');
    })();
    return killing;
  };
  return {
    child,
    stdin: ours[0],
    stdout: ours[1],
    stderr: ours[2],
    outputClosed,
    kill,
    exited,
    cleanup: () => fs.rm(dir, { recursive: true, force: true }),
  };
}

/** The container's own process (its bundle's config.json), the base of every exec. */
async function readBaseProcess(containerId: string, specPath: string): Promise<OciProcess> {
  let spec: { process?: OciProcess };
  try {
    spec = JSON.parse(await fs.readFile(specPath, 'utf8')) as { process?: OciProcess };
  } catch (e) {
    throw new InternalError(`reading the spec of container "${containerId}" at "${specPath}": ${errorMessage(e)}`, { cause: e });
  }
  if (!spec.process) throw new InternalError(`the spec of container "${containerId}" has no process`);
  return spec.process;
}

/** Makes the exec's scratch dir with its process file; nothing is left on a failure. */
async function writeExecFiles(dir: string, o: LaunchOptions, base: OciProcess): Promise<ExecFiles> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const files = { process: path.join(dir, 'process.json'), pid: path.join(dir, o.runtime.execPidOnHost ? EXEC_HOST_PID_FILE : EXEC_SANDBOX_PID_FILE) };
  try {
    await fs.writeFile(files.process, JSON.stringify(execProcessSpec(base, o.cmd, o.tty, o.consoleSize)), { mode: 0o600 });
  } catch (e) {
    await fs.rm(dir, { recursive: true, force: true });
    throw new InternalError(`writing the exec process of container "${o.containerId}": ${errorMessage(e)}`, { cause: e });
  }
  return files;
}

/** Spawns the runtime's exec with real pipes for the 'pipe' slots; returns our ends. */
function spawnExec(bin: string, args: string[], o: ExecOptions): { child: ChildProcess; ours: Array<net.Socket | undefined> } {
  const pipes = o.stdio.map((slot) => (slot === 'pipe' ? pipe() : undefined));
  const childFds = o.stdio.map((slot, i) => (slot === 'pipe' ? pipes[i]![i === 0 ? 0 : 1] : slot));
  let child: ChildProcess;
  try {
    child = spawn(bin, args, { stdio: childFds, detached: o.detached ?? false });
  } finally {
    // The child has its copies; ours would keep EOF from coming.
    pipes.forEach((p, i) => {
      if (p) fsSync.closeSync(p[i === 0 ? 0 : 1]);
    });
  }
  const ours = pipes.map((p, i) =>
    p === undefined
      ? undefined
      : i === 0
        ? new net.Socket({ fd: p[1], readable: false, writable: true })
        : new net.Socket({ fd: p[0], readable: true, writable: false }),
  );
  return { child, ours };
}

/** How long the runtime's exec gets to reap the killed process and exit by itself. */
const REAP_WAIT_MS = 10_000;
/** Rounds of stopping newly found descendants before the tree is taken as complete. */
const TREE_ROUNDS = 10;

/** Host PID → parent PID of every live (non-zombie) process (from /proc/<pid>/stat). */
function hostParents(): Map<number, number> {
  const out = new Map<number, number>();
  for (const name of fsSync.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fsSync.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid …": comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z') continue;
    out.set(Number(name), Number(fields[1]));
  }
  return out;
}

/** `root` and its descendants among `parents` (pure). */
export function treeOf(root: number, parents: Map<number, number>): number[] {
  const children = new Map<number, number[]>();
  for (const [pid, ppid] of parents) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  const out: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    const pid = todo.pop()!;
    if (out.includes(pid)) continue;
    out.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** How long the killed processes of a tree get to die (be gone or a zombie) before the kill returns anyway. */
const DEATH_WAIT_MS = 10_000;

/** The process is gone or a zombie (dead, waiting for its parent to reap it). */
function isDead(pid: number): boolean {
  try {
    const stat = fsSync.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/**
 * SIGKILLs a runc exec's process and everything it started. The tree is stopped first
 * (a stopped process cannot fork, and a child keeps its parent while we look), then
 * killed at once, so no descendant escapes by being re-parented to the container's init.
 * Resolves once every one of them is dead: SIGKILL is delivered at once, but a loaded
 * host takes a while to tear a process down, and an ExecSync that answers
 * DEADLINE_EXCEEDED promises the command is gone.
 */
export async function killHostTree(root: number): Promise<void> {
  const killed = stopAndKillTree(root);
  const deadline = Date.now() + DEATH_WAIT_MS;
  while (killed.some((pid) => !isDead(pid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

function stopAndKillTree(root: number): number[] {
  const stopped = new Set<number>();
  for (let round = 0; round < TREE_ROUNDS; round++) {
    const tree = treeOf(root, hostParents()).filter((pid) => !stopped.has(pid));
    if (tree.length === 0) break;
    for (const pid of tree) {
      signal(pid, 'SIGSTOP');
      stopped.add(pid);
    }
  }
  stopped.add(root);
  for (const pid of stopped) signal(pid, 'SIGKILL');
  return [...stopped];
}

async function readPid(file: string): Promise<number> {
  try {
    const n = Number((await fs.readFile(file, 'utf8')).trim());
    return Number.isInteger(n) ? n : 0;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return 0;
    throw e;
  }
}
