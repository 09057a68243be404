// The contract between the streaming server (protocols) and the runtime (processes).
// The server owns the wire; the backend owns processes, ptys and sockets. Later the
// runtime side implements this with `runc exec`, conmon attach and a netns dial.
import type { Duplex, Readable, Writable } from 'node:stream';

export interface TerminalSize {
  width: number;
  height: number;
}

/**
 * The client's stdio as negotiated. Absent streams were not requested. The backend
 * writes output but does not have to end stdout/stderr: the server ends them once the
 * returned promise settles, then reports the exit status — so everything the backend
 * wrote before settling reaches the client before the status does.
 */
export interface ExecStreams {
  /** Ends (EOF) when the client closes stdin. */
  stdin?: Readable;
  stdout?: Writable;
  /** Never present with tty: a terminal has one output stream. */
  stderr?: Writable;
  tty: boolean;
  /** Terminal sizes as the client reports them, first one early; ends with the session. */
  resize?: AsyncIterable<TerminalSize>;
}

export interface ExecResult {
  exitCode: number;
}

export interface StreamingBackend {
  /**
   * Runs `cmd` in the container. Resolves with the exit code once the process has
   * exited and its output has been written. When `signal` aborts (the client went
   * away), the process is killed and the promise settles soon after.
   */
  exec(containerId: string, cmd: string[], io: ExecStreams, signal: AbortSignal): Promise<ExecResult>;
  /**
   * Connects to the container's main process stdio. Resolves when the container's
   * output ends; when `signal` aborts (the client went away) it detaches, leaving the
   * container running.
   */
  attach(containerId: string, io: ExecStreams, signal: AbortSignal): Promise<void>;
  /**
   * Connects `conn` to `port` inside the pod's network namespace and pipes both ways
   * until either side ends. `conn` ending (the client half-closing) must half-close
   * the pod-side socket; the pod side ending must end `conn`. Rejects if the port
   * cannot be reached; the message goes to the client's error stream.
   */
  portForward(podSandboxId: string, port: number, conn: Duplex, signal: AbortSignal): Promise<void>;
}
