// The part of every handler's runtime that is the same for runc-compatible CLIs and
// runsc: one CLI call per operation (`<binary> <global args> <subcommand>`), bounded in
// time, errors wrapped with the handler's name; and the probe. What differs per type
// (global flags, exec's pid file and kill, update, checkpoint, stats) the subclasses
// answer (runtime-runc.ts, runtime-runsc.ts); RuntimeDriver (runtime.ts) is the interface.
//
// Measured on these machines (ARCHITECTURE.md): crun 1.8.1 fails every create with
// "cgroups in hybrid mode not supported", so the probe creates and deletes a trivial
// container instead of trusting `--version`.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { RuntimeHandlerConfig, RuntimeType } from '../config/types.js';
import { errorMessage, FailedPreconditionError, wrapError } from '../errors.js';
import { boundingSetOfStatus, unknownCapabilityIn } from './capabilities.js';
import { CommandError, resolveBinary, runCommand, TIMED_OUT_SUFFIX, type CommandRunner } from './command.js';
import { withHandler } from './command-span.js';
import { childSpan, SPAN_ATTR } from '../observe/spans.js';
import { launchExec, type ExecFiles, type ExecLaunch, type ExecOptions } from './exec.js';
import { startThroughExecFifo, waitsOnExecFifo, type FifoStart } from './exec-fifo.js';
import {
  probeContainerId,
  type CheckpointRequest,
  type OciState,
  type PortForwardPath,
  type ProbeOptions,
  type ProbeResult,
  type RuntimeDriver,
  type RuntimeDriverOptions,
  type RuntimeFeatures,
  type RuntimeStats,
} from './runtime.js';

export const STATE_TIMEOUT_MS = 30_000;
export const CREATE_TIMEOUT_MS = 120_000;

/** The container IDs runc takes (its own check): anything else is left to the CLI to refuse. */
const RUNC_ID_RE = /^(?!\.{1,2}$)[\w+.-]+$/;

/** Messages runtimes print for an unknown container ID. */
const NOT_EXIST_RE = /does not exist|not exist|no such file|not found/i;

export abstract class CliRuntime implements RuntimeDriver {
  abstract readonly type: RuntimeType;
  abstract readonly features: RuntimeFeatures;
  abstract readonly portForward: PortForwardPath;
  abstract readonly execPidOnHost: boolean;
  readonly name: string;
  readonly config: RuntimeHandlerConfig;
  readonly root: string;
  protected readonly log: Logger;
  protected readonly run: CommandRunner;
  private binary: string | undefined;
  capabilities: string[] | undefined;
  /** Set by the probe: this handler's created containers are started through runc's exec fifo (exec-fifo.ts). */
  execFifoStart = false;

  constructor(options: RuntimeDriverOptions) {
    this.name = options.name;
    this.config = options.config;
    this.root = path.join(options.stateDir, 'runtimes', options.name);
    this.log = options.log;
    const run = options.run ?? runCommand;
    // Every process span of this driver names its handler.
    this.run = (file, args, opts) => withHandler(this.name, () => run(file, args, opts));
  }

  /** The handler type's own global flags (after --root, before the config's args). */
  protected abstract typeArgs(): string[];
  /** Flags of the probe's create that make the runtime say which capability it refuses. */
  protected abstract probeDebugArgs(debugDir: string): string[];
  abstract execArgs(containerId: string, files: ExecFiles): string[];
  abstract killExecTree(containerId: string, pid: number): Promise<void>;
  abstract update(id: string, resources: Record<string, unknown>): Promise<void>;
  abstract checkpoint(id: string, request: CheckpointRequest): Promise<void>;
  abstract stats(id: string): Promise<RuntimeStats | undefined>;

  /** The absolute path of the binary; throws FailedPrecondition when it is missing. */
  binaryPath(): string {
    this.binary ??= resolveBinary(this.config.path);
    if (this.binary === undefined) {
      throw new FailedPreconditionError(`runtime handler "${this.name}": binary "${this.config.path}" not found`);
    }
    return this.binary;
  }

  globalArgs(): string[] {
    return ['--root', this.root, ...this.typeArgs(), ...this.config.args];
  }

  async ensureRoot(): Promise<void> {
    await fs.mkdir(this.root, { recursive: true, mode: 0o700 });
  }

  protected async cli(
    action: string,
    sub: string[],
    timeoutMs = STATE_TIMEOUT_MS,
    extra: { input?: string; outputFile?: string; discardOutput?: boolean } = {},
  ): Promise<string> {
    const bin = this.binaryPath();
    try {
      const opts = { timeoutMs, ...extra };
      const { stdout } = await this.run(bin, [...this.globalArgs(), ...sub], opts);
      return stdout;
    } catch (e) {
      throw wrapError(`${action} with ${this.name}`, e);
    }
  }

  /**
   * Is the handler usable? The binary must exist, answer --version, and create and
   * delete a trivial container (catches crun's hybrid-cgroup refusal, a broken runsc).
   */
  async probe(options: ProbeOptions): Promise<ProbeResult> {
    let bin: string;
    try {
      bin = this.binaryPath();
    } catch (e) {
      return { ready: false, reason: 'RuntimeBinaryNotFound', message: errorMessage(e) };
    }
    try {
      await this.run(bin, ['--version'], { timeoutMs: STATE_TIMEOUT_MS });
    } catch (e) {
      return { ready: false, reason: 'RuntimeVersionFailed', message: `running "${bin} --version": ${errorMessage(e)}` };
    }
    const id = probeContainerId(this.name);
    const bundle = path.join(options.workDir, id);
    const debugDir = path.join(options.workDir, `${id}.debug`);
    // The probe container asks for every capability the daemon holds: a runtime that
    // refuses one as unknown (the Debian runsc: CAP_PERFMON, CAP_BPF,
    // CAP_CHECKPOINT_RESTORE) is asked again without it, so the probe finds the set
    // "all" means for this handler. A runtime that takes them all costs one create.
    const bounding = options.boundingSet ?? boundingSetOfStatus(await fs.readFile('/proc/self/status', 'utf8').catch(() => '')) ?? [];
    // Measured: each refused capability costs runsc a failed create (~0.3 s idle, 1 s and
    // more on a busy machine). What the last probe found for this very binary and
    // bounding set is tried first, so a restarted daemon's probe is one create again.
    const cacheFile = path.join(this.root, 'probed-capabilities.json');
    const key = JSON.stringify({
      bin,
      ...(await fs
        .stat(bin)
        .then((st) => ({ size: st.size, mtimeMs: st.mtimeMs }))
        .catch(() => ({}))),
      bounding,
    });
    const cached = await fs
      .readFile(cacheFile, 'utf8')
      .then((t) => JSON.parse(t) as { key?: string; capabilities?: string[] })
      .catch(() => undefined);
    let caps = cached?.key === key && Array.isArray(cached.capabilities) ? bounding.filter((c) => cached.capabilities!.includes(c)) : bounding;
    try {
      await this.ensureRoot();
      for (;;) {
        await fs.rm(bundle, { recursive: true, force: true });
        await fs.rm(debugDir, { recursive: true, force: true });
        await writeProbeBundle(bundle, options, caps);
        // A leftover from a crashed probe would make create fail.
        await this.delete(id, { force: true }).catch(() => undefined);
        // runsc says which capability it refused only in its debug log (the root
        // container's sandbox fails "invalid capability" before it reports back).
        const debug = this.probeDebugArgs(debugDir);
        let refused: string | undefined;
        try {
          await this.cli('creating the probe container', [...debug, 'create', '--bundle', bundle, id], CREATE_TIMEOUT_MS, {
            outputFile: path.join(options.workDir, `${id}.out`),
          });
          this.execFifoStart = await this.probeExecFifoStart(id);
        } catch (e) {
          refused = unknownCapabilityIn(`${errorMessage(e)}\n${await readDir(debugDir)}`);
          if (refused === undefined || !caps.includes(refused)) throw e;
        } finally {
          await this.delete(id, { force: true }).catch((e: unknown) => this.log.warn({ err: e, handler: this.name }, 'deleting the probe container'));
        }
        if (refused === undefined) break;
        this.log.info({ handler: this.name, capability: refused }, 'the runtime refuses a capability: privileged containers go without it');
        caps = caps.filter((c) => c !== refused);
      }
      this.capabilities = caps;
      await fs
        .writeFile(cacheFile, JSON.stringify({ key, capabilities: caps }))
        .catch((e: unknown) => this.log.warn({ err: e, handler: this.name }, 'saving the probed capabilities'));
      return { ready: true, reason: '', message: '' };
    } catch (e) {
      const said = e instanceof Error && e.cause instanceof CommandError ? e.cause.message : errorMessage(e);
      return { ready: false, reason: 'RuntimeProbeFailed', message: `probing runtime handler "${this.name}": ${said}` };
    } finally {
      await fs.rm(bundle, { recursive: true, force: true });
      await fs.rm(debugDir, { recursive: true, force: true });
    }
  }

  /**
   * Does the created probe container start through runc's exec fifo, the runtime then
   * saying it runs? Only then are this handler's containers started that way.
   */
  private async probeExecFifoStart(id: string): Promise<boolean> {
    if (!this.features.execFifoStart || !(await waitsOnExecFifo(path.join(this.root, id)))) return false;
    try {
      const started = await startThroughExecFifo(path.join(this.root, id), STATE_TIMEOUT_MS);
      const st = started === 'started' ? await this.state(id) : undefined;
      if (st?.status === 'running') {
        this.log.info({ handler: this.name }, 'containers of this handler are started through their exec fifo, without a runtime process');
        return true;
      }
      this.log.warn(
        { handler: this.name, started, status: st?.status },
        'the probe container did not run after its exec fifo was read; containers are started by the runtime CLI',
      );
    } catch (e) {
      this.log.warn({ err: e, handler: this.name }, 'starting the probe container through its exec fifo; containers are started by the runtime CLI');
    }
    return false;
  }

  /**
   * Without conmon (the pod's infra): the container's stdin, stdout and stderr are
   * /dev/null, so it holds nothing of ours and nothing that fills up. The runtime's own
   * messages go to `<pidFile>.log` (`--log`, JSON), kept beside the pid file: a failed
   * create says what the runtime said from it (runc writes its error there as to stderr,
   * measured with 1.1.5; runsc writes it there, and its sandbox keeps the file open for
   * the errors of its whole life).
   */
  async create(id: string, bundle: string, pidFile: string): Promise<void> {
    const logFile = `${pidFile}.log`;
    const action = `creating container "${id}"`;
    try {
      await this.cli(action, ['--log', logFile, '--log-format', 'json', 'create', '--bundle', bundle, '--pid-file', pidFile, id], CREATE_TIMEOUT_MS, {
        discardOutput: true,
      });
    } catch (e) {
      const cause = e instanceof Error ? e.cause : undefined;
      if (!(cause instanceof CommandError)) throw e;
      const said = runtimeLogMessages(await fs.readFile(logFile, 'utf8').catch(() => ''));
      if (said.length === 0) throw e; // not started, or it said nothing
      const withLog = new CommandError(cause.file, cause.args, cause.exitCode, said.join('\n'), '');
      if (cause.message.endsWith(TIMED_OUT_SUFFIX)) withLog.message += TIMED_OUT_SUFFIX;
      throw wrapError(`${action} with ${this.name}`, withLog);
    }
  }

  /**
   * Where the probe found the runtime's created containers waiting on runc's exec fifo
   * (features.execFifoStart), the handshake in the daemon: no `<runtime> start` process
   * (issue 13). Anything but a plain created container (started already, stopped,
   * unknown, paused), and a runtime the probe did not qualify, get `<runtime> start` and
   * its answer. Not with NOTIFY_SOCKET set: `runc start` would then also wait for the
   * container's sd_notify READY.
   */
  async start(id: string): Promise<void> {
    if (this.execFifoStart && RUNC_ID_RE.test(id) && process.env.NOTIFY_SOCKET === undefined) {
      const dir = path.join(this.root, id);
      let started: FifoStart;
      try {
        // Its own span where `<runtime> start` had a process span: a trace still shows the start.
        started = await childSpan(`${this.name} start (exec fifo)`, { [SPAN_ATTR.containerId]: id, [SPAN_ATTR.handler]: this.name }, () =>
          startThroughExecFifo(dir, CREATE_TIMEOUT_MS),
        );
      } catch (e) {
        throw wrapError(`starting container "${id}" with ${this.name}`, e);
      }
      if (started === 'started') return;
    }
    await this.cli(`starting container "${id}"`, ['start', id], CREATE_TIMEOUT_MS);
  }

  /** S9: `all` signals every process of the container (allowed on a stopped one). */
  async kill(id: string, signal: string, options: { all?: boolean } = {}): Promise<void> {
    const flags = options.all ? ['--all'] : [];
    await this.cli(`signalling container "${id}" with ${signal}`, ['kill', ...flags, id, signal]);
  }

  /** Idempotent: an unknown container is not an error. */
  async delete(id: string, options: { force?: boolean } = {}): Promise<void> {
    try {
      await this.cli(`deleting container "${id}"`, ['delete', ...(options.force ? ['--force'] : []), id]);
    } catch (e) {
      if (NOT_EXIST_RE.test(errorMessage(e))) return;
      throw e;
    }
  }

  /** S16: the runtime's view; undefined when it does not know the container. */
  async state(id: string): Promise<OciState | undefined> {
    let out: string;
    try {
      out = await this.cli(`reading the state of container "${id}"`, ['state', id]);
    } catch (e) {
      if (NOT_EXIST_RE.test(errorMessage(e))) return undefined;
      throw e;
    }
    return JSON.parse(out) as OciState;
  }

  /** IDs of every container in this handler's root. */
  async list(): Promise<string[]> {
    const out = await this.cli('listing containers', ['list', '--format', 'json']);
    const parsed = JSON.parse(out.trim() || 'null') as Array<{ id: string }> | null;
    return (parsed ?? []).map((c) => c.id);
  }

  exec(options: ExecOptions): Promise<ExecLaunch> {
    return withHandler(this.name, () => launchExec({ ...options, runtime: this }));
  }
}

/**
 * The messages of a runtime's JSON log (`--log-format json`): runc writes one object per
 * line, runsc writes them back to back without a newline (measured), so each `"msg"`
 * string is taken wherever it is. A log that is not JSON gives its lines as they are.
 */
export function runtimeLogMessages(text: string): string[] {
  const msgs = [...text.matchAll(/"msg":("(?:[^"\\]|\\.)*")/g)].map((m) => {
    try {
      return String(JSON.parse(m[1]));
    } catch {
      return m[1];
    }
  });
  return msgs.length > 0 ? msgs : text.split('\n').filter((l) => l.trim() !== '');
}

/** A rootfs with catatonit alone, paused: the smallest container that proves create works. */
async function writeProbeBundle(bundle: string, options: ProbeOptions, caps: string[]): Promise<void> {
  const rootfs = path.join(bundle, 'rootfs');
  for (const d of ['proc', 'dev', 'sys']) await fs.mkdir(path.join(rootfs, d), { recursive: true });
  await fs.writeFile(path.join(rootfs, 'catatonit'), '');
  const spec = {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ['/catatonit', '-P'],
      cwd: '/',
      env: ['PATH=/'],
      noNewPrivileges: true,
      capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] },
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'probe',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/catatonit', type: 'bind', source: options.catatonitPath, options: ['rbind', 'ro'] },
    ],
    linux: {
      cgroupsPath: options.cgroupsPath,
      namespaces: ['pid', 'ipc', 'uts', 'mount', 'network'].map((type) => ({ type })),
      resources: { devices: [{ allow: false, access: 'rwm' }] },
    },
  };
  await fs.writeFile(path.join(bundle, 'config.json'), JSON.stringify(spec));
}

/** The text of every file in a directory (runsc's debug logs); empty when it is missing. */
async function readDir(dir: string): Promise<string> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const texts = await Promise.all(names.map((n) => fs.readFile(path.join(dir, n), 'utf8').catch(() => '')));
  return texts.join('\n');
}
