// Exec, Attach and PortForward hand out URLs on the streaming server; ExecSync runs a
// command and returns its output. Each checks its target now, so a bad request fails
// at the RPC rather than when the client dials the URL.
import { InvalidArgumentError } from '../errors.js';
import type { StreamingServer } from '../streaming/server.js';
import type { CriRequest, HandlerSet } from './handler-types.js';

export interface StreamingHandlerDeps {
  server: StreamingServer;
  /** Throws NotFound / FailedPrecondition (S4) when the pod cannot be port-forwarded to. */
  requirePodRunning(podSandboxId: string, action: string): void;
}

function str(req: CriRequest, field: string): string {
  const v: unknown = req[field];
  if (typeof v !== 'string' || v === '') throw new InvalidArgumentError(`${field} must not be empty`);
  return v;
}

export function portForwardHandlers(deps: StreamingHandlerDeps): HandlerSet {
  return {
    unary: {
      PortForward: async (req) => {
        const podSandboxId = str(req, 'pod_sandbox_id');
        const ports = (Array.isArray(req.port) ? req.port : []).map(Number);
        deps.requirePodRunning(podSandboxId, 'port-forward');
        return { url: deps.server.getPortForwardUrl({ podSandboxId, ports }) };
      },
    },
  };
}

/** What Exec, ExecSync and Attach need from the container layer (src/sandbox/io/exec-service.ts). */
export interface ExecHandlerDeps {
  server: Pick<StreamingServer, 'getExecUrl' | 'getAttachUrl'>;
  containers: {
    /** NotFound for an unknown container, FailedPrecondition (S4) unless created or running. */
    requireForExec(idOrPrefix: string): Promise<{ id: string }>;
    /** NotFound, or FailedPrecondition unless running. */
    requireForAttach(idOrPrefix: string): Promise<{ id: string }>;
    /** `signal` aborts when the RPC is cancelled: the process is killed. */
    execSync(id: string, cmd: string[], timeoutMs: number, signal?: AbortSignal): Promise<{ stdout: Buffer; stderr: Buffer; exitCode: number }>;
  };
}

function cmdOf(req: CriRequest, containerId: string): string[] {
  const cmd: unknown = req.cmd;
  if (!Array.isArray(cmd) || cmd.length === 0 || cmd.some((c) => typeof c !== 'string') || cmd[0] === '') {
    throw new InvalidArgumentError(`exec in container "${containerId}": cmd must not be empty`);
  }
  return cmd as string[];
}

/** CRI `timeout` (int64 seconds as a decimal string; 0 = none) → milliseconds. */
export function execSyncTimeoutMs(value: unknown): number {
  const text = String(value ?? '0');
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError(`timeout must be a non-negative number of seconds, not ${JSON.stringify(text)}`);
  const s = Number(text);
  if (!Number.isSafeInteger(s * 1000)) throw new InvalidArgumentError(`timeout ${text} s is too large`);
  return s * 1000;
}

export function execHandlers(deps: ExecHandlerDeps): HandlerSet {
  return {
    unary: {
      ExecSync: async (req, ctx) => {
        const containerId = str(req, 'container_id');
        const cmd = cmdOf(req, containerId);
        const timeoutMs = execSyncTimeoutMs(req.timeout);
        const r = await deps.containers.execSync(containerId, cmd, timeoutMs, ctx.signal);
        return { stdout: r.stdout, stderr: r.stderr, exit_code: r.exitCode };
      },
      Exec: async (req) => {
        const containerId = str(req, 'container_id');
        const cmd = cmdOf(req, containerId);
        const rec = await deps.containers.requireForExec(containerId);
        return {
          url: deps.server.getExecUrl({
            containerId: rec.id,
            cmd,
            tty: req.tty === true,
            stdin: req.stdin === true,
            stdout: req.stdout === true,
            stderr: req.stderr === true,
          }),
        };
      },
      Attach: async (req) => {
        const containerId = str(req, 'container_id');
        const rec = await deps.containers.requireForAttach(containerId);
        return {
          url: deps.server.getAttachUrl({
            containerId: rec.id,
            tty: req.tty === true,
            stdin: req.stdin === true,
            stdout: req.stdout === true,
            stderr: req.stderr === true,
          }),
        };
      },
    },
  };
}
