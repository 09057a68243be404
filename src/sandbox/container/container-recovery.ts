// Container recovery at start: the books reconciled with the monitors' exit files and
// the runtimes after a daemon restart (or crash). Metadata that does not load stays on
// disk for inspection (STYLE.md §6), and its container is kept as `unknown` (listed as
// CONTAINER_UNKNOWN, untouched; only RemoveContainer acts on it, as containerd keeps a
// container it cannot load); only runtime files without any metadata go.
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { ANNOTATION_CONTAINER_NAME, ANNOTATION_IMAGE_NAME, ANNOTATION_SANDBOX_ID } from '../../oci/spec-common.js';
import type { LoadFailure } from '../store/metadata-store.js';
import { containerNameKey, nsString, unknownContainerRecord } from './container.js';
import type { Container } from '../store/cell-types.js';
import { removeContainerLocked, type ContainerTeardown } from './container-destroy.js';
import type { ContainerStore } from '../store/container-store.js';
import { removeExitFile } from './container-exits.js';
import type { ContainerMonitor } from './container-monitor.js';
import type { ContainerRecord } from './container.js';
import { sweepExecScratch } from '../io/exec-scratch-sweep.js';
import { processStartTimeMs } from './process-start-time.js';
import { readPid } from './container-spec-input.js';

/** What recovery uses: the teardown's objects, the store, the containers' cells and the state dir. */
export interface ContainerRecovery extends ContainerTeardown {
  store: ContainerStore;
  cell: (id: string) => Container;
  stateDir: string;
  /** The configured runtime handlers, to ask which one knows such a container. */
  handlers: string[];
}

/**
 * Reconciles metadata with the monitors' exit files and the runtimes at start: a
 * running container stays RUNNING; one that exited while the daemon was down is EXITED
 * with its true exit code and finish time; a half-created one is undone; runtime files
 * without metadata are removed.
 */
export async function recoverContainers(r: ContainerRecovery): Promise<void> {
  await fs.mkdir(r.monitors.exitDir, { recursive: true, mode: 0o700 });
  await fs.mkdir(r.monitors.socketDir, { recursive: true, mode: 0o700 });
  const { records, failures } = await r.store.loadAll();
  const leftOnDisk = await keepFailures(r, failures);
  for (const rec of records) {
    const log = r.log.child({ containerId: rec.id, podSandboxId: rec.podId });
    try {
      await recoverOne(r, rec, log);
    } catch (e) {
      log.error({ err: e }, 'recovering container');
    }
  }
  // Issue 11 item 3: what calls that never completed left (no call has begun yet).
  await sweepExecScratch(path.join(r.stateDir, 'exec'), r.log);
  await removeOrphanFiles(r, leftOnDisk);
}

/**
 * What did not load: a dir a crash left before the first save goes; an unreadable
 * record is kept as unknown; the rest stays on disk (returned, so its files stay too).
 */
async function keepFailures(r: ContainerRecovery, failures: LoadFailure[]): Promise<Set<string>> {
  const leftOnDisk = new Set<string>();
  for (const f of failures) {
    if (await removeIfNeverWritten(r, f.id)) continue;
    if (f.kind === 'unreadable') {
      await keepUnreadable(r, f).catch((e: unknown) => r.log.error({ err: e, containerId: f.id }, 'keeping an unreadable container'));
      continue;
    }
    r.log.warn({ containerId: f.id, reason: f.reason }, 'container metadata not loadable; left on disk for inspection');
    leftOnDisk.add(f.id);
  }
  return leftOnDisk;
}

/** One loaded container: a half-created one is undone, its name restored otherwise, and a live one reconciled. */
async function recoverOne(r: ContainerRecovery, rec: ContainerRecord, log: Logger): Promise<void> {
  const container = r.cell(rec.id);
  if (rec.state === 'creating') {
    log.warn('undoing a container left half-created by a crash');
    await container.locked(() => removeContainerLocked(r, container));
    return;
  }
  r.names.restore(containerNameKey(rec.podId, rec.metadata), rec.id, rec.configHash);
  if (rec.state === 'stopped') return;
  await container.locked(() => reconcileLocked(r, container, log));
}

/** A created or running container against its exit file and its runtime's word. */
async function reconcileLocked(r: ContainerRecovery, container: Container, log: Logger): Promise<void> {
  const rec = container.record;
  if (fsSync.existsSync(rec.paths.exitFile)) {
    const exited = await r.exits.noteLocked(container);
    log.info({ exitCode: exited.exitCode }, 'container exited while the daemon was down');
    return;
  }
  let st: Awaited<ReturnType<ContainerMonitor['state']>>;
  try {
    st = await r.monitors.of(rec.runtimeHandler).state(rec.id);
  } catch (e) {
    log.warn({ err: e }, 'asking the runtime about a container at restart');
    return;
  }
  if (st === undefined || st.status === 'stopped') {
    // The monitor died too (no exit file): the exit code is lost.
    await r.exits.noteLocked(container);
    log.warn({ runtimeState: st?.status ?? 'gone' }, 'container found stopped without an exit file at restart');
    return;
  }
  if (rec.state === 'created' && (st.status === 'running' || st.status === 'paused')) {
    // The daemon died after the runtime started it but before the state was saved:
    // the runtime's word wins, the workload is running (issue 11 item 2).
    await markStartedLocked(container, st.pid);
    log.warn({ runtimeState: st.status }, 'container started by the runtime before a crash; recorded as running');
  }
}

/** Runtime files (state dir, exit file, attach link) of containers without any metadata. */
async function removeOrphanFiles(r: ContainerRecovery, leftOnDisk: Set<string>): Promise<void> {
  const known = new Set(r.store.list().map((o) => o.id));
  for (const id of await fs.readdir(path.join(r.stateDir, 'containers')).catch(() => [] as string[])) {
    if (known.has(id) || leftOnDisk.has(id) || !/^[0-9a-f]{64}$/.test(id)) continue;
    await fs.rm(path.join(r.stateDir, 'containers', id), { recursive: true, force: true }).catch(() => undefined);
    await removeExitFile(r.monitors.exitDir, id).catch(() => undefined);
    await fs.rm(path.join(r.monitors.socketDir, id), { force: true }).catch(() => undefined);
  }
}

/**
 * Records a container the runtime reports running as RUNNING (CONTAINER_STARTED_EVENT),
 * dated by its process's start time (never before its creation), for a start whose
 * save a crash prevented. The caller holds the container's mutex.
 */
export async function markStartedLocked(container: Container, pid: number): Promise<void> {
  const started = (await processStartTimeMs(pid)) ?? Date.now();
  const recovered = (d: ContainerRecord): void => {
    const createdMs = Number(BigInt(d.createdAt) / 1_000_000n);
    d.startedAt = nsString(Math.max(started, createdMs));
    d.startRecovered = true;
  };
  await container.updateLocked('start', ['created'], recovered, { to: 'running', event: 'CONTAINER_STARTED_EVENT' });
}

/**
 * Keeps a container whose meta.json does not load as `unknown` (in memory; the file
 * stays as it is), reading only what the listing and RemoveContainer need: its OCI
 * spec's annotations and cgroup, and which runtime knows it (its pid).
 */
async function keepUnreadable(r: ContainerRecovery, f: LoadFailure): Promise<void> {
  const paths = r.monitors.paths(f.id);
  const spec = JSON.parse(await fs.readFile(paths.spec, 'utf8').catch(() => '{}')) as {
    annotations?: Record<string, string>;
    linux?: { cgroupsPath?: string };
  };
  const a = spec.annotations ?? {};
  const partial = (f.parsed ?? {}) as { runtimeHandler?: unknown; cgroupPath?: unknown };
  let runtimeHandler = typeof partial.runtimeHandler === 'string' && r.handlers.includes(partial.runtimeHandler) ? partial.runtimeHandler : '';
  let pid = 0;
  for (const h of r.handlers) {
    const st = await Promise.resolve()
      .then(() => r.monitors.of(h).state(f.id))
      .catch(() => undefined);
    if (st === undefined) continue;
    runtimeHandler = h;
    if (st.status !== 'stopped') pid = st.pid;
    break;
  }
  const rec = unknownContainerRecord(
    f.id,
    f.reason,
    {
      podId: a[ANNOTATION_SANDBOX_ID] ?? '',
      name: a[ANNOTATION_CONTAINER_NAME] ?? '',
      image: a[ANNOTATION_IMAGE_NAME] ?? '',
      // No handler knows it: removal still asks the first one (deleting what is not there succeeds).
      runtimeHandler: runtimeHandler !== '' ? runtimeHandler : (r.handlers[0] ?? ''),
      cgroupPath: spec.linux?.cgroupsPath ?? (typeof partial.cgroupPath === 'string' ? partial.cgroupPath : ''),
      pid,
      conmonPid: await readPid(paths.conmonPidFile),
      paths,
    },
    f.parsed,
  );
  r.cell(f.id).keepUnreadable(rec);
  r.log.error(
    { containerId: f.id, podSandboxId: rec.podId, reason: f.reason, handler: runtimeHandler, pid },
    'container metadata not loadable: kept as UNKNOWN, untouched; only RemoveContainer acts on it',
  );
}

/**
 * A container dir without meta.json holds only the store's lock and temp files when a
 * crash hit CreateContainer before its first save (nothing else is made before it):
 * nothing to inspect, so it goes. Anything else in it stays for inspection.
 */
async function removeIfNeverWritten(r: Pick<ContainerRecovery, 'store' | 'log' | 'cell'>, id: string): Promise<boolean> {
  const dir = path.join(r.store.dir, id);
  const entries = await fs.readdir(dir).catch(() => undefined);
  if (entries === undefined || fsSync.existsSync(r.store.metaPath(id))) return false;
  if (!entries.every((f) => f === '.lock' || f.startsWith('meta.json.tmp'))) return false;
  await r.cell(id).remove();
  const gone = !fsSync.existsSync(dir);
  if (gone) r.log.warn({ containerId: id }, 'removed the dir of a container a crash left before its first save');
  return gone;
}
