// StartContainer's step, with the container's mutex held: the runtime's start through the
// container's monitor, committed through its cell (created → running), then S11 (the
// container's own conmon gets its score). A start that failed leaves the container
// exited with StartError, as containerd's, unless the runtime says it runs (a start
// whose answer was lost): then it is recorded as running.
import type { Logger } from 'pino';
import { errorMessage, wrapError } from '../../errors.js';
import type { OomScoreApplier } from '../resources/oom-score.js';
import type { Container } from '../store/cell-types.js';
import { nsString, type ContainerRecord } from './container.js';
import type { ContainerMonitors } from './container-monitors.js';
import { markStartedLocked } from './container-recovery.js';

/** The objects StartContainer uses. */
export interface ContainerStart {
  monitors: Pick<ContainerMonitors, 'of'>;
  oom: Pick<OomScoreApplier, 'adjustHelper'>;
  log: Logger;
}

/** S4: only a created container starts; the runtime's start, committed (→ running) or, when it failed, exited with StartError. */
export async function startContainerLocked(s: ContainerStart, c: Container): Promise<void> {
  const rec = c.require('start', ['created']);
  const { id } = rec;
  const monitor = s.monitors.of(rec.runtimeHandler);
  // Taken before the call: a quick container may exit (exit file mtime) before start returns.
  const startedAt = nsString(Date.now());
  try {
    await monitor.start(id);
  } catch (e) {
    // The runtime's word first: one that runs was started (a start the daemon lost).
    const st = await monitor.state(id).catch(() => undefined);
    if (st?.status === 'running' || st?.status === 'paused') {
      await markStartedLocked(c, st.pid);
      s.log.warn({ containerId: id, err: e }, 'start failed but the runtime runs the container; recorded as running');
      return;
    }
    // As containerd: a container whose start failed is exited (StartError), not left created.
    await monitor.kill(id, 'SIGKILL', { all: true }).catch(() => undefined);
    const startError = (d: ContainerRecord): void => {
      d.exitCode = 128;
      d.reason = 'StartError';
      d.message = errorMessage(e);
      d.finishedAt = nsString(Date.now());
    };
    await c.updateLocked('start', ['created'], startError, { to: 'stopped', event: 'CONTAINER_STOPPED_EVENT' });
    throw wrapError(`starting container "${id}"`, e);
  }
  const started = (d: ContainerRecord): void => {
    d.startedAt = startedAt;
  };
  await c.updateLocked('start', ['created'], started, { to: 'running', event: 'CONTAINER_STARTED_EVENT' });
  s.log.info({ containerId: id, podSandboxId: rec.podId }, 'container started');
  // S11: the monitor dedicated to this container gets its score.
  await s.oom.adjustHelper(rec.conmonPid, rec.oomScoreAdj).catch((e: unknown) => s.log.warn({ err: e, containerId: id }, 'setting the monitor oom_score_adj'));
}
