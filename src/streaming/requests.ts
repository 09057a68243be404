// The requests the CRI layer hands the streaming server, typed from the CRI messages
// (ExecRequest, AttachRequest, PortForwardRequest in api/cri.proto). Validation lives
// here so a bad request fails at Exec/Attach/PortForward time, before a URL exists.
import { InvalidArgumentError } from '../errors.js';

export interface ExecRequest {
  containerId: string;
  cmd: string[];
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

export interface AttachRequest {
  containerId: string;
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

export interface PortForwardRequest {
  podSandboxId: string;
  /** May be empty: kubectl names ports per stream (SPDY) and only WebSocket needs them here. */
  ports: number[];
}

export const MAX_PORT = 65535;

function requireId(field: string, value: string): void {
  if (typeof value !== 'string' || value === '') {
    throw new InvalidArgumentError(`${field} must not be empty`);
  }
}

function requireSomeStream(what: string, r: { stdin: boolean; stdout: boolean; stderr: boolean }): void {
  // As containerd: a session with no stdio could only leak a process.
  if (!r.stdin && !r.stdout && !r.stderr) {
    throw new InvalidArgumentError(`${what}: one of stdin, stdout, or stderr must be set`);
  }
}

export function validateExecRequest(r: ExecRequest): ExecRequest {
  requireId('container_id', r.containerId);
  if (!Array.isArray(r.cmd) || r.cmd.length === 0 || r.cmd[0] === '') {
    throw new InvalidArgumentError(`exec in container "${r.containerId}": cmd must not be empty`);
  }
  requireSomeStream(`exec in container "${r.containerId}"`, r);
  return { ...r, cmd: [...r.cmd] };
}

export function validateAttachRequest(r: AttachRequest): AttachRequest {
  requireId('container_id', r.containerId);
  requireSomeStream(`attach to container "${r.containerId}"`, r);
  return { ...r };
}

/** A TCP port a client may forward to: an integer in 1..65535. */
export function isValidPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= MAX_PORT;
}

export function validatePortForwardRequest(r: PortForwardRequest): PortForwardRequest {
  requireId('pod_sandbox_id', r.podSandboxId);
  for (const port of r.ports) {
    if (!isValidPort(port)) {
      throw new InvalidArgumentError(`port forward to pod "${r.podSandboxId}": port ${port} is not in 1..${MAX_PORT}`);
    }
  }
  return { ...r, ports: [...r.ports] };
}
