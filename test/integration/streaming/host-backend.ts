// A StreamingBackend that runs real host processes instead of containers, so the
// streaming protocols can be tested before the runtime exists: exec spawns the command
// (with a real pty from posix_openpt when tty is set, resized with TIOCSWINSZ), attach
// connects to a long-running host process, portForward dials 127.0.0.1:<port>.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import type { Duplex } from 'node:stream';
import tty from 'node:tty';
import { openPty, setWindowSize } from '../../../native/index.js';
import { NotFoundError } from '../../../src/errors.js';
import type { ExecResult, ExecStreams, StreamingBackend } from '../../../src/streaming/backend.js';

/** A fake container: a host process whose stdio attach connects to. */
export interface HostContainer {
  child: ChildProcess;
}

export class HostBackend implements StreamingBackend {
  /** Every exec'd process, for leak checks. */
  readonly execPids: number[] = [];
  execCount = 0;
  portForwardCount = 0;
  readonly containers = new Map<string, HostContainer>();

  /** Starts a "container": a shell that answers each stdin line with `got <line>`. */
  startContainer(id: string): HostContainer {
    const child = spawn('sh', ['-c', 'while read -r l; do echo "got $l"; done'], { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.on('error', () => undefined);
    const c = { child };
    this.containers.set(id, c);
    return c;
  }

  stopAll(): void {
    for (const c of this.containers.values()) c.child.kill('SIGKILL');
    this.containers.clear();
  }

  async exec(containerId: string, cmd: string[], io: ExecStreams, signal: AbortSignal): Promise<ExecResult> {
    if (containerId !== 'host') throw new NotFoundError(`container "${containerId}" not found`);
    this.execCount++;
    return io.tty ? this.execTty(cmd, io, signal) : this.execPipes(cmd, io, signal);
  }

  private execPipes(cmd: string[], io: ExecStreams, signal: AbortSignal): Promise<ExecResult> {
    const child = spawn(cmd[0], cmd.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    if (child.pid) this.execPids.push(child.pid);
    child.stdin.on('error', () => undefined);
    if (io.stdin) io.stdin.pipe(child.stdin);
    else child.stdin.end();
    if (io.stdout) child.stdout.pipe(io.stdout, { end: false });
    else child.stdout.resume();
    if (io.stderr) child.stderr.pipe(io.stderr, { end: false });
    else child.stderr.resume();
    const kill = (): void => {
      child.kill('SIGKILL');
    };
    signal.addEventListener('abort', kill, { once: true });
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, sig) => {
        signal.removeEventListener('abort', kill);
        io.stdin?.unpipe(child.stdin);
        resolve({ exitCode: code ?? 128 + signalNumber(sig) });
      });
    });
  }

  private async execTty(cmd: string[], io: ExecStreams, signal: AbortSignal): Promise<ExecResult> {
    const { master, slave } = openPty();
    let child: ChildProcess;
    try {
      child = spawn('setsid', ['-w', '-c', ...cmd], { stdio: [slave, slave, slave] });
    } finally {
      fs.closeSync(slave);
    }
    if (child.pid) this.execPids.push(child.pid);
    const term = new tty.ReadStream(master);
    const outputDone = new Promise<void>((resolve) => {
      term.on('data', (d: Buffer) => io.stdout?.write(d));
      // EIO on the master means every slave fd is closed: the output is over.
      term.on('error', () => resolve());
      term.on('end', () => resolve());
      term.on('close', () => resolve());
    });
    io.stdin?.on('data', (d: Buffer) => fs.write(master, d, () => undefined));
    // A terminal has no EOF of its own: ^D is what a shell at a terminal reads as one.
    io.stdin?.on('end', () => fs.write(master, Buffer.from([4]), () => undefined));
    void (async () => {
      if (!io.resize) return;
      for await (const size of io.resize) {
        try {
          setWindowSize(master, size);
        } catch {
          return;
        }
      }
    })();
    const kill = (): void => {
      child.kill('SIGKILL');
    };
    signal.addEventListener('abort', kill, { once: true });
    const exitCode = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, sig) => resolve(code ?? 128 + signalNumber(sig)));
    });
    signal.removeEventListener('abort', kill);
    await outputDone;
    term.destroy();
    return { exitCode };
  }

  async attach(containerId: string, io: ExecStreams, signal: AbortSignal): Promise<void> {
    const c = this.containers.get(containerId);
    if (!c) throw new NotFoundError(`container "${containerId}" not found`);
    const child = c.child;
    const onOut = (d: Buffer): void => {
      io.stdout?.write(d);
    };
    const onIn = (d: Buffer): void => {
      child.stdin!.write(d);
    };
    child.stdout!.on('data', onOut);
    io.stdin?.on('data', onIn);
    await new Promise<void>((resolve) => {
      const done = (): void => {
        child.stdout!.off('data', onOut);
        io.stdin?.off('data', onIn);
        child.off('exit', done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      child.once('exit', done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  portForward(_podSandboxId: string, port: number, conn: Duplex, signal: AbortSignal): Promise<void> {
    this.portForwardCount++;
    return new Promise((resolve, reject) => {
      const sock = net.connect({ port, host: '127.0.0.1' });
      const abort = (): void => {
        sock.destroy();
      };
      signal.addEventListener('abort', abort, { once: true });
      sock.once('connect', () => {
        conn.pipe(sock);
        sock.pipe(conn);
      });
      sock.once('error', (e) => {
        signal.removeEventListener('abort', abort);
        reject(new Error(`dialing 127.0.0.1:${port}: ${e.message}`));
      });
      sock.once('close', () => {
        signal.removeEventListener('abort', abort);
        conn.unpipe(sock);
        resolve();
      });
    });
  }
}

function signalNumber(sig: NodeJS.Signals | null): number {
  return sig ? (os.constants.signals[sig] ?? 9) : 0;
}
