// Container recovery at start: the books reconciled with the monitors' exit files and
// the runtimes after a daemon restart (or crash). Metadata that does not load stays on
// disk for inspection (STYLE.md §6); only runtime files without any metadata go.
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { KeyedMutex } from '../util/mutex.js';
import { changeState, containerNameKey } from './container.js';
import { removeContainerLocked, type ContainerTeardown } from './container-destroy.js';
import { noteExitLocked, UNKNOWN_EXIT_CODE } from './container-exit-record.js';
import { removeExitFile } from './container-exits.js';
import type { ContainerMonitor } from './container-monitor.js';

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
  const { records, failures } = await r.store.loadAll();
  for (const f of failures) {
    r.log.warn({ containerId: f.id, reason: f.reason }, 'container metadata not loadable; left on disk for inspection');
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
        }
      });
    } catch (e) {
      log.error({ err: e }, 'recovering container');
    }
  }
  const known = new Set(r.store.list().map((o) => o.id));
  for (const id of await fs.readdir(path.join(r.stateDir, 'containers')).catch(() => [] as string[])) {
    if (known.has(id) || failures.some((f) => f.id === id) || !/^[0-9a-f]{64}$/.test(id)) continue;
    await fs.rm(path.join(r.stateDir, 'containers', id), { recursive: true, force: true }).catch(() => undefined);
    await removeExitFile(r.exitDir, id).catch(() => undefined);
    await fs.rm(path.join(r.socketDir, id), { force: true }).catch(() => undefined);
  }
}
