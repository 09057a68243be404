// Stopping and removing app containers (S7): StopContainer in three parts (signal with
// the container's mutex held, the grace waited for without it, then SIGKILL and the exit
// recorded with it), RemoveContainer with the mutex held (the runtime delete begun at the
// exit waited for, or done here: container-runtime-delete.ts), and the mounts and runtime
// files that a failed CreateContainer undoes with. Remove tries every step
// and joins the failures; the metadata stays until all of them succeed. The record
// changes through the container's cell (store/cell.ts) only.
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { endedWithin, type PidWatches } from '../../../native/index.js';
import { DeadlineExceededError } from '../../errors.js';
import type { ImageService } from '../../image/image-service.js';
import { runtimeFeatures, type RuntimeDriver } from '../../oci/runtime.js';
import { SANDLOT_HOOKS_FILE } from '../../oci/hook-stages.js';
import { preparedMountsDir, releasePreparedMounts } from '../../oci/prepared-mounts.js';
import type { CgroupManager } from '../resources/cgroups.js';
import { containerNameKey, requireState, type ContainerRecord } from './container.js';
import type { ExitBooks } from './exit-books.js';
import type { ContainerMonitors } from './container-monitors.js';
import { exitFileExists, processAlive, removeExitFile, waitExit } from './container-exits.js';
import { destroyProcess, type ExitDeletes } from './container-runtime-delete.js';
import type { Container } from '../store/cell-types.js';
import type { ContainerMonitor } from './container-monitor.js';
import type { FilestorePlan } from '../storage/filestore-plan.js';
import { Cleanup } from '../../util/cleanup.js';
import { removeTree } from '../../util/remove-tree.js';
import type { NameIndex } from '../store/name-index.js';
import type { PodManager } from '../pod/pod-manager.js';
import { containerFilestorePlan, type PodFilestores } from '../storage/pod-mounts-filestores.js';
import type { SandboxRecord } from '../pod/sandbox.js';

/** The parts of the image service containers use. */
export type ContainerImages = Pick<ImageService, 'resolve' | 'prepareRootfs' | 'removeRootfs' | 'prepareImageVolume' | 'removeImageVolumes'>;
/** The parts of the pod manager containers use. */
export type ContainerPods = Pick<PodManager, 'get' | 'view' | 'withSandbox' | 'driver' | 'requireRunning'>;

/** How long SIGKILL may take before StopContainer gives up. */
const KILL_WAIT_MS = 30_000;

/** The objects stopping and removing a container use (made once by the ContainerManager). */
export interface ContainerTeardown {
  exits: ExitBooks;
  monitors: ContainerMonitors;
  names: NameIndex;
  log: Logger;
  images: ContainerImages;
  pods: ContainerPods;
  cgroups: CgroupManager;
  filestores: PodFilestores;
  /** The runtime deletes begun when an exit was recorded (RemoveContainer waits for them). */
  exitDeletes: ExitDeletes;
  /** The manager's watch of each container's conmon (a stop waits on it: no pidfd of its own). */
  monitorEnds?: Pick<PidWatches, 'get'>;
}

/**
 * StopContainer, first part (the container's mutex held): an exit already there is
 * recorded; a stopped container is done; a running one with a grace gets its stop
 * signal. True when the grace is to be waited for: the caller waits WITHOUT the mutex
 * (waitGrace), so a RemoveContainer or a StopContainer with a shorter timeout (the
 * kubelet escalates so) acts at once, as containerd lets a later stop escalate.
 */
export async function signalStopLocked(t: ContainerTeardown, container: Container, timeoutMs: number): Promise<boolean> {
  await t.exits.refreshLocked(container);
  const rec = container.record;
  if (rec.state === 'stopped') return false;
  requireState(rec, 'stop', 'created', 'running');
  if (rec.state !== 'running' || timeoutMs <= 0) return false;
  try {
    await t.monitors.of(rec.runtimeHandler).kill(rec.id, rec.stopSignal, { init: { pid: rec.pid, conmonPid: rec.conmonPid } });
  } catch (e) {
    t.log.debug({ err: e, containerId: rec.id, signal: rec.stopSignal }, 'sending the stop signal');
  }
  return true;
}

/** The grace of a stop, waited for without the mutex: true when the container exited (or is gone) within it. */
export async function waitGrace(t: ContainerTeardown, container: Container, timeoutMs: number): Promise<boolean> {
  const rec = container.find();
  if (rec === undefined) return true;
  return waitMonitorEnd(t, rec, timeoutMs);
}

/**
 * True once the container's exit file is there or its conmon is gone, false after
 * `timeoutMs`: on the manager's watch of that conmon when it has one (issue 13: no
 * second pidfd and exit-watcher wake per stop), else as waitExit.
 */
async function waitMonitorEnd(t: ContainerTeardown, rec: ContainerRecord, timeoutMs: number): Promise<boolean> {
  const watch = t.monitorEnds?.get(rec.id);
  if (watch === undefined || watch.pid !== rec.conmonPid) return waitExit(t.monitors.exitDir, rec.id, rec.conmonPid, timeoutMs);
  return exitFileExists(t.monitors.exitDir, rec.id) || endedWithin(watch, timeoutMs);
}

/**
 * StopContainer, last part (the container's mutex held): an exit is recorded, what the
 * container left killed; one still running gets SIGKILL. Nothing to do when another
 * call removed or stopped it meanwhile.
 */
export async function finishStopLocked(t: ContainerTeardown, container: Container): Promise<void> {
  const rec = container.find();
  if (rec === undefined) return;
  const log = t.log.child({ containerId: rec.id, podSandboxId: rec.podId });
  const monitor = t.monitors.of(rec.runtimeHandler);
  const exited = exitFileExists(t.monitors.exitDir, rec.id);
  if (rec.state === 'stopped' || exited) {
    // In a pod-wide PID namespace the init's children outlive it (reparented to the
    // infra): a stopped container leaves none running, as containerd's shim kills
    // them all when the init exits (S9: `all` is allowed on a stopped container). In a
    // host PID namespace of its own the kernel has done that already (exitEndsAll) once
    // the init has exited (the exit file; a conmon that died without one proves nothing).
    if (rec.exitEndsAll !== true || !exited) {
      await monitor.kill(rec.id, 'SIGKILL', { all: true }).catch((e: unknown) => log.debug({ err: e }, 'killing what the container left'));
    }
  } else {
    if (rec.state === 'running') log.info({ signal: rec.stopSignal }, 'container did not stop within its grace; sending SIGKILL');
    await monitor
      .kill(rec.id, 'SIGKILL', { all: true })
      .catch(() => monitor.kill(rec.id, 'SIGKILL'))
      .catch((e: unknown) => {
        log.debug({ err: e }, 'sending SIGKILL');
      });
    if (!(await waitMonitorEnd(t, rec, KILL_WAIT_MS))) {
      throw new DeadlineExceededError(`stopping container "${rec.id}": still running ${KILL_WAIT_MS} ms after SIGKILL`);
    }
  }
  if (rec.state === 'stopped') return;
  const stopped = await t.exits.noteLocked(container);
  log.info({ exitCode: stopped.exitCode }, 'container stopped');
}

/** StopContainer with no grace (SIGKILL at once), the mutex held throughout: RemoveContainer's stop. */
export async function killLocked(t: ContainerTeardown, container: Container): Promise<void> {
  await signalStopLocked(t, container, 0);
  await finishStopLocked(t, container);
}

/** S7, with the container's mutex held: thorough, every step tried, failures joined. */
export async function removeContainerLocked(t: ContainerTeardown, container: Container): Promise<void> {
  const steps = new Cleanup();
  let monitor: ContainerMonitor | undefined;
  const first = container.record;
  // Cleanup.run catches what the step throws synchronously, too.
  await steps.run('finding the container monitor', () => {
    monitor = t.monitors.of(first.runtimeHandler);
    return Promise.resolve();
  });
  // The CRI: a running container is removed by force.
  if (monitor && (first.state === 'running' || first.state === 'created')) await steps.run('stopping', () => killLocked(t, container));
  const rec = container.record;
  // The rootfs and the daemon-made mounts go while the runtime's delete begun at the exit
  // still runs (issue 13: RemoveContainer right after a stop waited for it first) when
  // nothing can use them any more: every process of the container ended with its init
  // (exitEndsAll, and the exit file says the init exited) and no poststop hook is to run.
  const early =
    monitor !== undefined && rec.state === 'stopped' && rec.exitEndsAll === true && exitFileExists(t.monitors.exitDir, rec.id) && !hasSandlotHooks(rec);
  const filesEarly = early ? removeMountsAndRootfs(t, steps, rec) : Promise.resolve();
  if (monitor) {
    // Done already when the delete begun at the exit succeeded (ExitDeletes); else done here.
    if (!(await t.exitDeletes.take(rec.id))) await steps.run('deleting the container', () => destroyProcess(rec, monitor!));
  } else if (rec.conmonPid > 0 && processAlive(rec.conmonPid)) steps.errors.push(new Error(`the monitor (pid ${rec.conmonPid}) is still running`));
  await filesEarly;
  if (!early) await removeMountsAndRootfs(t, steps, rec);
  // "" only for an unknown container whose spec named none.
  if (rec.cgroupPath !== '' && cgroupLeft(t.cgroups, rec.cgroupPath)) {
    await steps.run('removing the container cgroup', () => t.cgroups.remove(rec.cgroupPath));
  }
  if (runtimeFeatures(rec.runtimeType).filestores) await steps.run('removing filestores', () => removeFilestores(t, rec));
  await steps.run('removing runtime files', () => removeRuntimeFiles(t.monitors, rec));
  // On a failure the metadata stays, so a retry of RemoveContainer can finish the job.
  steps.throwIfFailed(`removing container "${rec.id}"`);
  await container.remove('CONTAINER_DELETED_EVENT');
  t.names.release(containerNameKey(rec.podId, rec.metadata), rec.id);
  t.log.info({ containerId: rec.id, podSandboxId: rec.podId }, 'container removed');
}

/** The daemon-made mounts and the rootfs, each a step of the removal. */
async function removeMountsAndRootfs(t: ContainerTeardown, steps: Cleanup, rec: ContainerRecord): Promise<void> {
  await steps.run('removing prepared mounts', () => removePreparedMounts(t, rec));
  if (rec.rootfsPrepared) await steps.run('removing the rootfs', () => t.images.removeRootfs(rec.id));
}

/** Whether poststop hooks are still to run at the container's delete (oci/hook-stages.ts). */
function hasSandlotHooks(rec: ContainerRecord): boolean {
  return fsSync.existsSync(path.join(rec.paths.bundle, SANDLOT_HOOKS_FILE));
}

/**
 * Whether any hierarchy still has the container's cgroup: the runtime's delete removes
 * it (runc), so usually none does, and the removal (under the cgroup manager's one tree
 * lock, a rmdir per hierarchy and ancestor) is skipped for a stat per hierarchy. The
 * stats are synchronous: cgroupfs answers from memory, in microseconds, where a threadpool
 * round trip per hierarchy cost more than the stat (issue 13).
 */
function cgroupLeft(cgroups: CgroupManager, cgPath: string): boolean {
  let dirs: string[];
  try {
    dirs = cgroups.dirs(cgPath);
  } catch {
    return true; // a path the manager refuses: its remove says why
  }
  return dirs.some((d) => fsSync.existsSync(d));
}

/** The daemon-made mounts of the container (recursive read-only binds, image volumes); idempotent. */
export async function removePreparedMounts(t: Pick<ContainerTeardown, 'images'>, rec: ContainerRecord): Promise<void> {
  await releasePreparedMounts(preparedMountsDir(rec.paths.dir));
  await t.images.removeImageVolumes(rec.id);
}

/**
 * The container's exit file, attach link and state dir. The link goes synchronously (one
 * unlink). The dir (a dozen small files) goes on the thread pool: on a disk-backed state
 * dir (ext4 rather than tmpfs) a synchronous recursive removal held the event loop ~7 ms
 * per RemoveContainer, and every List/Status call meanwhile waited behind it (issue 13:
 * the reads' p99 while pods start and go).
 */
export async function removeRuntimeFiles(files: Pick<ContainerMonitors, 'exitDir' | 'socketDir'>, rec: ContainerRecord): Promise<void> {
  await removeExitFile(files.exitDir, rec.id);
  fsSync.rmSync(path.join(files.socketDir, rec.id), { force: true });
  await removeTree(rec.paths.dir);
}

export function filestorePlanFor(rec: ContainerRecord, pod: SandboxRecord, driver: RuntimeDriver, rootfs: string, readonlyRootfs: boolean): FilestorePlan {
  return containerFilestorePlan({ podId: pod.id, overlay: driver.config.overlay, hints: pod.mountHints ?? [], rootfs, readonlyRootfs, mounts: rec.mounts });
}

/** S15: the container's own self filestores (the plan again, from its record). */
async function removeFilestores(t: ContainerTeardown, rec: ContainerRecord): Promise<void> {
  let pod: SandboxRecord;
  try {
    pod = t.pods.get(rec.podId);
  } catch {
    return; // the pod is gone, and its filestores with it
  }
  const spec = JSON.parse(await fs.readFile(rec.paths.spec, 'utf8').catch(() => '{}')) as { root?: { path?: string; readonly?: boolean } };
  if (spec.root?.path === undefined) return; // never got as far as a spec
  await t.filestores.removeForContainer(pod.id, filestorePlanFor(rec, pod, t.pods.driver(rec.runtimeHandler), spec.root.path, spec.root.readonly === true));
}
