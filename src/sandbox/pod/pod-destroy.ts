// Stopping and removing pod sandboxes (S7): StopPodSandbox and RemovePodSandbox once the
// caller holds the pod's mutex, and the infra container's kill and delete that a failed
// RunPodSandbox undoes with. Every step is tried; the failures are joined. The record
// changes through the pod's cell (store/cell.ts) only. StopPodSandbox gives no grace
// (SIGKILL to what still runs, as containerd): the kubelet stopped the containers first.
import type { Logger } from 'pino';
import { endedWithin, waitPidExit, watchPid, type PidWatch } from '../../../native/index.js';
import { FailedPreconditionError } from '../../errors.js';
import type { NetworkManager, PodNetworkRequest } from '../../network/network-manager.js';
import { signalContainerInit } from '../../oci/conmon.js';
import type { RuntimeDriver } from '../../oci/runtime.js';
import type { CgroupManager } from '../resources/cgroups.js';
import { Cleanup } from '../../util/cleanup.js';
import type { NameIndex } from '../store/name-index.js';
import { removePodFiles } from './pod-files.js';
import { unmountPodMounts } from '../storage/pod-mounts.js';
import type { PodFilestores } from '../storage/pod-mounts-filestores.js';
import { nameKey, type SandboxRecord } from './sandbox.js';
import type { PodSandbox } from '../store/cell-types.js';
import { signalInfraProcess } from './infra-process.js';
import type { SandboxStore } from '../store/sandbox-store.js';

/** The part of the NetworkManager pods use (a seam for unit tests). */
export type PodNetwork = Pick<
  NetworkManager,
  'netnsPath' | 'createNetns' | 'usernsPath' | 'removeNetns' | 'setUp' | 'tearDown' | 'listPinned' | 'listAttached'
>;

/** What the container layer does for a pod being stopped or removed (wired by the daemon). */
export interface PodContainersHook {
  stopAll(podId: string, timeoutMs: number): Promise<void>;
  removeAll(podId: string): Promise<void>;
}

/** How long to wait for the infra to be gone after SIGKILL. */
const INFRA_KILL_WAIT_MS = 30_000;
/**
 * Grace given to the pod's app containers by StopPodSandbox: none (SIGKILL at once), as
 * containerd's: the kubelet stops each container with its own grace before the pod.
 */
export const CONTAINERS_STOP_GRACE_MS = 0;
/** Every state StopPodSandbox acts on (an unknown pod too: its stop is kept in memory). */
const STOPPABLE = ['creating', 'created', 'running', 'stopped', 'unknown'] as const;
/** How long the infra's conmon (pods of earlier versions) may take to go after the infra was deleted. */
const INFRA_CONMON_EXIT_WAIT_MS = 10_000;

/** What stopping and removing a pod touches (the hooks as wired at the time of the call). */
export interface PodTeardown {
  store: SandboxStore;
  names: NameIndex;
  network: PodNetwork;
  cgroups: CgroupManager;
  filestores: PodFilestores;
  runtimes: ReadonlyMap<string, RuntimeDriver>;
  log: Logger;
  /** The container layer's hook, as the daemon wired it (read at the call). */
  containers: () => PodContainersHook | undefined;
  /** The pidfd watches of a pod's infra (and of its conmon, pods of earlier versions), where the PodManager holds them. */
  infraWatches?: (podId: string) => InfraWatches;
}

/** The end of a pod's infra process and of its conmon where it has one (native/pid-watch.ts). */
export interface InfraWatches {
  infra?: PidWatch | undefined;
  /** The infra conmon of a pod made by an earlier version (record conmonPid > 0). */
  monitor?: PidWatch | undefined;
}

export function podNetworkRequest(rec: SandboxRecord): PodNetworkRequest {
  const m = rec.config.metadata;
  return {
    podId: rec.id,
    name: m.name,
    namespace: m.namespace,
    uid: m.uid,
    netnsPath: rec.netnsPath ?? '',
    portMappings: rec.config.portMappings,
  };
}

export async function removePodCgroups(store: SandboxStore, cgroups: CgroupManager, rec: SandboxRecord): Promise<void> {
  // The kubelet's pod cgroup may be shared by an earlier attempt of the same pod.
  const shared = !rec.ownsPodCgroup && store.list().some((o) => o.id !== rec.id && o.podCgroup === rec.podCgroup);
  await cgroups.remove(shared ? rec.infraCgroup : rec.podCgroup);
}

/**
 * StopPodSandbox with the pod's mutex held: every step tried, failures joined. What still
 * runs is killed at once (SIGKILL), as containerd does: the kubelet has stopped the
 * containers with their grace before it stops the pod.
 */
export async function stopPodLocked(t: PodTeardown, pod: PodSandbox): Promise<void> {
  const rec = pod.record;
  const log = t.log.child({ podSandboxId: rec.id });
  const steps = new Cleanup();
  const containers = t.containers();
  if (containers) await steps.run('stopping the pod containers', () => containers.stopAll(rec.id, CONTAINERS_STOP_GRACE_MS));
  const driver = t.runtimes.get(rec.runtimeHandler);
  let networkDown = !rec.networkUp;
  let infraDeleted = rec.infraDeleted === true;
  // The infra's kill and the CNI DEL need nothing of each other: at once (issue 13); the
  // netns goes once both are done. Where the runtime allows, the infra's delete follows its
  // end beside the DEL, and RemovePodSandbox is spared a runtime process (issue 13: the
  // `runc delete` was most of its time).
  const stopInfraStep = async (d: RuntimeDriver): Promise<void> => {
    await stopInfra(rec, d, t.log, t.infraWatches?.(rec.id).infra);
    if (!infraDeleted && deletesInfraAtStop(rec, d)) infraDeleted = await deleteStoppedInfra(rec, d, t.log);
  };
  await Promise.all([
    driver ? steps.run('stopping the infra container', () => stopInfraStep(driver)) : undefined,
    rec.networkUp
      ? steps.run('tearing down the pod network', async () => {
          await t.network.tearDown(podNetworkRequest(rec));
          networkDown = true;
        })
      : undefined,
  ]);
  if (rec.netnsPath !== undefined && networkDown) await steps.run('removing the netns', () => t.network.removeNetns(rec.id));
  // An unknown pod (its meta.json did not load) stays unknown; the cell keeps its change in memory.
  const stoppedNow = rec.state !== 'stopped' && rec.state !== 'unknown';
  const down = (d: SandboxRecord): void => {
    if (networkDown) d.networkUp = false;
    if (infraDeleted) d.infraDeleted = true;
  };
  await steps.run('saving metadata', () => pod.updateLocked('stop', STOPPABLE, down, stoppedNow ? { to: 'stopped', event: 'CONTAINER_STOPPED_EVENT' } : {}));
  steps.throwIfFailed(`stopping sandbox "${rec.id}"`);
  log.info('pod sandbox stopped');
}

/** S7, with the pod's mutex held: idempotent, thorough, every step tried; failures joined. */
export async function removePodLocked(t: PodTeardown, pod: PodSandbox): Promise<void> {
  const steps = new Cleanup();
  if (pod.record.state !== 'stopped') await steps.run('stopping', () => stopPodLocked(t, pod));
  const rec = pod.record;
  const containers = t.containers();
  if (containers) await steps.run('removing the pod containers', () => containers.removeAll(rec.id));
  const driver = t.runtimes.get(rec.runtimeHandler);
  if (driver && rec.infraDeleted !== true) await steps.run('deleting the infra container', () => destroyInfra(rec, driver, t.log, t.infraWatches?.(rec.id)));
  if (rec.networkUp) await steps.run('tearing down the pod network', () => t.network.tearDown(podNetworkRequest(rec)));
  if (rec.netnsPath !== undefined) await steps.run('removing the netns', () => t.network.removeNetns(rec.id));
  await steps.run('removing the pod cgroup', () => removePodCgroups(t.store, t.cgroups, rec));
  await steps.run('unmounting the pod volumes', () => unmountPodMounts(rec.paths.dir));
  if (driver?.features.filestores) await steps.run('removing shared filestores', () => t.filestores.removeForPod(rec.id, rec.mountHints ?? []));
  await steps.run('removing pod files', () => removePodFiles(rec.paths));
  // On a failure the metadata stays, so a retry of RemovePodSandbox can finish the job.
  steps.throwIfFailed(`removing sandbox "${rec.id}"`);
  await pod.remove('CONTAINER_DELETED_EVENT');
  t.names.release(nameKey(rec.config.metadata), rec.id);
  t.log.info({ podSandboxId: rec.id }, 'pod sandbox removed');
}

/**
 * Kill and delete the infra container. The infra has no conmon (pod-run.ts): done once
 * the runtime has deleted it. A pod of an earlier version has one: wait for it to go (by pidfd).
 */
export async function destroyInfra(rec: SandboxRecord, driver: RuntimeDriver, log: Logger, watches: InfraWatches = {}): Promise<void> {
  await stopInfra(rec, driver, log, watches.infra).catch(() => undefined);
  await driver.delete(rec.id, { force: true });
  if (watches.monitor) await endedWithin(watches.monitor, INFRA_CONMON_EXIT_WAIT_MS);
  else if (rec.conmonPid > 0) await waitPidExit(rec.conmonPid, INFRA_CONMON_EXIT_WAIT_MS);
}

/**
 * Whether StopPodSandbox deletes the infra from the runtime: the runtime allows it, and the
 * infra has no conmon (a pod of an earlier version waits for its conmon at removal).
 */
function deletesInfraAtStop(rec: SandboxRecord, driver: RuntimeDriver): boolean {
  return driver.features.infraDeleteAtStop && rec.conmonPid === 0;
}

/**
 * The runtime's delete of an infra seen ended, at the pod's stop: true once done. A
 * failure is left to RemovePodSandbox (its destroyInfra tries again), not the stop's.
 */
async function deleteStoppedInfra(rec: SandboxRecord, driver: RuntimeDriver, log: Logger): Promise<boolean> {
  try {
    await driver.delete(rec.id, { force: true });
    return true;
  } catch (e) {
    log.debug({ err: e, podSandboxId: rec.id }, 'deleting the stopped infra (RemovePodSandbox retries)');
    return false;
  }
}

/**
 * SIGKILL to everything in the infra container; done when the infra process is gone
 * (its pidfd: no `runtime state` polling). No grace: the infra (catatonit) holds no
 * state, and what else still runs in the pod has had its grace from the kubelet's
 * StopContainer calls (issue 15). Without a watch (a pod recovery found not running, an
 * unreadable one) the runtime is asked once for the infra's PID.
 */
async function stopInfra(rec: SandboxRecord, driver: RuntimeDriver, log: Logger, watch: PidWatch | undefined): Promise<void> {
  const infra = watch ?? (await runtimeInfra(rec, driver));
  if (infra === undefined || infra.ended) return;
  try {
    if (watch === undefined || !killInfraInit(rec, driver, watch)) {
      await driver
        .kill(rec.id, 'SIGKILL', { all: true })
        .catch(() => driver.kill(rec.id, 'SIGKILL'))
        .catch((e: unknown) => log.debug({ err: e, podSandboxId: rec.id }, 'SIGKILL to the infra'));
    }
    if (!(await endedWithin(infra, INFRA_KILL_WAIT_MS))) {
      throw new FailedPreconditionError(`sandbox "${rec.id}": the infra process survived SIGKILL for ${INFRA_KILL_WAIT_MS} ms`);
    }
  } finally {
    if (infra !== watch) infra.close();
  }
}

/**
 * SIGKILL to the infra's init through a pidfd, no runtime process (issue 13), where that
 * ends all the infra holds: a runtime whose container PIDs are host PIDs (runc, not
 * runsc), and a PID namespace of the pod's own, whose init's death makes the kernel kill
 * every other process in it. The PID is known to be the infra's by the start time
 * recorded at create (infra-process.ts); a pod of an earlier version, by its parent
 * being the infra's conmon (conmon.ts signalContainerInit). False: ask the runtime.
 */
function killInfraInit(rec: SandboxRecord, driver: RuntimeDriver, infra: PidWatch): boolean {
  if (!driver.features.hostPidNamespaces || rec.config.namespaces.pid === 'NODE') return false;
  if (rec.conmonPid > 0) return signalContainerInit(infra.pid, rec.conmonPid, 'SIGKILL') !== 'not-conmon-child';
  if (rec.pidStartTicks === undefined) return false;
  signalInfraProcess(infra.pid, rec.pidStartTicks, 'SIGKILL');
  return true;
}

/** A watch of the infra process the runtime reports alive; undefined when it reports none. */
async function runtimeInfra(rec: SandboxRecord, driver: RuntimeDriver): Promise<PidWatch | undefined> {
  const st = await driver.state(rec.id);
  if (st === undefined || st.status === 'stopped') return undefined;
  // The runtime just named the PID: it is the infra's (not yet another process's).
  return watchPid(st.pid > 0 ? st.pid : rec.pid);
}
