// RunPodSandbox's steps, each registering its undo: metadata first (S5, naming the
// netns the pod will have), pod files and /dev/shm, the pod's mount hints (S14), the
// netns; then at once the CNI ADD and the pod cgroup (S12) with the infra spec (neither
// needs the other), and, where the runtime's create only joins the pinned netns, the
// infra container's create beside the ADD too (else after it); then the
// created state written while the runtime starts the infra. A failure undoes them all
// and names what it was doing. What a step makes is committed through the pod's cell
// (store/cell.ts) before the next begins; an undo reads the committed record.
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { SandlotConfig } from '../../config/types.js';
import { FailedPreconditionError, InternalError } from '../../errors.js';
import type { RuntimeDriver } from '../../oci/runtime.js';
import { INFRA_OOM_SCORE_ADJ, sandboxSpec } from '../../oci/spec-sandbox.js';
import { Cleanup } from '../../util/cleanup.js';
import { type CgroupManager, type PodResources, podResources } from '../resources/cgroups.js';
import { mountHintAnnotations } from '../storage/mount-hints.js';
import { CAP_SYS_RESOURCE_BIT, hasCapability } from '../resources/oom-score.js';
import { destroyInfra, podNetworkRequest, removePodCgroups, type PodNetwork } from './pod-destroy.js';
import { allSettledFirst } from './all-settled.js';
import { mountPodShm, podPaths, removePodFiles, writeHosts, writePodFiles } from './pod-files.js';
import { mountPodTmpfs, podMountHints, unmountPodMounts } from '../storage/pod-mounts.js';
import { relayBinaryFor } from '../io/port-forward-relay.js';
import { nameKey, type RunPodInput, type SandboxRecord } from './sandbox.js';
import type { SandboxStore } from '../store/sandbox-store.js';
import { beginCreate, type MadeProcess } from '../store/cell.js';
import type { PodSandbox } from '../store/cell-types.js';
import { processStartTicks } from './infra-process.js';

/** The action RunPodSandbox's guards name. */
const RUN = 'run';
/** What RunPodSandbox touches. */
export interface PodSetup {
  config: SandlotConfig;
  store: SandboxStore;
  network: PodNetwork;
  cgroups: CgroupManager;
  /** The catatonit binary (config.catatonit_path looked up once found; undefined while it is not). */
  catatonit: () => string | undefined;
  /** The infra's oom_score_adj (infraOomScoreAdj, read once: the daemon's capabilities do not change). */
  infraOomScoreAdj: () => number;
  log: Logger;
}

/**
 * RunPodSandbox with the new pod's mutex held; every side effect is undone on failure.
 * Each step commits what it made through the pod's cell before the next begins, and
 * each undo reads the committed record when it runs (what a later step added is undone).
 */
export async function runPodLocked(s: PodSetup, pod: PodSandbox, config: RunPodInput, configHash: string, driver: RuntimeDriver): Promise<string> {
  const started = Date.now();
  const log = s.log.child({ podSandboxId: pod.id });
  const cleanup = new Cleanup();
  try {
    // S14: the pod's mount hints, read (no side effect) before the first write, which holds them.
    const hints = await podMountHints(config.annotations, config.metadata.uid);
    // A pod network's netns path is known before it exists: the first write names it, so a
    // crash from here on leaves a record whose removal unpins it and DELs what the ADD made.
    const netnsPath = config.namespaces.network !== 'NODE' ? s.network.netnsPath(pod.id) : undefined;
    await beginCreate(pod, { ...newPodRecord(s.config, pod.id, config, configHash, driver, netnsPath), mountHints: hints }, cleanup);
    await preparePodFiles(pod, driver, cleanup);
    if (netnsPath !== undefined) await createPodNetns(s, pod, cleanup);
    cleanup.add('removing the pod cgroup', () => removePodCgroups(s.store, s.cgroups, pod.record));
    const rec = pod.record;
    const network = netnsPath !== undefined ? setUpPodNetwork(s, rec) : Promise.resolve(undefined);
    const infra = prepareInfra(s, rec, driver, podResources(config.resources, config.overhead));
    // The CNI ADD needs the netns only; the cgroup and the spec need no interface: at once
    // (issue 13). Where the runtime's create only joins the pinned netns, the infra's
    // create runs beside the ADD too; otherwise it waits for the pod's interfaces.
    if (netnsPath !== undefined && createsBeforeNetwork(driver, config)) {
      const [ips, made] = await allSettledFirst([network, infra.then(() => createInfra(s, pod, driver, cleanup))]);
      await startInfra(pod, driver, made, ips);
    } else {
      const [ips] = await allSettledFirst([network, infra]);
      await startInfra(pod, driver, await createInfra(s, pod, driver, cleanup), ips);
    }
    cleanup.release();
    const running = pod.record;
    log.info({ durationMs: Date.now() - started, handler: driver.name, pid: running.pid, ip: running.ip }, 'pod sandbox running');
    return pod.id;
  } catch (e) {
    throw await cleanup.undoAfter(e, `running pod sandbox "${nameKey(config.metadata)}"`, log);
  }
}

/** The record of a pod about to be made (state creating): its paths, cgroups (S12) and the netns it will have. */
function newPodRecord(
  cfg: SandlotConfig,
  id: string,
  config: RunPodInput,
  configHash: string,
  driver: RuntimeDriver,
  netnsPath: string | undefined,
): SandboxRecord {
  const ownsPodCgroup = config.cgroupParent === '';
  const podCgroup = ownsPodCgroup ? path.join(cfg.cgroup_root, cfg.default_cgroup_parent, `pod-${id}`) : path.join(cfg.cgroup_root, config.cgroupParent);
  return {
    version: 1,
    id,
    state: 'creating',
    createdAt: (BigInt(Date.now()) * 1_000_000n).toString(),
    config,
    configHash,
    runtimeHandler: driver.name,
    podCgroup,
    infraCgroup: path.join(podCgroup, `sandlot-${id}`),
    ownsPodCgroup,
    netnsPath,
    // Set before the ADD: whatever the ADD did, a DEL undoes (a DEL of nothing is nothing).
    networkUp: netnsPath !== undefined,
    ip: '',
    additionalIps: [],
    pid: 0,
    conmonPid: 0,
    paths: podPaths(cfg.state_dir, id, config.namespaces.ipc === 'NODE'),
  };
}

/** The pod's files and /dev/shm, its mount hints (S14) and, where the host makes them, its shared tmpfs volumes. */
async function preparePodFiles(pod: PodSandbox, driver: RuntimeDriver, cleanup: Cleanup): Promise<void> {
  const { paths, config } = pod.record;
  cleanup.add('removing pod files', () => removePodFiles(paths));
  // A pod network's /etc/hosts is written once, with the IPs the ADD gives (setUpPodNetwork).
  await writePodFiles(paths, config.hostname, config.dns, { hosts: config.namespaces.network === 'NODE' });
  await mountPodShm(paths);
  // S14: runc pods get their shared tmpfs volumes here.
  if (driver.features.podSharedTmpfs === 'host') {
    cleanup.add('unmounting the pod volumes', () => unmountPodMounts(paths.dir));
    await mountPodTmpfs(paths.dir, pod.record.mountHints ?? []);
  }
}

/** The pod's IPs from the CNI ADD (recorded with the created state). */
interface PodIps {
  ip: string;
  additionalIps: string[];
}

/**
 * The pinned netns, at the path the first record names (the record already says the
 * network is up: a crash from here on is undone by recovery, pod-recovery.ts).
 */
async function createPodNetns(s: PodSetup, pod: PodSandbox, cleanup: Cleanup): Promise<void> {
  cleanup.add('removing netns', () => s.network.removeNetns(pod.id));
  await s.network.createNetns(pod.id, pod.record.config.namespaces.user);
  cleanup.add('tearing down the pod network', () => s.network.tearDown(podNetworkRequest(pod.record)));
}

/** The CNI ADD, then /etc/hosts with the IPs. The IPs are returned, for the created state. */
async function setUpPodNetwork(s: PodSetup, rec: SandboxRecord): Promise<PodIps> {
  const net = await s.network.setUp(podNetworkRequest(rec));
  await writeHosts(rec.paths, rec.config.hostname, [net.ip, ...net.additionalIps].filter(Boolean));
  return { ip: net.ip, additionalIps: net.additionalIps };
}

/** The pod cgroup with its limits (S12), the infra spec and the runtime's root: what the infra's create needs. */
async function prepareInfra(s: PodSetup, rec: SandboxRecord, driver: RuntimeDriver, limits: PodResources): Promise<void> {
  await s.cgroups.create(rec.podCgroup, limits);
  await writeInfraSpec(s, rec, driver);
  await driver.ensureRoot();
}

/** The infra container's OCI spec, in its bundle. */
async function writeInfraSpec(s: PodSetup, rec: SandboxRecord, driver: RuntimeDriver): Promise<void> {
  const { config, paths } = rec;
  const catatonit = s.catatonit();
  if (catatonit === undefined) throw new FailedPreconditionError(`catatonit binary "${s.config.catatonit_path}" not found`);
  const spec = sandboxSpec({
    id: rec.id,
    hostname: config.hostname,
    rootfs: paths.rootfs,
    catatonitPath: catatonit,
    namespaces: config.namespaces,
    ...(rec.netnsPath !== undefined ? { netnsPath: rec.netnsPath } : {}),
    ...(config.namespaces.user !== undefined ? { usernsPath: s.network.usernsPath(rec.id) } : {}),
    sysctls: config.sysctls,
    cgroupsPath: rec.infraCgroup,
    podCgroup: rec.podCgroup,
    // S14: runsc sets the pod's shared volumes up from the sandbox spec's hints.
    annotations: config.annotations,
    mountHintAnnotations: mountHintAnnotations(rec.mountHints ?? []),
    oomScoreAdj: s.infraOomScoreAdj(),
    runtimeType: driver.type,
    // The port-forward relay's busybox, for handlers that relay (port-forward-relay.ts).
    ...(relayBinaryFor(driver) !== undefined ? { relayBinaryPath: relayBinaryFor(driver)! } : {}),
  });
  await fs.writeFile(path.join(paths.bundle, 'config.json'), JSON.stringify(spec, null, 1));
}

/**
 * Whether the infra's create may run before the pod's interfaces exist: the runtime only
 * joins the pinned netns at create (runc), and no pod sysctl acts on the network (a
 * net.* sysctl set before the ADD could name an interface not there yet, or change the
 * defaults the new interface takes). runsc sets its network up at create: it waits.
 */
function createsBeforeNetwork(driver: RuntimeDriver, config: RunPodInput): boolean {
  if (Object.keys(config.sysctls).some((k) => k.startsWith('net.') || k.startsWith('net/'))) return false;
  return driver.features.podNetworkAfterCreate;
}

/** The infra process as created: its PID and start time (its identity, infra-process.ts); no conmon. */
interface MadeInfra extends MadeProcess {
  pidStartTicks: number;
}

/**
 * The infra container created with the runtime directly, without a conmon (issue 13, as
 * CRI-O's drop_infra_ctr spares the infra its monitor): the infra has no CRI-visible
 * stdio or exit code, so nothing needs to keep its output or wait for it; the daemon
 * watches it by pidfd (PodManager) and knows it by its start time. Its stdio is
 * /dev/null; the runtime's own messages go to a log beside the pid file (runtime-cli.ts).
 */
async function createInfra(s: PodSetup, pod: PodSandbox, driver: RuntimeDriver, cleanup: Cleanup): Promise<MadeInfra> {
  const { id, paths } = pod.record;
  cleanup.add('deleting the infra container', () => destroyInfra(pod.record, driver, s.log));
  await driver.create(id, paths.bundle, paths.infraPidFile);
  const pid = Number((await fs.readFile(paths.infraPidFile, 'utf8')).trim());
  // Read while the created infra waits for its start: its PID cannot be another's yet.
  const pidStartTicks = processStartTicks(pid);
  if (pidStartTicks === undefined) throw new InternalError(`creating container "${id}": the infra process ${pid} ended at its create`);
  return { pid, conmonPid: 0, pidStartTicks };
}

/**
 * The created state (the processes and the IPs the ADD gave, one write) and the
 * runtime's start, at once: a crash before that write leaves a creating record whose
 * undo asks the runtime for the infra (pod-recovery.ts), started or not. Then running.
 */
async function startInfra(pod: PodSandbox, driver: RuntimeDriver, made: MadeInfra, ips: PodIps | undefined): Promise<void> {
  const created = (d: SandboxRecord): void => {
    d.pid = made.pid;
    d.pidStartTicks = made.pidStartTicks;
    // 0: no infra conmon (sandbox.ts).
    d.conmonPid = made.conmonPid;
    if (ips !== undefined) Object.assign(d, ips);
  };
  // One write for created and running (issue 13: a durable save fewer per pod). A crash
  // before it leaves the record creating, whose recovery asks the runtime for the infra
  // and removes it, as after a crash during the create.
  await driver.start(pod.id);
  await pod.updateLocked(RUN, ['creating'], created, { via: 'created', viaEvent: 'CONTAINER_CREATED_EVENT', to: 'running', event: 'CONTAINER_STARTED_EVENT' });
}

/**
 * The infra's oom_score_adj: INFRA_OOM_SCORE_ADJ, but never below our own score
 * without CAP_SYS_RESOURCE (the runtime's write would fail with EACCES: measured here).
 */
export function infraOomScoreAdj(): number {
  try {
    const status = fsSync.readFileSync('/proc/self/status', 'utf8');
    if (hasCapability(status, CAP_SYS_RESOURCE_BIT)) return INFRA_OOM_SCORE_ADJ;
    const own = Number(fsSync.readFileSync('/proc/self/oom_score_adj', 'utf8').trim());
    return Math.max(INFRA_OOM_SCORE_ADJ, Number.isInteger(own) ? own : 0);
  } catch {
    return INFRA_OOM_SCORE_ADJ;
  }
}
