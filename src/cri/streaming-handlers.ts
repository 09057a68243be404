// Exec, Attach and PortForward hand out URLs on the streaming server. Each checks its
// target now, so a bad request fails at the RPC rather than when the client dials the
// URL. ExecSync, which runs the command itself, is exec-sync-handlers.ts.
import type { StreamingServer } from '../streaming/server.js';
import { answer, type HandlerSet } from './handler-types.js';
import { execCmd, requireNonEmpty } from './request-fields.js';

export interface StreamingHandlerDeps {
  server: StreamingServer;
  /** Throws NotFound / FailedPrecondition (S4) when the pod cannot be port-forwarded to. */
  requirePodRunning(podSandboxId: string, action: string): void;
}

export function portForwardHandlers(deps: StreamingHandlerDeps): HandlerSet {
  return {
    unary: {
      PortForward: (req) =>
        answer(() => {
          const podSandboxId = requireNonEmpty('pod_sandbox_id', req.pod_sandbox_id);
          deps.requirePodRunning(podSandboxId, 'port-forward');
          return { url: deps.server.getPortForwardUrl({ podSandboxId, ports: req.port }) };
        }),
    },
  };
}

/** What Exec and Attach need from the container layer (src/sandbox/io/exec-service.ts). */
export interface ExecHandlerDeps {
  server: Pick<StreamingServer, 'getExecUrl' | 'getAttachUrl'>;
  containers: {
    /** NotFound for an unknown container, FailedPrecondition (S4) unless created or running. */
    requireForExec(idOrPrefix: string): Promise<{ id: string }>;
    /** NotFound, or FailedPrecondition unless running. */
    requireForAttach(idOrPrefix: string): Promise<{ id: string }>;
  };
}

export function execHandlers(deps: ExecHandlerDeps): HandlerSet {
  return {
    unary: {
      Exec: async (req) => {
        const containerId = requireNonEmpty('container_id', req.container_id);
        const cmd = execCmd(req.cmd, containerId);
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
        const containerId = requireNonEmpty('container_id', req.container_id);
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
