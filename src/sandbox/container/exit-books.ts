// Recording a container's exit in its books, once the caller holds the container's
// mutex: by StopContainer, by the exit watcher and the refresh before Status/List, and
// by recovery at start. The exit file is the truth (container-exits.ts); what it cannot
// tell (an OOM kill, the termination message) is read before the record is saved.
import fsSync from 'node:fs';
import path from 'node:path';
import { changeState, exitReason, nsString, type ContainerRecord } from './container.js';
import type { ContainerEventSink } from './container-events.js';
import { readExit, readTerminationMessage, type OomKillReader } from './container-exits.js';
import type { ContainerMonitor } from './container-monitor.js';
import type { PodOomScores } from '../resources/pod-oom-scores.js';
import type { ContainerStore } from '../store/container-store.js';

/** Exit code reported when the monitor left none (containerd's unknown exit code). */
export const UNKNOWN_EXIT_CODE = 255;

/** What recording an exit touches. */
export interface ContainerExitBooks {
  store: ContainerStore;
  exitDir: string;
  /** The monitor of a handler's containers; throws for a handler no longer configured. */
  monitor: (handler: string) => ContainerMonitor;
  oomKills: OomKillReader;
  podScores: PodOomScores;
  events: ContainerEventSink | undefined;
}

/** Records the exit: code and finish time from the exit file, OOM kills, termination message. */
export async function noteExitLocked(b: ContainerExitBooks, rec: ContainerRecord): Promise<void> {
  if (rec.state === 'stopped') return;
  const exit = await readExit(b.exitDir, rec.id).catch(() => undefined);
  rec.exitCode = exit?.exitCode ?? UNKNOWN_EXIT_CODE;
  let monitor: ContainerMonitor | undefined;
  try {
    monitor = b.monitor(rec.runtimeHandler);
  } catch {
    monitor = undefined; // a handler no longer configured: the cgroup decides
  }
  const oomKilled = monitor?.oomKilled
    ? await monitor.oomKilled(rec.id, rec.exitCode, { container: rec.cgroupPath, pod: path.posix.dirname(rec.cgroupPath) }).catch(() => false)
    : (await b.oomKills.kills(rec.cgroupPath)) > 0;
  rec.finishedAt = nsString(exit?.finishedAtMs ?? Date.now());
  if (BigInt(rec.finishedAt) < BigInt(rec.startedAt)) rec.finishedAt = rec.startedAt; // clock granularity
  rec.reason = exitReason(rec.exitCode, oomKilled);
  rec.message = exit ? await readTerminationMessage(rec.terminationMessagePath) : 'the container monitor ended without an exit file';
  changeState(rec, 'stopped');
  await b.store.save(rec);
  b.events?.publish('CONTAINER_STOPPED_EVENT', rec.id, rec.podId); // stop, exit watcher, refresh, recovery
}

/** Notices an exit the watcher may have missed (cheap: one stat). */
export async function refreshLocked(b: ContainerExitBooks, rec: ContainerRecord): Promise<void> {
  if ((rec.state === 'running' || rec.state === 'created') && fsSync.existsSync(rec.paths.exitFile)) {
    await noteExitLocked(b, rec);
    await b.podScores.adjust(rec.podId); // S10: after every exit
  }
}
