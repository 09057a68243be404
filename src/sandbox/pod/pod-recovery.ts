// Pod recovery at start: the sandbox books reconciled with what the runtimes and the
// network hold after a daemon restart (or crash). Nothing known is deleted silently;
// what has no metadata is released (STYLE.md §6).
import fs from 'node:fs/promises';
import path from 'node:path';
import type { KeyedMutex } from '../../util/mutex.js';
import { podPaths, removePodFiles } from './pod-files.js';
import { unmountPodMounts } from '../storage/pod-mounts.js';
import { removePodLocked, type PodTeardown } from './pod-destroy.js';
import { changeState, nameKey, type SandboxRecord } from './sandbox.js';

/** What recovery touches: the teardown's parts, the pods' mutexes and the state dir. */
export interface PodRecovery extends PodTeardown {
  locks: KeyedMutex;
  stateDir: string;
}

/**
 * Reconciles metadata with the runtimes and the network at start: a pod whose infra
 * died while the daemon was down becomes NOTREADY; a half-made pod (creating/created)
 * is undone completely; netns and CNI attachments without metadata are released.
 */
export async function recoverPods(r: PodRecovery): Promise<void> {
  const { records, failures } = await r.store.loadAll();
  for (const f of failures) {
    r.log.warn({ podSandboxId: f.id, reason: f.reason }, 'sandbox metadata not loadable; left on disk for inspection');
  }
  for (const rec of records) {
    const log = r.log.child({ podSandboxId: rec.id });
    const driver = r.runtimes.get(rec.runtimeHandler);
    try {
      if (rec.state === 'creating' || rec.state === 'created') {
        log.warn({ state: rec.state }, 'undoing a pod sandbox left half-made by a crash');
        await removeHalfMade(r, rec);
        continue;
      }
      r.names.restore(nameKey(rec.config.metadata), rec.id, rec.configHash);
      if (rec.state === 'running') {
        const st = driver ? await driver.state(rec.id) : undefined;
        if (st?.status !== 'running') {
          changeState(rec, 'stopped');
          rec.reason = driver ? `the infra container was ${st?.status ?? 'gone'} at restart` : `runtime handler "${rec.runtimeHandler}" is no longer configured`;
          await r.store.save(rec);
          log.warn({ reason: rec.reason }, 'pod sandbox not ready after restart');
        }
      }
    } catch (e) {
      log.error({ err: e }, 'recovering pod sandbox');
    }
  }
  const known = new Set(r.store.list().map((o) => o.id));
  const orphans = new Set([...(await r.network.listAttached()), ...(await r.network.listPinned())].filter((id) => !known.has(id)));
  for (const id of orphans) {
    try {
      const netnsPath = path.join(r.stateDir, 'netns', id);
      await r.network.tearDown({ podId: id, name: '', namespace: '', uid: '', netnsPath, portMappings: [] });
      await r.network.removeNetns(id);
      r.log.warn({ podSandboxId: id }, 'released the network of a pod without metadata');
    } catch (e) {
      r.log.error({ err: e, podSandboxId: id }, 'releasing the network of a pod without metadata');
    }
  }
  // S15: self filestores of pods no longer known, in the sources of the pods' hints.
  await r.filestores
    .cleanupLeftovers(known, r.store.list().flatMap((o) => (o.mountHints ?? []).map((h) => h.source)))
    .catch((e: unknown) => r.log.error({ err: e }, 'removing leftover filestores'));
  // Pod state dirs without metadata (a crash before the first metadata write cannot
  // leave one, but a crash inside remove can).
  const podsDir = path.join(r.stateDir, 'pods');
  for (const id of await fs.readdir(podsDir).catch(() => [] as string[])) {
    if (known.has(id) || !/^[0-9a-f]{64}$/.test(id)) continue;
    const orphan = podPaths(r.stateDir, id, false);
    await unmountPodMounts(orphan.dir)
      .then(() => removePodFiles(orphan))
      .catch((e: unknown) => r.log.error({ err: e, podSandboxId: id }, 'removing files of a pod without metadata'));
  }
}

async function removeHalfMade(r: PodRecovery, rec: SandboxRecord): Promise<void> {
  changeState(rec, 'stopped');
  await r.locks.runExclusive(rec.id, () => removePodLocked(r, rec));
}
