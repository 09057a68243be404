// The runtime's side of removing a container: its process killed and deleted from the
// runtime, and its conmon gone. destroyProcess for RemoveContainer and a failed create's
// undo; ExitDeletes for the delete begun as soon as an exit is recorded (issue 13).
import type { Logger } from 'pino';
import { DeadlineExceededError } from '../../errors.js';
import type { ContainerRecord } from './container.js';
import type { ContainerMonitor } from './container-monitor.js';
import type { ContainerMonitors } from './container-monitors.js';
import { waitPidGone } from './container-exits.js';
import { readPid } from './container-spec-input.js';

/** How long conmon may take to go after its container was deleted. */
const CONMON_EXIT_WAIT_MS = 10_000;

/** Kill, delete from the runtime, and wait for the monitor to go. */
export async function destroyProcess(rec: ContainerRecord, monitor: ContainerMonitor): Promise<void> {
  await monitor.kill(rec.id, 'SIGKILL', { all: true }).catch(() => undefined);
  await monitor.delete(rec.id);
  await waitMonitorGone(rec);
}

/**
 * The runtime's delete of each container whose exit is recorded (issue 13), begun then in
 * the background: the process is gone, so `<runtime> delete --force` (which kills what
 * the container left in a shared PID namespace: runc 1.1's destroy, runsc's), the S6
 * poststop hooks and conmon's exit need not wait for RemoveContainer, which then only
 * removes files and records. RemoveContainer waits for a delete still running (take); one
 * that failed, or that a daemon restart lost, it does itself (destroyProcess is
 * idempotent). Nothing here takes the container's mutex: the exit is recorded with it
 * held, and RemoveContainer holds it while it waits.
 */
export class ExitDeletes {
  private readonly running = new Map<string, Promise<boolean>>();

  constructor(
    private readonly monitors: Pick<ContainerMonitors, 'of'>,
    private readonly log: Logger,
  ) {}

  /** Begins the delete of a container whose exit was just recorded (once per container). */
  begin(rec: ContainerRecord): void {
    if (rec.state !== 'stopped' || this.running.has(rec.id)) return;
    let monitor: ContainerMonitor;
    try {
      monitor = this.monitors.of(rec.runtimeHandler);
    } catch {
      return; // a handler no longer configured: RemoveContainer reports it
    }
    const deleted = deleteExited(rec, monitor).then(
      () => true,
      (e: unknown) => {
        this.log.warn({ err: e, containerId: rec.id, podSandboxId: rec.podId }, 'deleting an exited container from its runtime (RemoveContainer retries)');
        return false;
      },
    );
    this.running.set(rec.id, deleted);
  }

  /** True when the delete begun at the exit succeeded (waiting for one still running); forgets it. */
  async take(id: string): Promise<boolean> {
    const deleted = this.running.get(id);
    this.running.delete(id);
    return deleted !== undefined && (await deleted);
  }
}

/** An exited container's delete: no kill first (delete --force kills what it left), then conmon's exit. */
async function deleteExited(rec: ContainerRecord, monitor: ContainerMonitor): Promise<void> {
  await monitor.delete(rec.id);
  await waitMonitorGone(rec);
}

/** Waits for the container's conmon to go (it exits once its container is deleted). */
async function waitMonitorGone(rec: ContainerRecord): Promise<void> {
  const conmonPid = rec.conmonPid > 0 ? rec.conmonPid : await readPid(rec.paths.conmonPidFile);
  if (conmonPid > 0 && !(await waitPidGone(conmonPid, CONMON_EXIT_WAIT_MS))) {
    throw new DeadlineExceededError(`the monitor of container "${rec.id}" (pid ${conmonPid}) did not exit within ${CONMON_EXIT_WAIT_MS} ms`);
  }
}
