// ExecSync (S18): run a command in a container, collect its output, return its exit
// code. Output is bounded (EXEC_SYNC_OUTPUT_LIMIT_BYTES per stream): the excess is
// dropped and the drop said once in the log. A timeout kills the process and fails with
// DeadlineExceeded. A command the runtime cannot start (a missing binary) is not an
// error here: the caller gets the runtime's exit code and message, as from containerd.
import type { Logger } from 'pino';
import { DeadlineExceededError } from '../../errors.js';
import type { ExecOptions } from '../../oci/exec.js';
import type { RuntimeDriver } from '../../oci/runtime.js';

/** 16 MiB per stream, as the CRI's kubelet-side limit suggests. */
export const EXEC_SYNC_OUTPUT_LIMIT_BYTES = 16 * 1024 * 1024;

export interface ExecSyncResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
}

/** Collects up to `limit` bytes and counts what it dropped. */
export class BoundedCollector {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  dropped = 0;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    const room = this.limit - this.size;
    if (chunk.length <= room) {
      this.chunks.push(chunk);
      this.size += chunk.length;
      return;
    }
    if (room > 0) {
      this.chunks.push(chunk.subarray(0, room));
      this.size += room;
    }
    this.dropped += chunk.length - Math.max(room, 0);
  }

  result(): Buffer {
    return Buffer.concat(this.chunks, this.size);
  }
}

export interface ExecSyncOptions extends Omit<ExecOptions, 'tty' | 'stdio' | 'detached'> {
  /** The runtime of the container's handler. */
  driver: RuntimeDriver;
  /** 0 = no timeout. */
  timeoutMs: number;
  /** The caller went away (the RPC was cancelled): the process is killed. */
  signal?: AbortSignal;
  log: Logger;
  limitBytes?: number;
}

export async function execSync(o: ExecSyncOptions): Promise<ExecSyncResult> {
  const limit = o.limitBytes ?? EXEC_SYNC_OUTPUT_LIMIT_BYTES;
  const launch = await o.driver.exec({ ...o, tty: false, stdio: ['ignore', 'pipe', 'pipe'] });
  const onCancel = (): void => {
    void launch.kill();
  };
  o.signal?.addEventListener('abort', onCancel, { once: true });
  if (o.signal?.aborted) onCancel();
  const out = new BoundedCollector(limit);
  const err = new BoundedCollector(limit);
  launch.stdout!.on('data', (d: Buffer) => out.push(d));
  launch.stderr!.on('data', (d: Buffer) => err.push(d));
  // All output read: both pipes closed (the process and whatever inherited them are gone).
  const closed = launch.outputClosed;
  let timer: NodeJS.Timeout | undefined;
  let timedOut = false;
  try {
    const timeout =
      o.timeoutMs > 0
        ? new Promise<'timeout'>((resolve) => {
            timer = setTimeout(() => resolve('timeout'), o.timeoutMs);
          })
        : new Promise<never>(() => undefined);
    const first = await Promise.race([Promise.all([launch.exited, closed]), timeout]);
    if (first === 'timeout') {
      timedOut = true;
      await launch.kill();
      launch.stdout!.destroy();
      launch.stderr!.destroy();
      await launch.exited;
      throw new DeadlineExceededError(
        `exec in container "${o.containerId}": command ${JSON.stringify(o.cmd)} timed out after ${o.timeoutMs / 1000} s and was killed`,
      );
    }
    const exitCode = await launch.exited;
    if (out.dropped > 0 || err.dropped > 0) {
      o.log.warn(
        { containerId: o.containerId, limitBytes: limit, droppedStdoutBytes: out.dropped, droppedStderrBytes: err.dropped },
        'ExecSync output over the limit: the excess was dropped',
      );
    }
    return { stdout: out.result(), stderr: err.result(), exitCode };
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener('abort', onCancel);
    if (!timedOut) await launch.kill().catch(() => undefined);
    await launch.cleanup().catch(() => undefined);
  }
}
