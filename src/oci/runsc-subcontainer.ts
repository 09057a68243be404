// The TypeScript side of runsc subcontainers (S1) under conmon. conmon runs
// src/oci/runsc-shim.sh as its "runtime"; the shim runs `runsc create` and leaves a
// proxy process as "the container process", which waits on a fifo until StartContainer
// triggers it, then runs `runsc start` with conmon's stdio (output → CRI log) and
// `runsc wait`, and exits with the container's status (→ conmon's exit file). Measured
// with runsc 0.0~20221219 and conmon 2.1.6 (see the shim's header):
//
//   CreateContainer: Conmon.create({…, ...shim.conmonRuntime(stateDir)})
//        │ conmon → sh runsc-shim.sh … create → runsc create; proxy forks, blocks on fifo
//        ▼ container pid = the proxy's PID (a host process: conmon can watch it)
//   StartContainer:  shim.triggerStart({id, stateDir, proxyPid}) writes `start`,
//        │           waits for the proxy's `status` file: started | start-failed
//        ▼
//   running: proxy = `runsc wait <id>`; stop/kill go to runsc as usual (`runsc kill`)
//        ▼
//   exited: conmon's exit file = the proxy's exit = runsc's exitStatus (137 when the
//           sandbox itself died, e.g. OOM-killed at the pod cgroup; `exitReason` says so)
//
// Measured besides: a tty subcontainer gets its pty from `runsc create --console-socket`
// (conmon --terminal works unchanged); runsc 2022 does not enforce a subcontainer's own
// memory limit (its host cgroup stays empty), only the pod cgroup's, where the host OOM
// killer takes the whole sandbox; after that `runsc delete --force <sub>` fails once
// ("connection refused") but drops the state.
//
// A created container that is never started holds a proxy blocked on its fifo: runsc
// cannot signal a created subcontainer ("cannot signal container in state created"), so
// removal calls `cancelStart` (the proxy exits 128+signal) besides `runsc delete`.
import fs from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeadlineExceededError, errnoCode, errorMessage, FailedPreconditionError, InternalError, wrapError } from '../errors.js';
import { packageRoot } from '../util/package-info.js';
import { runCommand, type CommandRunner } from './command.js';
import { withHandler } from './command-span.js';
import { childSpan, SPAN_ATTR } from '../observe/spans.js';
import type { RuntimeDriver } from './runtime.js';
import { ANNOTATION_CONTAINER_TYPE, ANNOTATION_SANDBOX_ID } from './spec-common.js';

/** The shim inside the package: found the same way from src/ (tsx) and dist/ builds. */
export function defaultShimPath(): string {
  return path.join(packageRoot(), 'src', 'oci', 'runsc-shim.sh');
}

export const START_TIMEOUT_MS = 60_000;
export const WAIT_STATUS_TIMEOUT_MS = 30_000;
const CANCEL_WITHOUT_PID_TIMEOUT_MS = 1_000;
/** First and largest pause between looks at the proxy's status file. */
const POLL_FIRST_MS = 5;
const POLL_MAX_MS = 100;

/** The shim's files in its state directory (the shim's header describes them). */
export function shimFiles(stateDir: string): { fifo: string; status: string; startLog: string; waitErr: string; exitReason: string } {
  return {
    fifo: path.join(stateDir, 'start'),
    status: path.join(stateDir, 'status'),
    startLog: path.join(stateDir, 'start.log'),
    waitErr: path.join(stateDir, 'wait.err'),
    exitReason: path.join(stateDir, 'exit-reason'),
  };
}

export type StartStatus = { kind: 'started' } | { kind: 'killed'; signal: number } | { kind: 'start-failed'; exitCode: number; message: string };

/** The proxy's `status` file: `started`, `killed <N>` or `start-failed <rc> <message>`. */
export function parseStartStatus(text: string): StartStatus | undefined {
  const line = text.split('\n')[0]?.trim() ?? '';
  if (line === 'started') return { kind: 'started' };
  let m = /^killed (\d+)$/.exec(line);
  if (m) return { kind: 'killed', signal: Number(m[1]) };
  m = /^start-failed (\d+) ?(.*)$/.exec(line);
  if (m) return { kind: 'start-failed', exitCode: Number(m[1]), message: m[2] ?? '' };
  return undefined;
}

/** `runsc wait <id>` prints `{"id":"<id>","exitStatus":N}`. */
export function parseWaitOutput(text: string): number {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.trim());
  } catch (e) {
    throw new InternalError(`parsing runsc wait output ${JSON.stringify(text)}: ${errorMessage(e)}`, { cause: e });
  }
  const status = (parsed as { exitStatus?: unknown } | null)?.exitStatus;
  if (typeof status !== 'number' || !Number.isInteger(status)) {
    throw new InternalError(`parsing runsc wait output ${JSON.stringify(text)}: no integer exitStatus`);
  }
  return status;
}

/**
 * S1: without these annotations runsc would boot a new sandbox for the "subcontainer",
 * and the shim would start it as if it were one. spec-container.ts writes them; this is
 * the guard before handing a spec to the shim.
 */
export function requireSubcontainerAnnotations(spec: { annotations?: Record<string, string> }, sandboxId: string): void {
  const a = spec.annotations ?? {};
  if (a[ANNOTATION_CONTAINER_TYPE] !== 'container' || a[ANNOTATION_SANDBOX_ID] !== sandboxId) {
    throw new InternalError(
      `runsc subcontainer spec: annotations ${ANNOTATION_CONTAINER_TYPE}=${JSON.stringify(a[ANNOTATION_CONTAINER_TYPE] ?? null)} ` +
        `and ${ANNOTATION_SANDBOX_ID}=${JSON.stringify(a[ANNOTATION_SANDBOX_ID] ?? null)} must be "container" and "${sandboxId}"`,
    );
  }
}

/** What the proxy process looks like from outside (behind an interface for unit tests). */
export interface ProxyProbe {
  /** Is `pid` a live (not zombie) shim proxy of this state dir? */
  isProxyAlive(pid: number, stateDir: string): Promise<boolean>;
}

export const procProxyProbe: ProxyProbe = {
  async isProxyAlive(pid, stateDir) {
    if (!Number.isInteger(pid) || pid <= 0) return false;
    try {
      const [stat, cmdline] = await Promise.all([fs.readFile(`/proc/${pid}/stat`, 'utf8'), fs.readFile(`/proc/${pid}/cmdline`, 'utf8')]);
      if (/^\d+ \(.*\) [ZX]/s.test(stat)) return false;
      // A recycled PID is not our proxy: its argv names the shim and this state dir.
      const argv = cmdline.split('\0');
      return argv.some((a) => a.endsWith('runsc-shim.sh')) && argv.includes(stateDir);
    } catch {
      return false;
    }
  },
};

export interface RunscShimOptions {
  /** The runsc handler's driver: its binary and global args (repeated on every call). */
  runtime: RuntimeDriver;
  shimPath?: string;
  /** The shell that runs the shim (so the file needs no exec bit). */
  shell?: string;
  run?: CommandRunner;
  proxyProbe?: ProxyProbe;
}

export interface TriggerStartOptions {
  id: string;
  /** The shim's state dir given to conmonRuntime(). */
  stateDir: string;
  /** The container PID conmon reported (the proxy); lets a dead proxy fail fast. */
  proxyPid?: number;
  timeoutMs?: number;
}

export class RunscShim {
  readonly shimPath: string;
  private readonly runtime: RuntimeDriver;
  private readonly shell: string;
  private readonly run: CommandRunner;
  private readonly probe: ProxyProbe;

  constructor(options: RunscShimOptions) {
    this.runtime = options.runtime;
    this.shimPath = options.shimPath ?? defaultShimPath();
    this.shell = options.shell ?? '/bin/sh';
    const run = options.run ?? runCommand;
    this.run = (file, args, opts) => withHandler(this.runtime.name, () => run(file, args, opts));
    this.probe = options.proxyProbe ?? procProxyProbe;
  }

  /**
   * The `runtimePath`/`runtimeArgs` of ConmonCreateOptions for a subcontainer: conmon
   * runs `sh runsc-shim.sh --state-dir D --runsc <runsc> --argc N <runsc globals…>`
   * and appends `create --bundle … --pid-file … [--console-socket …] <id>`.
   */
  conmonRuntime(stateDir: string): { runtimePath: string; runtimeArgs: string[] } {
    if (!path.isAbsolute(stateDir)) throw new InternalError(`runsc shim state dir "${stateDir}" must be absolute`);
    const globals = this.runtime.globalArgs();
    return {
      runtimePath: this.shell,
      runtimeArgs: [this.shimPath, '--state-dir', stateDir, '--runsc', this.runtime.binaryPath(), '--argc', String(globals.length), ...globals],
    };
  }

  /** The proxy's start outcome; undefined before it wrote one. */
  async startStatus(stateDir: string): Promise<StartStatus | undefined> {
    const file = shimFiles(stateDir).status;
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return undefined;
      throw new InternalError(`reading the runsc shim status "${file}": ${errorMessage(e)}`, { cause: e });
    }
    const status = parseStartStatus(text);
    if (status === undefined) throw new InternalError(`reading the runsc shim status "${file}": unexpected content ${JSON.stringify(text)}`);
    return status;
  }

  /** Why the proxy chose the exit status itself (`sandbox-gone: …`); undefined normally. */
  async exitReason(stateDir: string): Promise<string | undefined> {
    try {
      const text = (await fs.readFile(shimFiles(stateDir).exitReason, 'utf8')).trim();
      return text === '' ? undefined : text;
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return undefined;
      throw e;
    }
  }

  /**
   * Makes the proxy run `runsc start` and resolves once it did; rejects with runsc's
   * message when start failed (the proxy then exits 128, conmon records it).
   */
  triggerStart(o: TriggerStartOptions): Promise<void> {
    // The proxy runs `runsc start`: its span is the daemon's wait for the outcome.
    return withHandler(this.runtime.name, () => childSpan('runsc start', { [SPAN_ATTR.containerId]: o.id }, () => this.triggerStartNow(o)));
  }

  private async triggerStartNow(o: TriggerStartOptions): Promise<void> {
    const ctx = `starting runsc subcontainer "${o.id}"`;
    const timeoutMs = o.timeoutMs ?? START_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    const before = await this.startStatus(o.stateDir);
    if (before !== undefined) throw new FailedPreconditionError(`${ctx}: the proxy already reported "${describe(before)}"`);
    const written = await this.writeFifo(ctx, o, 'start', deadline);
    if (!written) throw new FailedPreconditionError(`${ctx}: the start proxy (pid ${o.proxyPid}) is gone`);
    for (let delay = POLL_FIRST_MS; ; delay = Math.min(delay * 2, POLL_MAX_MS)) {
      if (settled(ctx, await this.startStatus(o.stateDir))) return;
      if (o.proxyPid !== undefined && !(await this.probe.isProxyAlive(o.proxyPid, o.stateDir))) {
        // It writes its status just before it exits: look once more.
        if (settled(ctx, await this.startStatus(o.stateDir))) return;
        throw new InternalError(`${ctx}: the start proxy (pid ${o.proxyPid}) exited without reporting a start`);
      }
      if (Date.now() > deadline) throw new DeadlineExceededError(`${ctx}: no start reported after ${timeoutMs} ms`);
      await sleep(delay);
    }
  }

  /**
   * Ends the proxy of a container that was created but never started (runsc cannot
   * signal it): the proxy exits 128+signal, conmon writes that to the exit file.
   * Returns false when no proxy waits (started already, or gone): nothing to do.
   * Call it before removing the state dir, also when conmon's create failed: a proxy
   * blocked on a deleted fifo would wait forever.
   */
  async cancelStart(o: { id: string; stateDir: string; proxyPid?: number; signal?: number; timeoutMs?: number }): Promise<boolean> {
    const signal = o.signal ?? 9;
    const ctx = `cancelling the start of runsc subcontainer "${o.id}"`;
    if ((await this.startStatus(o.stateDir)) !== undefined) return false;
    // Without the proxy's PID (conmon's create failed after the shim forked it) the
    // proxy is already blocked on the fifo or never existed: a short look suffices.
    const timeoutMs = o.timeoutMs ?? (o.proxyPid === undefined ? CANCEL_WITHOUT_PID_TIMEOUT_MS : WAIT_STATUS_TIMEOUT_MS);
    return this.writeFifo(ctx, o, `kill ${signal}`, Date.now() + timeoutMs);
  }

  /**
   * `runsc wait <id>`: the exit status of a stopped subcontainer (for recovery when no
   * exit file exists). Blocks while the container runs, hence the timeout.
   */
  async exitStatusOf(id: string, timeoutMs = WAIT_STATUS_TIMEOUT_MS): Promise<number> {
    try {
      const { stdout } = await this.run(this.runtime.binaryPath(), [...this.runtime.globalArgs(), 'wait', id], { timeoutMs });
      return parseWaitOutput(stdout);
    } catch (e) {
      throw wrapError(`reading the exit status of runsc subcontainer "${id}"`, e);
    }
  }

  /**
   * Writes one line into the proxy's fifo. Opened non-blocking: ENXIO means no reader,
   * either the proxy has not reached its open yet (retried) or it is gone (false).
   */
  private async writeFifo(ctx: string, o: { stateDir: string; proxyPid?: number }, line: string, deadline: number): Promise<boolean> {
    const fifo = shimFiles(o.stateDir).fifo;
    for (let delay = POLL_FIRST_MS; ; delay = Math.min(delay * 2, POLL_MAX_MS)) {
      let handle: fs.FileHandle | undefined;
      try {
        handle = await fs.open(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
      } catch (e) {
        const code = errnoCode(e);
        if (code === 'ENOENT') throw new FailedPreconditionError(`${ctx}: no start fifo "${fifo}" (not created through the runsc shim?)`, { cause: e });
        if (code !== 'ENXIO') throw new InternalError(`${ctx}: opening "${fifo}": ${errorMessage(e)}`, { cause: e });
      }
      if (handle !== undefined) {
        try {
          await handle.write(`${line}\n`);
          return true;
        } catch (e) {
          throw new InternalError(`${ctx}: writing to "${fifo}": ${errorMessage(e)}`, { cause: e });
        } finally {
          await handle.close();
        }
      }
      if (o.proxyPid !== undefined && !(await this.probe.isProxyAlive(o.proxyPid, o.stateDir))) return false;
      if (Date.now() > deadline) {
        if (o.proxyPid === undefined) return false;
        throw new DeadlineExceededError(`${ctx}: the proxy (pid ${o.proxyPid}) does not read "${fifo}"`);
      }
      await sleep(delay);
    }
  }
}

/** True once started; throws for the other outcomes; false while there is none. */
function settled(ctx: string, status: StartStatus | undefined): boolean {
  switch (status?.kind) {
    case undefined:
      return false;
    case 'started':
      return true;
    case 'start-failed':
      throw new InternalError(`${ctx}: runsc start exited with ${status.exitCode}${status.message ? `: ${status.message}` : ''}`);
    case 'killed':
      throw new FailedPreconditionError(`${ctx}: the container was killed (signal ${status.signal}) before it started`);
  }
}

function describe(s: StartStatus): string {
  switch (s.kind) {
    case 'started':
      return 'started';
    case 'killed':
      return `killed ${s.signal}`;
    case 'start-failed':
      return `start-failed ${s.exitCode}`;
  }
}
