// CreateContainer's steps, in order, each registering its undo: metadata first (S5),
// the bundle dir, the rootfs from the image, the OCI spec (S1: a subcontainer of its
// pod; S14 mount hints; S10 score), S15 filestores and S12 cgroup under runsc, then the
// container under its monitor. A failure undoes them all and names what it was doing.
// What a step makes is committed through the container's cell (store/cell.ts) before
// the next begins; an undo reads the committed record.
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  buildContainerSpec,
  terminationMessageHostPath,
  type ContainerSpecExtensions,
  type CriContainerConfig,
  type SpecLookups,
} from '../../oci/spec-container.js';
import type { RuntimeDriver } from '../../oci/runtime.js';
import type { OciSpec } from '../../oci/spec-common.js';
import { prepareMounts, preparedMountsDir } from '../../oci/prepared-mounts.js';
import { rootfsIdmapOf } from '../../oci/user-namespace.js';
import { Cleanup } from '../../util/cleanup.js';
import { normalizeStopSignal, nsString, type ContainerPaths, type ContainerRecord } from './container.js';
import type { Container } from '../store/cell-types.js';
import { beginCreate } from '../store/cell.js';
import { filestorePlanFor, removePreparedMounts, removeRuntimeFiles, type ContainerTeardown } from './container-destroy.js';
import { destroyProcess } from './container-runtime-delete.js';
import { daemonOomFloor, lastCap, podFacts } from './container-spec-input.js';
import { bindPodTmpfs, runscTmpfsHintMounts } from '../storage/pod-mounts.js';
import type { SandboxRecord } from '../pod/sandbox.js';

/** The action CreateContainer's guards name. */
const CREATE = 'create';

/** The validated CreateContainer request. */
export interface CreateContainerInput {
  podId: string;
  config: CriContainerConfig & { metadata: { name: string; attempt?: number }; image: { image: string } };
}

/** The objects CreateContainer uses: the teardown's (to undo) and the spec lookups. */
export interface ContainerSetup extends ContainerTeardown {
  lookups: SpecLookups;
  /** S20 CDI devices and S6 hooks from the node's files. */
  specExtensions: ContainerSpecExtensions;
}

/**
 * CreateContainer with the pod's and the new container's mutexes held; a failure undoes
 * every step. Each step commits what it made through the container's cell before the
 * next begins, and each undo reads the committed record when it runs.
 */
export async function createContainerLocked(
  c: ContainerSetup,
  container: Container,
  pod: SandboxRecord,
  input: CreateContainerInput,
  metadata: { name: string; attempt: number },
  configHash: string,
): Promise<string> {
  const started = Date.now();
  const { id } = container;
  const log = c.log.child({ podSandboxId: pod.id, containerId: id });
  // The pod may have been stopped while this create waited for its lock.
  c.pods.requireRunning(pod.id, 'create a container in');
  const driver = c.pods.driver(pod.runtimeHandler);
  const image = c.images.resolve(input.config.image.image);
  const cleanup = new Cleanup();
  try {
    // rootfsPrepared from the first write: the rootfs is made next, and its removal is
    // idempotent, so a crash at any later point leaves recovery something to undo (S5).
    const rec = newContainerRecord(id, pod, input.config, metadata, configHash, driver, image, c.monitors.paths(id));
    await beginCreate(container, rec, cleanup);
    cleanup.add('removing runtime files', () => removeRuntimeFiles(c.monitors, rec));
    await fs.mkdir(rec.paths.bundle, { recursive: true, mode: 0o700 });
    cleanup.add('removing the rootfs', () => c.images.removeRootfs(id));
    // S19: in a pod user namespace the layers are idmapped through it, never chowned.
    const user = pod.config.namespaces.user;
    const rootfs = await c.images.prepareRootfs(image.id, id, user ? rootfsIdmapOf(user, pod.pid) : undefined);
    // Recursive read-only binds and image volumes, made by the daemon (prepared-mounts.ts).
    cleanup.add('removing prepared mounts', () => removePreparedMounts(c, rec));
    const prep = {
      dir: preparedMountsDir(rec.paths.dir),
      exists: (p: string) => c.lookups.exists(p),
      imageVolume: (ref: string, i: number) => c.images.prepareImageVolume(ref, id, i),
      ...(user ? { userns: { path: `/proc/${pod.pid}/ns/user`, ...user } } : {}),
    };
    const mounts = await prepareMounts(input.config.mounts ?? [], prep);
    const written = await writeContainerSpec(c, container, pod, { ...input.config, mounts }, driver, image, rootfs.path, cleanup);
    await createUnderMonitor(c, container, pod, driver, cleanup, written);
    cleanup.release();
    log.info({ durationMs: Date.now() - started, handler: driver.name, image: rec.image }, 'container created');
    return id;
  } catch (e) {
    throw await cleanup.undoAfter(e, `creating container "${metadata.name}" in sandbox "${pod.id}"`, log);
  }
}

type ResolvedImage = ReturnType<ContainerSetup['images']['resolve']>;

/** The record of a container about to be made (state creating), from the request, its pod and image. */
function newContainerRecord(
  id: string,
  pod: SandboxRecord,
  config: CreateContainerInput['config'],
  metadata: { name: string; attempt: number },
  configHash: string,
  driver: RuntimeDriver,
  image: ResolvedImage,
  paths: ContainerPaths,
): ContainerRecord {
  const logPath = pod.config.logDirectory !== '' && (config.log_path ?? '') !== '' ? path.join(pod.config.logDirectory, config.log_path!) : '';
  return {
    version: 1,
    id,
    podId: pod.id,
    state: 'creating',
    metadata,
    configHash,
    createdAt: nsString(Date.now()),
    startedAt: '0',
    finishedAt: '0',
    exitCode: 0,
    reason: '',
    message: '',
    image: config.image.image,
    imageId: image.id,
    labels: { ...(config.labels ?? {}) },
    annotations: { ...(config.annotations ?? {}) },
    logPath,
    monitorLogPath: logPath !== '' ? logPath : path.join(paths.dir, 'container.log'),
    mounts: [...(config.mounts ?? [])],
    resources: { ...(config.linux?.resources ?? {}) },
    oomScoreAdj: undefined,
    user: { uid: 0, gid: 0, supplementalGroups: [] },
    stopSignal: normalizeStopSignal(image.config.StopSignal),
    runtimeHandler: driver.name,
    runtimeType: driver.type,
    cgroupPath: path.posix.join(pod.podCgroup, id),
    terminationMessagePath: terminationMessageHostPath(config),
    tty: config.tty === true,
    stdin: config.stdin === true,
    stdinOnce: config.stdin_once === true,
    pid: 0,
    conmonPid: 0,
    paths,
    rootfsPrepared: true,
  };
}

/** The spec written to the bundle, and what the record learns from it (committed with the created state). */
interface WrittenSpec {
  spec: OciSpec;
  learned: (d: ContainerRecord) => void;
}

/** The OCI spec (S1, S14, S10) in the bundle and the S15 filestores it needs; returns what the record learns from it. */
async function writeContainerSpec(
  c: ContainerSetup,
  container: Container,
  pod: SandboxRecord,
  config: CreateContainerInput['config'],
  driver: RuntimeDriver,
  image: ResolvedImage,
  rootfs: string,
  cleanup: Cleanup,
): Promise<WrittenSpec> {
  const rec = container.record;
  // The OCI spec from the CRI config, the image and the pod (oci/spec-container.ts).
  const spec = await buildContainerSpec({
    containerId: rec.id,
    // S14 (runc): sources of pod-shared tmpfs hints are bound from the pod's tmpfs.
    config: driver.features.podSharedTmpfs === 'host' ? { ...config, mounts: bindPodTmpfs(config.mounts ?? [], pod.paths.dir, pod.mountHints ?? []) } : config,
    image: image.config,
    imageName: config.image.image,
    pod: podFacts(pod, driver),
    rootfs,
    minOomScoreAdj: daemonOomFloor(),
    lastCap: lastCap(),
    // Privileged / add ALL: what the daemon holds and the handler's runtime takes.
    ...(driver.capabilities !== undefined ? { availableCapabilities: driver.capabilities } : {}),
    handler: driver.name,
    lookups: c.lookups,
    extensions: c.specExtensions,
  });
  // S14 (runsc): mounts of pod-shared tmpfs volumes are tmpfs in the sandbox.
  if (driver.features.podSharedTmpfs === 'sandbox') spec.mounts = runscTmpfsHintMounts(spec.mounts, pod.mountHints ?? []);
  if (driver.features.filestores) {
    // S15: the self filestores of this container (none with a runsc that lacks `self`).
    const plan = filestorePlanFor(rec, pod, driver, rootfs, spec.root.readonly === true);
    cleanup.add('removing filestores', () => c.filestores.removeForContainer(pod.id, plan));
    await c.filestores.create(pod.id, plan);
  }
  // The cgroup the runtime will make must be in the record before it is made (recovery
  // removes it); it is the record's own unless an extension moved it.
  const cgroupPath = spec.linux.cgroupsPath ?? rec.cgroupPath;
  if (cgroupPath !== rec.cgroupPath) {
    await container.updateLocked(CREATE, ['creating'], (d) => {
      d.cgroupPath = cgroupPath;
    });
  }
  await fs.writeFile(rec.paths.spec, JSON.stringify(spec, null, 1));
  const requested = Number(config.linux?.resources?.oom_score_adj ?? 0);
  const ownPidNamespace = spec.linux.namespaces.some((n) => n.type === 'pid' && (n.path ?? '') === '');
  const learned = (d: ContainerRecord): void => {
    if (driver.features.hostPidNamespaces && ownPidNamespace) d.exitEndsAll = true;
    // proto3 cannot tell 0 from unset; S10 counts only containers that set a value.
    d.oomScoreAdj = requested !== 0 ? spec.process.oomScoreAdj : undefined;
    d.user = { uid: spec.process.user.uid, gid: spec.process.user.gid, supplementalGroups: spec.process.user.additionalGids ?? [] };
  };
  return { spec, learned };
}

/** The S12 cgroup, then the container under its monitor (→ created, committed, published). */
async function createUnderMonitor(
  c: ContainerSetup,
  container: Container,
  pod: SandboxRecord,
  driver: RuntimeDriver,
  cleanup: Cleanup,
  { spec, learned }: WrittenSpec,
): Promise<void> {
  const rec = container.record;
  const monitor = c.monitors.of(pod.runtimeHandler);
  cleanup.add('removing the container cgroup', () => c.cgroups.remove(rec.cgroupPath));
  // S12: under runsc the container runs inside the sandbox; its cgroup stays empty but
  // exists in every hierarchy, so cAdvisor and the kubelet find the container.
  if (driver.features.emptyContainerCgroup) await c.cgroups.create(rec.cgroupPath, {});
  cleanup.add('deleting the container', () => destroyProcess(container.record, monitor));
  const { metadata } = rec;
  const made = await monitor.create({
    id: rec.id,
    name: `${pod.config.metadata.namespace}_${pod.config.metadata.name}_${metadata.name}_${metadata.attempt}`,
    paths: rec.paths,
    logPath: rec.monitorLogPath,
    terminal: rec.tty,
    stdin: rec.stdin,
    stdinOnce: rec.stdinOnce,
    spec,
  });
  // One write for the created state, the process and what the spec told (commitCreated's, plus the spec's facts).
  const created = (d: ContainerRecord): void => {
    learned(d);
    d.pid = made.pid;
    d.conmonPid = made.conmonPid;
  };
  await container.updateLocked(CREATE, ['creating'], created, { to: 'created', event: 'CONTAINER_CREATED_EVENT' });
}
