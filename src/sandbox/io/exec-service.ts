// Exec, ExecSync and Attach on the containers of the container layer (S18): finds the
// container, guards its state (S4), and runs the session through the handler's runtime
// (RuntimeDriver.exec: src/oci/exec.ts runs `runc exec` / `runsc exec`) or, for attach,
// its conmon. This is
// what the streaming backend delegates to (`SandlotStreamingBackend.containers`).
import path from 'node:path';
import type { Logger } from 'pino';
import { InvalidArgumentError } from '../../errors.js';
import type { RuntimeDriver } from '../../oci/runtime.js';
import type { ExecResult, ExecStreams } from '../../streaming/backend.js';
import { runAttachSession } from './attach-session.js';
import { requireState, type ContainerRecord } from '../container/container.js';
import type { ContainerManager } from '../container/container-manager.js';
import { runExecSession } from './exec-session.js';
import { execSync, type ExecSyncResult } from './exec-sync.js';
import type { PodManager } from '../pod/pod-manager.js';
import type { ContainerStreaming } from './streaming-backend.js';

export interface ContainerExecOptions {
  /** `status` resolves an ID or prefix (NotFound otherwise) and notices a fresh exit. */
  containers: Pick<ContainerManager, 'status'>;
  pods: Pick<PodManager, 'driver'>;
  log: Logger;
  /** sandlot's state_dir: exec scratch files live in <state_dir>/exec. */
  stateDir: string;
}

export class ContainerExec implements ContainerStreaming {
  private readonly containers: Pick<ContainerManager, 'status'>;
  private readonly pods: Pick<PodManager, 'driver'>;
  private readonly log: Logger;
  private readonly scratchDir: string;

  constructor(o: ContainerExecOptions) {
    this.containers = o.containers;
    this.pods = o.pods;
    this.log = o.log;
    this.scratchDir = path.join(o.stateDir, 'exec');
  }

  /** S4: exec needs Created or Running. NotFound for an unknown container. */
  async requireForExec(idOrPrefix: string): Promise<ContainerRecord> {
    const rec = await this.containers.status(idOrPrefix);
    requireState(rec, 'exec in', 'created', 'running');
    return rec;
  }

  /** Attach reaches the main process's stdio, which only a running container has. */
  async requireForAttach(idOrPrefix: string): Promise<ContainerRecord> {
    const rec = await this.containers.status(idOrPrefix);
    requireState(rec, 'attach to', 'running');
    return rec;
  }

  private target(rec: ContainerRecord, cmd: string[]): { driver: RuntimeDriver; containerId: string; specPath: string; scratchDir: string; cmd: string[] } {
    if (cmd.length === 0 || cmd[0] === '') throw new InvalidArgumentError(`exec in container "${rec.id}": cmd must not be empty`);
    return { driver: this.pods.driver(rec.runtimeHandler), containerId: rec.id, specPath: rec.paths.spec, scratchDir: this.scratchDir, cmd };
  }

  /** ExecSync: `timeoutMs` 0 = none; DeadlineExceeded when it runs out; `signal` (the RPC cancelled) kills. */
  async execSync(idOrPrefix: string, cmd: string[], timeoutMs: number, signal?: AbortSignal): Promise<ExecSyncResult> {
    const rec = await this.requireForExec(idOrPrefix);
    const started = Date.now();
    const r = await execSync({ ...this.target(rec, cmd), timeoutMs, log: this.log, ...(signal ? { signal } : {}) });
    this.log.debug({ containerId: rec.id, exitCode: r.exitCode, durationMs: Date.now() - started }, 'ExecSync done');
    return r;
  }

  async exec(idOrPrefix: string, cmd: string[], io: ExecStreams, signal: AbortSignal): Promise<ExecResult> {
    const rec = await this.requireForExec(idOrPrefix);
    const started = Date.now();
    const r = await runExecSession(this.target(rec, cmd), io, signal);
    this.log.info({ containerId: rec.id, exitCode: r.exitCode, tty: io.tty, aborted: signal.aborted, durationMs: Date.now() - started }, 'exec ended');
    return r;
  }

  async attach(idOrPrefix: string, io: ExecStreams, signal: AbortSignal): Promise<void> {
    const rec = await this.requireForAttach(idOrPrefix);
    // A container without stdin has nothing to write to: the client's stdin is dropped.
    const streams: ExecStreams = rec.stdin ? io : { ...io, stdin: undefined };
    if (!rec.stdin) io.stdin?.resume();
    await runAttachSession({ containerId: rec.id, attachSocket: rec.paths.attachSocket, ctlFifo: rec.paths.ctlFifo }, streams, signal);
    this.log.info({ containerId: rec.id, detached: signal.aborted }, 'attach ended');
  }
}
