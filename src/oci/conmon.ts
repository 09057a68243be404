// Runs a container's `create` under Debian's conmon, which keeps the container's stdio
// (CRI log file), writes the exit file when it ends, and outlives the daemon: conmon
// daemonizes itself into its own session, so a daemon restart never touches it.
//
// conmon daemonizes *before* the runtime's create completes; the only reliable moment
// "create is done" is the sync pipe: `_OCI_SYNCPIPE=<fd>` in its env plus that fd open,
// on which conmon writes `{"pid": N}` (or `{"pid": -1, "message": "…"}`) once create
// has finished. So we never sleep or poll for the pidfile.
import { closeSync, constants as fsConstants, mkdirSync, readFileSync } from 'node:fs';
import fs, { type FileHandle } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { openPidfd, pidfdSendSignal, pipe, type SpawnedChild } from '../../native/index.js';
import { DeadlineExceededError, errnoCode, errorMessage, FailedPreconditionError, InternalError, SandlotError } from '../errors.js';
import { resolveBinary, spawnChild } from './command.js';
import { commandSpan } from './command-span.js';
import { SPAN_ATTR, withSpanAttributes } from '../observe/spans.js';
import type { RuntimeDriver } from './runtime.js';

export interface ConmonCreateOptions {
  /** Container ID (also the exit file's name in exitDir). */
  id: string;
  /** Container name for conmon's logs. */
  name: string;
  runtime: RuntimeDriver;
  bundle: string;
  /** Where conmon writes the container PID. */
  containerPidFile: string;
  /** Where conmon writes its own PID. */
  conmonPidFile: string;
  exitDir: string;
  /** The CRI log file (k8s-file format). */
  logPath: string;
  socketDir: string;
  persistDir: string;
  /** conmon's own stdout/stderr (its errors before it can log anywhere else). */
  conmonLogFile: string;
  terminal?: boolean;
  stdin?: boolean;
  /** With stdin: close the container's stdin when the first attach ends (CRI stdin_once). */
  stdinOnce?: boolean;
  /**
   * Run this program as conmon's runtime instead of the handler's binary (a wrapper such
   * as the runsc subcontainer shim); `runtimeArgs` then replace the handler's global args.
   */
  runtimePath?: string;
  runtimeArgs?: string[];
  timeoutMs?: number;
}

export interface ConmonCreated {
  /** The container's init PID, as conmon learned it from the runtime. */
  pid: number;
  conmonPid: number;
}

export const CONMON_CREATE_TIMEOUT_MS = 120_000;

/** Exit file content: the exit code (or 128+signal) conmon wrote when the container ended. */
export async function readExitFile(exitDir: string, id: string): Promise<number | undefined> {
  try {
    const text = (await fs.readFile(path.join(exitDir, id), 'utf8')).trim();
    if (text === '') return undefined;
    const code = Number(text);
    return Number.isInteger(code) ? code : undefined;
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
}

/** What signalling a container's init through its pidfd did. */
/** A signal's number from its name ("SIGTERM") or a number as text; undefined when unknown. */
export function signalNumber(signal: string): number | undefined {
  return /^\d+$/.test(signal) ? Number(signal) : os.constants.signals[signal as NodeJS.Signals];
}

export type InitSignalled = 'sent' | 'gone' | 'not-conmon-child';

/**
 * Signals a container's init through a pidfd, without a runtime process (issue 13: a
 * `runc kill` per StopContainer). conmon makes itself the child subreaper before it runs
 * `<runtime> create`, so once create has returned the init is conmon's child: a process
 * of PID `pid` whose parent is the container's conmon is the init, and the pidfd opened
 * before that check pins it (a PID that ended meanwhile cannot be recycled under it).
 * 'gone' when the init has exited; 'not-conmon-child' when the PID is no child of that
 * conmon (the caller asks the runtime). `signal` is a name ("SIGTERM") or a number.
 */
export function signalContainerInit(pid: number, conmonPid: number, signal: string): InitSignalled {
  const signo = signalNumber(signal);
  if (signo === undefined || pid <= 0 || conmonPid <= 0) return 'not-conmon-child';
  const pidfd = openPidfd(pid);
  if (pidfd === undefined) return 'gone';
  try {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return 'gone';
    }
    // Fields after the command name (which may hold spaces): state, ppid, …
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(ppid) !== conmonPid) return 'not-conmon-child';
    if (state === 'Z') return 'gone';
    return pidfdSendSignal(pidfd, signo) ? 'sent' : 'gone';
  } finally {
    closeSync(pidfd);
  }
}

export class Conmon {
  private readonly binary: string;

  private readonly place: ((pid: number) => Promise<void>) | undefined;

  /** `place` moves a started conmon into its cgroup (config conmon_cgroup). */
  constructor(options: { path: string; place?: (pid: number) => Promise<void> }) {
    const bin = resolveBinary(options.path);
    if (bin === undefined) throw new InternalError(`conmon binary "${options.path}" not found`);
    this.binary = bin;
    this.place = options.place;
  }

  get path(): string {
    return this.binary;
  }

  args(o: ConmonCreateOptions): string[] {
    const args = [
      '--cid',
      o.id,
      '--cuuid',
      o.id,
      '--name',
      o.name,
      '--runtime',
      o.runtimePath ?? o.runtime.binaryPath(),
      '--bundle',
      o.bundle,
      '--container-pidfile',
      o.containerPidFile,
      '--conmon-pidfile',
      o.conmonPidFile,
      '--exit-dir',
      o.exitDir,
      '--log-path',
      `k8s-file:${o.logPath}`,
      '--socket-dir-path',
      o.socketDir,
      '--persist-dir',
      o.persistDir,
    ];
    for (const a of o.runtimeArgs ?? o.runtime.globalArgs()) args.push('--runtime-arg', a);
    if (o.terminal) args.push('--terminal');
    if (o.stdin) {
      args.push('--stdin');
      if (!o.stdinOnce) args.push('--leave-stdin-open');
    }
    return args;
  }

  /**
   * Spawns conmon (spawnChild: posix_spawn, a session of its own) with the sync pipe in
   * slot 3: a real pipe whose write end we close once conmon has it. conmon keeps stdio
   * on its log file, never our pipes, so nothing ties its lifetime to ours.
   */
  private async start(o: ConmonCreateOptions, logFd: number, ctx: string): Promise<{ child: SpawnedChild; sync: net.Socket }> {
    const [syncRead, syncWrite] = pipe();
    try {
      const child = await spawnChild(this.binary, this.args(o), {
        stdio: ['ignore', logFd, logFd, syncWrite],
        env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', _OCI_SYNCPIPE: '3' },
        // conmon drops files in its working directory (an `oom` marker when the
        // cgroup reports an OOM): keep them with the container, not in our cwd.
        cwd: o.persistDir,
        setsid: true,
      });
      return { child, sync: new net.Socket({ fd: syncRead, readable: true, writable: false }) };
    } catch (e) {
      closeSync(syncRead);
      throw wrapSpawn(ctx, e);
    } finally {
      closeSync(syncWrite);
    }
  }

  /** Starts conmon, which runs `<runtime> create`; resolves once create has finished. */
  create(o: ConmonCreateOptions): Promise<ConmonCreated> {
    return withSpanAttributes({ [SPAN_ATTR.containerId]: o.id, [SPAN_ATTR.handler]: o.runtime.name }, () =>
      commandSpan(this.binary, this.args(o), () => this.createUnder(o), 'conmon create'),
    );
  }

  private async createUnder(o: ConmonCreateOptions): Promise<ConmonCreated> {
    // On the event loop: directories that mostly exist already (a stat each), where five
    // promise mkdirs were five thread-pool round trips per container (issue 13).
    for (const dir of [o.exitDir, o.socketDir, o.persistDir, path.dirname(o.logPath), path.dirname(o.conmonLogFile)]) mkdirSync(dir, { recursive: true });
    const logHandle = await fs.open(o.conmonLogFile, 'a');
    const ctx = `creating container "${o.id}" under conmon`;
    try {
      const { child, sync } = await this.start(o, logHandle.fd, ctx);
      const exited = child.exited.then((x) => x.code);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new DeadlineExceededError(`${ctx}: no answer on the sync pipe after ${o.timeoutMs ?? CONMON_CREATE_TIMEOUT_MS} ms`)),
          o.timeoutMs ?? CONMON_CREATE_TIMEOUT_MS,
        );
      });
      try {
        const msg = await Promise.race([readSyncMessage(sync), timeout]);
        const conmonExit = await Promise.race([exited, timeout]);
        const pid = typeof msg.pid === 'number' ? msg.pid : typeof msg.data === 'number' ? msg.data : -1;
        if (pid <= 0) {
          const said = msg.message ?? (await conmonSaid(o.conmonLogFile)) ?? `conmon exited with ${conmonExit}`;
          throw new InternalError(`${ctx}: ${said.trim()}`);
        }
        const conmonPid = Number((await fs.readFile(o.conmonPidFile, 'utf8')).trim());
        if (this.place) {
          try {
            await this.place(conmonPid);
          } catch (e) {
            throw new InternalError(`${ctx}: moving conmon ${conmonPid} into conmon_cgroup: ${errorMessage(e)}`, { cause: e });
          }
        }
        return { pid, conmonPid };
      } catch (e) {
        if (e instanceof SyncPipeClosed) {
          const code = await Promise.race([exited, timeout]);
          const said = await conmonSaid(o.conmonLogFile);
          throw new InternalError(`${ctx}: conmon exited with ${code} before create finished${said ? `: ${said.trim()}` : ''}`);
        }
        throw e;
      } finally {
        clearTimeout(timer);
        sync.destroy();
      }
    } finally {
      await logHandle.close();
    }
  }
}

/**
 * conmon's files in a bundle (measured with conmon 2.1.6): the control fifo `ctl`, the
 * window-size fifo `winsz` and the attach socket `attach`; `<socketDir>/<id>` is a
 * symlink to the bundle, so the attach socket has a path short enough for sun_path.
 */
export function conmonFiles(bundle: string, socketDir: string, id: string): { ctl: string; winsz: string; attach: string } {
  return {
    ctl: path.join(bundle, 'ctl'),
    winsz: path.join(bundle, 'winsz'),
    attach: path.join(socketDir, id, 'attach'),
  };
}

/** conmon's control messages: `<type> <height> <width>\n` (1 = resize the tty, 2 = reopen the log). */
const CTL_REOPEN_LOG = '2 0 0\n';

/**
 * Makes conmon reopen its log file (the kubelet renames the file to rotate it, then
 * calls ReopenContainerLog). The fifo is opened non-blocking: without a reader (conmon
 * gone) open fails with ENXIO instead of hanging.
 */
export async function reopenConmonLog(ctlFifo: string, reopened?: ReopenWait): Promise<void> {
  await sendReopen(ctlFifo);
  if (reopened) await waitReopened(reopened);
}

/** What a ReopenContainerLog waits for: conmon's new file at `logPath`. */
export interface ReopenWait {
  containerId: string;
  logPath: string;
  /** How long conmon gets to reopen (default REOPEN_TIMEOUT_MS). */
  timeoutMs?: number;
}

/** conmon reopens within milliseconds; on a loaded node give it seconds. */
export const REOPEN_TIMEOUT_MS = 10_000;
const REOPEN_POLL_MS = 10;

/**
 * Returns once the log file exists again (conmon handles its fifo asynchronously: the
 * write alone returned before the new file was there, 6 ms under runsc). If conmon never
 * reopens, fails naming the container and the path.
 */
async function waitReopened(w: ReopenWait): Promise<void> {
  const timeoutMs = w.timeoutMs ?? REOPEN_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fs.stat(w.logPath);
      return;
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') {
        throw new InternalError(`reopening the log of container "${w.containerId}": checking "${w.logPath}": ${errorMessage(e)}`, { cause: e });
      }
    }
    if (Date.now() >= deadline) {
      throw new InternalError(`reopening the log of container "${w.containerId}": conmon did not create "${w.logPath}" within ${timeoutMs / 1000} s`);
    }
    await new Promise((r) => setTimeout(r, REOPEN_POLL_MS));
  }
}

async function sendReopen(ctlFifo: string): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await fs.open(ctlFifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENXIO' || code === 'ENOENT') {
      throw new FailedPreconditionError(`reopening the container log: conmon is not running (${code} on "${ctlFifo}")`, { cause: e });
    }
    throw new InternalError(`reopening the container log: opening "${ctlFifo}": ${errorMessage(e)}`, { cause: e });
  }
  try {
    await handle.write(CTL_REOPEN_LOG);
  } catch (e) {
    throw new InternalError(`reopening the container log: writing to "${ctlFifo}": ${errorMessage(e)}`, { cause: e });
  } finally {
    await handle.close();
  }
}

class SyncPipeClosed extends Error {}

interface SyncMessage {
  pid?: number;
  data?: number;
  message?: string;
}

/** The first complete JSON line conmon writes on the sync pipe. */
function readSyncMessage(stream: Readable): Promise<SyncMessage> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (chunk: Buffer): void => {
      buf += chunk.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      cleanup();
      try {
        resolve(JSON.parse(buf.slice(0, nl)) as SyncMessage);
      } catch (e) {
        reject(new InternalError(`parsing conmon's sync message ${JSON.stringify(buf.slice(0, nl))}: ${errorMessage(e)}`));
      }
    };
    const onEnd = (): void => {
      cleanup();
      if (buf.trim() !== '') {
        try {
          resolve(JSON.parse(buf) as SyncMessage);
          return;
        } catch {
          // fall through: an incomplete message is no message
        }
      }
      reject(new SyncPipeClosed('sync pipe closed'));
    };
    const cleanup = (): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
    };
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('close', onEnd);
  });
}

async function conmonSaid(file: string): Promise<string | undefined> {
  try {
    const text = (await fs.readFile(file, 'utf8')).trim();
    return text === '' ? undefined : text.split('\n').slice(-5).join(' ');
  } catch {
    return undefined;
  }
}

function wrapSpawn(ctx: string, e: unknown): SandlotError {
  return new InternalError(`${ctx}: spawning conmon: ${errorMessage(e)}`, { cause: e });
}
