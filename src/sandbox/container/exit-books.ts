// Recording a container's exit in its books, once the caller holds the container's
// mutex: by StopContainer, by the end of the container's conmon (pushed, by pidfd), by
// the check before a start, an update or a log reopen, and by recovery at start. The
// exit file is the truth (container-exits.ts); what it cannot tell (an OOM kill, the
// termination message) is read before the cell commits the exit.
import fsSync from 'node:fs';
import path from 'node:path';
import { exitReason, nsString, type ContainerRecord } from './container.js';
import type { Container } from '../store/cell-types.js';
import { OomKillReader, readExit, readTerminationMessage } from './container-exits.js';
import type { ContainerMonitors } from './container-monitors.js';
import type { ContainerMonitor } from './container-monitor.js';
import type { PodOomScores } from '../resources/pod-oom-scores.js';

/** Exit code reported when the monitor left none (containerd's unknown exit code). */
export const UNKNOWN_EXIT_CODE = 255;

export interface ExitBooksOptions {
  /** The monitors of each handler's containers, and where their exit files are. */
  monitors: Pick<ContainerMonitors, 'of' | 'exitDir'>;
  podScores: PodOomScores;
  /** Called with each exit once recorded (the manager begins the runtime delete there, issue 13). */
  onRecorded?: (rec: ContainerRecord) => void;
}

/** The exits of containers, recorded through each container's cell. */
export class ExitBooks {
  private readonly oomKills = new OomKillReader();

  constructor(private readonly options: ExitBooksOptions) {}

  /**
   * Records the exit through the container's cell (→ stopped, CONTAINER_STOPPED_EVENT):
   * code and finish time from the exit file, OOM kills, termination message. Returns the
   * record. The caller holds the container's mutex.
   */
  async noteLocked(container: Container): Promise<ContainerRecord> {
    const rec = container.record;
    if (rec.state === 'stopped') return rec;
    const exit = await readExit(this.options.monitors.exitDir, rec.id).catch(() => undefined);
    const exitCode = exit?.exitCode ?? UNKNOWN_EXIT_CODE;
    const oomKilled = await this.oomKilled(rec, exitCode);
    const message = exit ? await readTerminationMessage(rec.terminationMessagePath) : 'the container monitor ended without an exit file';
    const exited = (d: ContainerRecord): ContainerRecord => {
      d.exitCode = exitCode;
      d.finishedAt = nsString(exit?.finishedAtMs ?? Date.now());
      if (BigInt(d.finishedAt) < BigInt(d.startedAt)) d.finishedAt = d.startedAt; // clock granularity
      d.reason = exitReason(exitCode, oomKilled);
      d.message = message;
      return d;
    };
    // Stop, the monitor's end, the checks before a change, recovery: all record it here.
    return container.updateLocked('record the exit of', ['created', 'running'], exited, { to: 'stopped', event: 'CONTAINER_STOPPED_EVENT' }).then((r) => {
      this.options.onRecorded?.(r);
      return r;
    });
  }

  /** Records the exit when the exit file is there (one stat); the caller holds the mutex. */
  async refreshLocked(container: Container): Promise<void> {
    const rec = container.find();
    if (rec && (rec.state === 'running' || rec.state === 'created') && fsSync.existsSync(rec.paths.exitFile)) {
      await this.noteLocked(container);
      await this.options.podScores.adjust(rec.podId); // S10: after every exit
    }
  }

  /** The monitor's word when it has one (runsc), else the container cgroup's OOM kill count. */
  private async oomKilled(rec: ContainerRecord, exitCode: number): Promise<boolean> {
    let monitor: ContainerMonitor | undefined;
    try {
      monitor = this.options.monitors.of(rec.runtimeHandler);
    } catch {
      monitor = undefined; // a handler no longer configured: the cgroup decides
    }
    if (monitor?.oomKilled) {
      return monitor.oomKilled(rec.id, exitCode, { container: rec.cgroupPath, pod: path.posix.dirname(rec.cgroupPath) }).catch(() => false);
    }
    return (await this.oomKills.kills(rec.cgroupPath)) > 0;
  }
}
