// Container recovery at start: the books reconciled with the monitors' exit files and
// the runtimes after a daemon restart (or crash). Metadata that does not load stays on
// disk for inspection (STYLE.md §6); only runtime files without any metadata go.
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { KeyedMutex } from '../../util/mutex.js';
import { changeState, containerNameKey, nsString } from './container.js';
import { removeContainerLocked, type ContainerTeardown } from './container-destroy.js';
import { noteExitLocked, UNKNOWN_EXIT_CODE } from './exit-books.js';
import { removeExitFile } from './container-exits.js';
import type { ContainerMonitor } from './container-monitor.js';
import type { ContainerRecord } from './container.js';
import { sweepExecScratch } from '../io/exec-scratch-sweep.js';
import { processStartTimeMs } from './process-start-time.js';

/** What recovery touches: the teardown's parts, the containers' mutexes and the state dir. */
export interface ContainerRecovery extends ContainerTeardown {
  locks: KeyedMutex;
  stateDir: string;
}

/**
 * Reconciles metadata with the monitors' exit files and the runtimes at start: a
 * running container stays RUNNING; one that exited while the daemon was down is EXITED
 * with its true exit code and finish time; a half-created one is undone; runtime files
 * without metadata are removed.
 */
export async function recoverContainers(r: ContainerRecovery): Promise<void> {
  await fs.mkdir(r.exitDir, { recursive: true, mode: 0o700 });
  await fs.mkdir(r.socketDir, { recursive: true, mode: 0o700 });
  const loaded = await r.store.loadAll();
  const { records } = loaded;
  const failures: typeof loaded.failures = [];
  for (const f of loaded.failures) {
    if (await removeIfNeverWritten(r, f.id)) continue;
    r.log.warn({ containerId: f.id, reason: f.reason }, 'container metadata not loadable; left on disk for inspection');
    failures.push(f);
  }
  for (const rec of records) {
    const log = r.log.child({ containerId: rec.id, podSandboxId: rec.podId });
    try {
      if (rec.state === 'creating') {
        log.warn('undoing a container left half-created by a crash');
        await r.locks.runExclusive(rec.id, async () => {
          changeState(rec, 'stopped');
          rec.reason = 'Error';
          rec.exitCode = UNKNOWN_EXIT_CODE;
          await removeContainerLocked(r, rec);
        });
        continue;
      }
      r.names.restore(containerNameKey(rec.podId, rec.metadata), rec.id, rec.configHash);
      if (rec.state === 'stopped') continue;
      await r.locks.runExclusive(rec.id, async () => {
        if (fsSync.existsSync(rec.paths.exitFile)) {
          await noteExitLocked(r, rec);
          log.info({ exitCode: rec.exitCode }, 'container exited while the daemon was down');
          return;
        }
        let st: Awaited<ReturnType<ContainerMonitor['state']>>;
        try {
          st = await r.monitor(rec.runtimeHandler).state(rec.id);
        } catch (e) {
          log.warn({ err: e }, 'asking the runtime about a container at restart');
          return;
        }
        if (st === undefined || st.status === 'stopped') {
          // The monitor died too (no exit file): the exit code is lost.
          await noteExitLocked(r, rec);
          log.warn({ runtimeState: st?.status ?? 'gone' }, 'container found stopped without an exit file at restart');
          return;
        }
        if (rec.state === 'created' && (st.status === 'running' || st.status === 'paused')) {
          // The daemon died after the runtime started it but before the state was saved:
          // the runtime's word wins, the workload is running (issue 11 item 2).
          await markStartedLocked(r, rec, st.pid);
          log.warn({ runtimeState: st.status }, 'container started by the runtime before a crash; recorded as running');
        }
      });
    } catch (e) {
      log.error({ err: e }, 'recovering container');
    }
  }
  // Issue 11 item 3: what calls that never completed left (no call has begun yet).
  await sweepExecScratch(path.join(r.stateDir, 'exec'), r.log);
  const known = new Set(r.store.list().map((o) => o.id));
  for (const id of await fs.readdir(path.join(r.stateDir, 'containers')).catch(() => [] as string[])) {
    if (known.has(id) || failures.some((f) => f.id === id) || !/^[0-9a-f]{64}$/.test(id)) continue;
    await fs.rm(path.join(r.stateDir, 'containers', id), { recursive: true, force: true }).catch(() => undefined);
    await removeExitFile(r.exitDir, id).catch(() => undefined);
    await fs.rm(path.join(r.socketDir, id), { force: true }).catch(() => undefined);
  }
}

/**
 * Records a container the runtime reports running as RUNNING, dated by its process's
 * start time (never before its creation), for a start whose save a crash prevented.
 */
export async function markStartedLocked(
  r: Pick<ContainerRecovery, 'store'>,
  rec: ContainerRecord,
  pid: number,
): Promise<void> {
  const started = (await processStartTimeMs(pid)) ?? Date.now();
  const createdMs = Number(BigInt(rec.createdAt) / 1_000_000n);
  changeState(rec, 'running');
  rec.startedAt = nsString(Math.max(started, createdMs));
  rec.startRecovered = true;
  await r.store.save(rec);
}

/**
 * A container dir without meta.json holds only the store's lock and temp files when a
 * crash hit CreateContainer before its first save (nothing else is made before it):
 * nothing to inspect, so it goes. Anything else in it stays for inspection.
 */
async function removeIfNeverWritten(r: Pick<ContainerRecovery, 'store' | 'log'>, id: string): Promise<boolean> {
  const dir = path.join(r.store.dir, id);
  const entries = await fs.readdir(dir).catch(() => undefined);
  if (entries === undefined || fsSync.existsSync(r.store.metaPath(id))) return false;
  if (!entries.every((f) => f === '.lock' || f.startsWith('meta.json.tmp'))) return false;
  await r.store.delete(id);
  const gone = !fsSync.existsSync(dir);
  if (gone) r.log.warn({ containerId: id }, 'removed the dir of a container a crash left before its first save');
  return gone;
}
