// What exec and attach do once the client's streams are in place, whatever the wire:
// call the backend, turn the outcome into a k8s Status, and make sure every byte of
// output is handed to the transport before the status is.
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.js';
import type { ExecStreams, StreamingBackend } from './backend.js';
import type { AttachRequest, ExecRequest } from './requests.js';
import { exitCodeStatus, internalErrorStatus, successStatus, type K8sStatus } from './status.js';

export type RemoteCommand = { kind: 'exec'; request: ExecRequest } | { kind: 'attach'; request: AttachRequest };

/** `log` is the session's: it already binds the container ID (streaming/server.ts sessionLog). */
export interface RunCommandOptions {
  command: RemoteCommand;
  backend: StreamingBackend;
  io: ExecStreams;
  signal: AbortSignal;
  log: Logger;
}

/** Runs the command; undefined when the client went away (nobody to report to). */
export async function runRemoteCommand(opts: RunCommandOptions): Promise<K8sStatus | undefined> {
  const { command, backend, io, signal, log } = opts;
  const containerId = command.request.containerId;
  const started = Date.now();
  let status: K8sStatus;
  try {
    if (command.kind === 'exec') {
      const { exitCode } = await backend.exec(containerId, command.request.cmd, io, signal);
      status = exitCode === 0 ? successStatus() : exitCodeStatus(exitCode);
      log.info({ exitCode, durationMs: Date.now() - started }, 'exec finished');
    } else {
      await backend.attach(containerId, io, signal);
      status = successStatus();
      log.info({ durationMs: Date.now() - started }, 'attach finished');
    }
  } catch (e: unknown) {
    if (signal.aborted) {
      log.info({ durationMs: Date.now() - started }, `${command.kind} ended: client went away`);
      return undefined;
    }
    const what = command.kind === 'exec' ? 'error executing command in container' : 'error attaching to container';
    log.warn({ err: e }, `${command.kind} failed`);
    status = internalErrorStatus(`${what}: ${errorMessage(e)}`);
  }
  if (signal.aborted) return undefined;
  await Promise.all([endOutput(io.stdout), endOutput(io.stderr)]);
  return status;
}

/** Ends an output stream and waits until its last byte went to the transport. */
export async function endOutput(w: Writable | undefined): Promise<void> {
  if (!w || w.destroyed) return;
  if (!w.writableEnded) w.end();
  await finished(w, { readable: false }).catch(() => undefined);
}
