// Pod recovery at start: the sandbox books reconciled with what the runtimes and the
// network hold after a daemon restart (or crash). Nothing known is deleted silently;
// what has no metadata is released (STYLE.md §6). A pod whose meta.json does not load
// is known too: kept as `unknown`, listed, untouched, until StopPodSandbox and
// RemovePodSandbox take it away (as containerd keeps a sandbox it cannot load).
import fs from 'node:fs/promises';
import path from 'node:path';
import type { LoadFailure } from '../store/metadata-store.js';
import { podPaths, removePodFiles } from './pod-files.js';
import { unmountPodMounts } from '../storage/pod-mounts.js';
import { removePodLocked, type PodTeardown } from './pod-destroy.js';
import { nameKey, unknownSandboxRecord, type SandboxRecord } from './sandbox.js';
import type { PodSandbox } from '../store/cell-types.js';

/** What recovery touches: the teardown's parts, the pods' cells and the state dir. */
export interface PodRecovery extends PodTeardown {
  cell: (id: string) => PodSandbox;
  stateDir: string;
  /** The cgroup pods get their own cgroup under (cgroup_root + default_cgroup_parent). */
  defaultCgroupParent: string;
}

/**
 * Reconciles metadata with the runtimes and the network at start: a pod whose infra
 * died while the daemon was down becomes NOTREADY; a half-made pod (creating/created)
 * is undone completely; netns and CNI attachments without metadata are released.
 */
export async function recoverPods(r: PodRecovery): Promise<void> {
  const { records, failures } = await r.store.loadAll();
  for (const f of failures) {
    if (f.kind === 'missing') {
      r.log.warn({ podSandboxId: f.id, reason: f.reason }, 'sandbox metadata missing; left on disk for inspection');
      continue;
    }
    await keepUnreadable(r, f).catch((e: unknown) => r.log.error({ err: e, podSandboxId: f.id }, 'keeping an unreadable sandbox'));
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
          const reason = driver
            ? `the infra container was ${st?.status ?? 'gone'} at restart`
            : `runtime handler "${rec.runtimeHandler}" is no longer configured`;
          const notReady = (d: SandboxRecord): void => {
            d.reason = reason;
          };
          await r.cell(rec.id).update('recover', ['running'], notReady, { to: 'stopped' });
          log.warn({ reason }, 'pod sandbox not ready after restart');
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
    .cleanupLeftovers(
      known,
      r.store.list().flatMap((o) => (o.mountHints ?? []).map((h) => h.source)),
    )
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

/**
 * Keeps a pod whose meta.json does not load as `unknown` (in memory; the file stays as
 * it is): only reads what stop and remove will need, from the runtimes (which one
 * knows the infra, its pid and cgroup), the network (netns, attachment) and the paths.
 */
async function keepUnreadable(r: PodRecovery, f: LoadFailure): Promise<void> {
  const paths = podPaths(r.stateDir, f.id, false);
  let runtimeHandler = '';
  let pid = 0;
  for (const [name, driver] of r.runtimes) {
    const st = await driver.state(f.id).catch(() => undefined);
    if (st === undefined) continue;
    runtimeHandler = name;
    if (st.status !== 'stopped') pid = st.pid;
    break;
  }
  const base = `sandlot-${f.id}`;
  const infraCgroup = (pid > 0 ? await cgroupNamed(pid, base) : undefined) ?? path.join(r.defaultCgroupParent, `pod-${f.id}`, base);
  // Only a pod of an earlier version has an infra conmon (its pid file); a pod of this one has none (0).
  const conmonPid = Number((await fs.readFile(paths.conmonPidFile, 'utf8').catch(() => '')).trim());
  const pinned = (await r.network.listPinned()).includes(f.id);
  const attached = (await r.network.listAttached()).includes(f.id);
  const rec = unknownSandboxRecord(
    f.id,
    f.reason,
    {
      runtimeHandler,
      pid,
      conmonPid: Number.isInteger(conmonPid) && conmonPid > 0 ? conmonPid : 0,
      infraCgroup,
      netnsPath: pinned || attached ? path.join(r.stateDir, 'netns', f.id) : undefined,
      networkUp: attached,
      paths,
    },
    f.parsed,
  );
  r.cell(f.id).keepUnreadable(rec);
  r.log.error(
    { podSandboxId: f.id, reason: f.reason, handler: runtimeHandler, pid },
    'sandbox metadata not loadable: kept as UNKNOWN, untouched; only StopPodSandbox and RemovePodSandbox act on it',
  );
}

/** The cgroup path of `pid` whose last part is `base` (any hierarchy), if there is one. */
async function cgroupNamed(pid: number, base: string): Promise<string | undefined> {
  const text = await fs.readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const cg = line.split(':').slice(2).join(':');
    if (path.basename(cg) === base) return cg;
  }
  return undefined;
}

/** A pod a crash left creating or created: stopped (its infra killed, its network down), then removed. */
async function removeHalfMade(r: PodRecovery, rec: SandboxRecord): Promise<void> {
  const pod = r.cell(rec.id);
  await pod.locked(() => removePodLocked(r, pod));
}
