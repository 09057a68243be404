// A streaming exec (the streaming server's `exec`): `<runtime> exec` as a child whose
// stdio carries the client's streams.
//
// Without a TTY the child gets pipes: the runtime hands them to the process as its
// stdio, stdin's end reaches it as EOF, output is written until both pipes close.
//
// With a TTY the child gets the slave of a pty we open, in a session of its own; the
// runtime (runc and runsc alike, measured) then makes a terminal for the process,
// copies between the two, takes its initial size from ours and re-reads it on SIGWINCH.
// A console socket (the pty master handed over SCM_RIGHTS) is not an option for a
// foreground exec: runc refuses `--console-socket` unless it detaches ("cannot use
// console socket if runc will not detach or allocate tty"), and a detached exec has no
// exit status we could wait for; the Debian runsc ignores it without --detach and
// breaks with it. Output is read from the master with `tty.ReadStream` (EIO = every
// slave closed: the output is over); a resize sets the master's size and signals the
// runtime.
//
// The exit code is the runtime exec's exit status, which is the process's.
import fs from 'node:fs';
import tty from 'node:tty';
import { setTimeout as sleep } from 'node:timers/promises';
import { openPty, setWindowSize, type WindowSize } from '../../../native/index.js';
import type { ExecResult, ExecStreams, TerminalSize } from '../../streaming/backend.js';
import type { ExecLaunch, ExecOptions } from '../../oci/exec.js';
import type { RuntimeDriver } from '../../oci/runtime.js';

/** How long a TTY exec waits for the client's first size, so the process starts with it. */
export const FIRST_RESIZE_WAIT_MS = 250;
/** After the exit, how long output may still drain from the terminal. */
export const TTY_DRAIN_AFTER_EXIT_MS = 5_000;
/** ^D: what a shell at a terminal reads as the end of its input. */
const VEOF = Buffer.from([4]);

/** The exec to run: the runtime of the container's handler and what to run where. */
export type ExecSessionOptions = Omit<ExecOptions, 'tty' | 'stdio' | 'detached'> & { driver: RuntimeDriver };

export async function runExecSession(o: ExecSessionOptions, io: ExecStreams, signal: AbortSignal): Promise<ExecResult> {
  return io.tty ? execTty(o, io, signal) : execPipes(o, io, signal);
}

function onAbort(signal: AbortSignal, launch: ExecLaunch): () => void {
  const kill = (): void => {
    void launch.kill();
  };
  if (signal.aborted) kill();
  else signal.addEventListener('abort', kill, { once: true });
  return () => signal.removeEventListener('abort', kill);
}

async function execPipes(o: ExecSessionOptions, io: ExecStreams, signal: AbortSignal): Promise<ExecResult> {
  const launch = await o.driver.exec({ ...o, tty: false, stdio: [io.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  const { stdin, stdout, stderr } = launch;
  const unAbort = onAbort(signal, launch);
  try {
    if (io.stdin && stdin) {
      // The process may exit before reading all of it: EPIPE is not our error.
      stdin.on('error', () => undefined);
      io.stdin.pipe(stdin);
    }
    if (io.stdout) stdout!.pipe(io.stdout, { end: false });
    else stdout!.resume();
    if (io.stderr) stderr!.pipe(io.stderr, { end: false });
    else stderr!.resume();
    const [exitCode] = await Promise.all([launch.exited, launch.outputClosed]);
    return { exitCode };
  } finally {
    unAbort();
    if (io.stdin && stdin) {
      io.stdin.unpipe(stdin);
      stdin.destroy();
    }
    await launch.kill().catch(() => undefined);
    await launch.cleanup().catch(() => undefined);
  }
}

async function firstSize(io: ExecStreams): Promise<{ first: TerminalSize | undefined; rest: AsyncIterator<TerminalSize> | undefined }> {
  if (!io.resize) return { first: undefined, rest: undefined };
  const it = io.resize[Symbol.asyncIterator]();
  const next = it.next();
  const r = await Promise.race([next, sleep(FIRST_RESIZE_WAIT_MS).then(() => undefined)]);
  if (r === undefined) {
    // Not there yet: the pending next() still delivers it to the loop below.
    return { first: undefined, rest: prepend(next, it) };
  }
  return { first: r.done ? undefined : r.value, rest: r.done ? undefined : it };
}

function prepend(pending: Promise<IteratorResult<TerminalSize>>, it: AsyncIterator<TerminalSize>): AsyncIterator<TerminalSize> {
  let first: Promise<IteratorResult<TerminalSize>> | undefined = pending;
  return {
    next: () => {
      if (first) {
        const f = first;
        first = undefined;
        return f;
      }
      return it.next();
    },
  };
}

async function execTty(o: ExecSessionOptions, io: ExecStreams, signal: AbortSignal): Promise<ExecResult> {
  const { first, rest } = await firstSize(io);
  const pty = openPty();
  let term: tty.ReadStream | undefined;
  let launch: ExecLaunch | undefined;
  try {
    if (first) setWindowSize(pty.master, toWindow(first));
    try {
      launch = await o.driver.exec({
        ...o,
        tty: true,
        stdio: [pty.slave, pty.slave, pty.slave],
        detached: true,
        // runc sizes the process's terminal from this before the process starts; the
        // copy from our terminal comes a moment later (a race a `stty size` can lose).
        ...(first ? { consoleSize: toWindow(first) } : {}),
      });
    } finally {
      fs.closeSync(pty.slave); // the child has its copies; ours would keep EIO from coming
    }
    const { child } = launch;
    const unAbort = onAbort(signal, launch);
    const t = new tty.ReadStream(pty.master);
    term = t;
    const outputDone = new Promise<void>((resolve) => {
      t.on('data', (d: Buffer) => io.stdout?.write(d));
      t.on('error', () => resolve()); // EIO: the other side closed
      t.on('end', () => resolve());
      t.on('close', () => resolve());
    });
    const write = (d: Buffer): void => {
      if (!t.destroyed) t.write(d);
    };
    const onData = (d: Buffer): void => write(d);
    const onEnd = (): void => write(VEOF);
    io.stdin?.on('data', onData);
    io.stdin?.once('end', onEnd);
    let exited = false;
    void (async () => {
      if (!rest) return;
      for (;;) {
        const r = await rest.next();
        if (r.done || exited) return;
        try {
          setWindowSize(pty.master, toWindow(r.value));
          if (child.pid) process.kill(child.pid, 'SIGWINCH');
        } catch {
          return; // the terminal or the runtime is gone: nothing left to resize
        }
      }
    })();
    try {
      const exitCode = await launch.exited;
      exited = true;
      await Promise.race([outputDone, sleep(TTY_DRAIN_AFTER_EXIT_MS)]);
      return { exitCode };
    } finally {
      unAbort();
      io.stdin?.off('data', onData);
      io.stdin?.off('end', onEnd);
    }
  } finally {
    if (term)
      term.destroy(); // closes the master
    else fs.closeSync(pty.master);
    if (launch) {
      await launch.kill().catch(() => undefined);
      await launch.cleanup().catch(() => undefined);
    }
  }
}

function toWindow(s: TerminalSize): WindowSize {
  return { width: s.width, height: s.height };
}
