// ExecSync: runs a command in a container and answers with its output and exit code.
// Validated here (container_id, a non-empty cmd, a non-negative timeout in seconds);
// running it, its output cap and its timeout are src/sandbox/io/exec-sync.ts's. The
// streaming siblings (Exec, Attach, PortForward) hand out URLs: streaming-handlers.ts.
import { InvalidArgumentError } from '../errors.js';
import type { HandlerSet } from './handler-types.js';
import { execCmd, requireNonEmpty } from './request-fields.js';

/** What ExecSync needs from the container layer (src/sandbox/io/exec-service.ts). */
export interface ExecSyncHandlerDeps {
  containers: {
    /**
     * NotFound for an unknown container, FailedPrecondition (S4) unless running.
     * `signal` aborts when the RPC is cancelled: the process is killed.
     */
    execSync(id: string, cmd: string[], timeoutMs: number, signal?: AbortSignal): Promise<{ stdout: Buffer; stderr: Buffer; exitCode: number }>;
  };
}

/** CRI `timeout` (int64 seconds as a decimal string; 0 = none) → milliseconds. */
export function execSyncTimeoutMs(value: string | number | undefined): number {
  const text = String(value ?? '0');
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError(`timeout must be a non-negative number of seconds, not ${JSON.stringify(text)}`);
  const s = Number(text);
  if (!Number.isSafeInteger(s * 1000)) throw new InvalidArgumentError(`timeout ${text} s is too large`);
  return s * 1000;
}

export function execSyncHandlers(deps: ExecSyncHandlerDeps): HandlerSet {
  return {
    unary: {
      async ExecSync(req, ctx) {
        const containerId = requireNonEmpty('container_id', req.container_id);
        const cmd = execCmd(req.cmd, containerId);
        const timeoutMs = execSyncTimeoutMs(req.timeout);
        const r = await deps.containers.execSync(containerId, cmd, timeoutMs, ctx.signal);
        return { stdout: r.stdout, stderr: r.stderr, exit_code: r.exitCode };
      },
    },
  };
}
