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
