// The seam between the container lifecycle and whatever runs and watches one container
// process. For runc-like handlers (type `oci`) conmon is enough: it runs `<runtime>
// create`, keeps stdio in the CRI log, writes the exit file and outlives the daemon.
// runsc subcontainers are different (no host PID, stdio and exit status belong to
// `runsc start` / `runsc wait`, ARCHITECTURE.md), so their monitor is a separate
// implementation (the runsc subcontainer shim that conmon runs as its runtime), chosen
// by the runtime's `features.subcontainerMonitor` (or ContainerManagerOptions.monitorFor
// in tests). Every monitor keeps the same contract:
// the exit code lands in `paths.exitFile`, the log in `logPath`.
import os from 'node:os';
import { FailedPreconditionError } from '../../errors.js';
import { signalContainerInit, signalNumber, type Conmon, type ConmonCreateOptions } from '../../oci/conmon.js';
import { awaitSignalReady } from '../../oci/exec-fifo.js';
import type { HookedSpec } from '../../oci/hook-stages.js';
import type { OciState, RuntimeDriver } from '../../oci/runtime.js';
import type { LinuxResources } from '../../oci/spec-common.js';
import type { ContainerPaths } from './container.js';

export interface MonitorCreateRequest {
  id: string;
  /** For the monitor's own logs. */
  name: string;
  paths: ContainerPaths;
  /** The CRI log file the monitor writes (CRI format). */
  logPath: string;
  terminal: boolean;
  stdin: boolean;
  stdinOnce: boolean;
  /** The spec as written to the bundle's config.json (S6: the hook stages split it without a re-read). */
  spec?: HookedSpec;
}

export interface MonitorCreated {
  /** The container's init PID on the host (0 where it has none, e.g. runsc subcontainers). */
  pid: number;
  /** The monitor process (S11 gives it the container's oom_score_adj). */
  conmonPid: number;
}

export interface KillOptions {
  all?: boolean;
  init?: { pid: number; conmonPid: number };
}

export interface ContainerMonitor {
  /** Creates the container process (not started); resolves when create is complete. */
  create(req: MonitorCreateRequest): Promise<MonitorCreated>;
  start(id: string): Promise<void>;
  /**
   * S9: `all` signals every process of the container (allowed on a stopped one). `init`
   * (the record's PIDs) lets a monitor whose container init is a host process signal it
   * without the runtime.
   */
  kill(id: string, signal: string, options?: KillOptions): Promise<void>;
  /** Forced and idempotent: an unknown container is not an error. */
  delete(id: string): Promise<void>;
  /** The runtime's view; undefined when it does not know the container. */
  state(id: string): Promise<OciState | undefined>;
  update(id: string, resources: LinuxResources): Promise<void>;
  /**
   * Whether the container ended by an OOM kill, when the monitor knows better than the
   * container's cgroup (runsc: the sandbox, not the subcontainer, hits the limit and
   * runsc reports 137). Absent → the cgroup's OOM kill count decides.
   */
  oomKilled?(id: string, exitCode: number, cgroups: { container: string; pod: string }): Promise<boolean>;
}

/** What conmon is told for a container, whatever runs under it. */
export function conmonOptions(req: MonitorCreateRequest, driver: RuntimeDriver): ConmonCreateOptions {
  return {
    id: req.id,
    name: req.name,
    runtime: driver,
    bundle: req.paths.bundle,
    containerPidFile: req.paths.pidFile,
    conmonPidFile: req.paths.conmonPidFile,
    exitDir: req.paths.exitDir,
    logPath: req.logPath,
    socketDir: req.paths.socketDir,
    persistDir: req.paths.persistDir,
    conmonLogFile: req.paths.conmonLog,
    terminal: req.terminal,
    stdin: req.stdin,
    stdinOnce: req.stdinOnce,
  };
}

/**
 * Longest wait for a started init to execute the program before a signal goes anyway:
 * the execve follows the exec-fifo read at once, so this bounds only a stuck init.
 */
const INIT_EXEC_WAIT_MS = 2000;

/** conmon over a runc-compatible CLI: create under conmon, the rest through the driver. */
export class ConmonMonitor implements ContainerMonitor {
  constructor(private readonly options: { conmon: Conmon; driver: RuntimeDriver }) {}

  async create(req: MonitorCreateRequest): Promise<MonitorCreated> {
    const { driver, conmon } = this.options;
    await driver.ensureRoot();
    return conmon.create(conmonOptions(req, driver));
  }

  start(id: string): Promise<void> {
    return this.options.driver.start(id);
  }

  /**
   * One signal to the init goes through its pidfd (conmon.ts signalContainerInit: no
   * `<runtime> kill` process, issue 13); `all`, or an init that is not conmon's child,
   * goes through the runtime.
   */
  async kill(id: string, signal: string, options: KillOptions = {}): Promise<void> {
    const { init, ...runtimeOptions } = options;
    if (options.all !== true && init !== undefined) {
      // A catchable signal must find the program ready for it, not runc's init about to
      // exec it (exec-fifo.ts awaitSignalReady); SIGKILL ends either.
      const signo = signalNumber(signal);
      if (signo !== undefined && signo !== os.constants.signals.SIGKILL) await awaitSignalReady(init.pid, signo, INIT_EXEC_WAIT_MS);
      const signalled = signalContainerInit(init.pid, init.conmonPid, signal);
      if (signalled === 'sent') return;
      if (signalled === 'gone') throw new FailedPreconditionError(`signalling container "${id}" with ${signal}: its process has exited`);
    }
    await this.options.driver.kill(id, signal, runtimeOptions);
  }

  delete(id: string): Promise<void> {
    return this.options.driver.delete(id, { force: true });
  }

  state(id: string): Promise<OciState | undefined> {
    return this.options.driver.state(id);
  }

  update(id: string, resources: LinuxResources): Promise<void> {
    return this.options.driver.update(id, resources as Record<string, unknown>);
  }
}
