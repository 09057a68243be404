// Issue 11 item 12 (S5): root_dir and state_dir reached through a symlink work (resolved
// to real paths at start), and a RunPodSandbox that fails after the pod's shm is mounted
// undoes everything: no mount, no pod dir, no metadata.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDaemon, type TestDaemon } from '../../helpers/daemon.js';

const mountsUnder = (dir: string): string[] =>
  fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((p) => p === dir || p.startsWith(`${dir}/`));

const listDir = (dir: string): string[] => (fs.existsSync(dir) ? fs.readdirSync(dir) : []);

function podConfig(name: string): Record<string, unknown> {
  return {
    metadata: { name, uid: `uid-${name}`, namespace: 'sandlot-undo-test', attempt: 0 },
    hostname: name,
    linux: { security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
  };
}

/** A test dir whose root and state are symlinks to real dirs beside them. */
function symlinkedDirs(): { dir: string; config: Record<string, unknown> } {
  // Removed with the daemon's dir by TestDaemon.cleanup (after its mounts are gone).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-symlink-'));
  for (const d of ['root', 'state']) {
    fs.mkdirSync(path.join(dir, `${d}-real`), { mode: 0o700 });
    fs.symlinkSync(path.join(dir, `${d}-real`), path.join(dir, `${d}-link`));
  }
  return { dir, config: { root_dir: path.join(dir, 'root-link'), state_dir: path.join(dir, 'state-link') } };
}

async function daemonFor(t: { after(fn: () => Promise<void>): void }, dir: string, config: Record<string, unknown>): Promise<TestDaemon> {
  const d = await startDaemon({ dir, config });
  t.after(() => d.cleanup());
  return d;
}

for (const handler of ['runc', 'runsc']) {
  test(`S5 (${handler}): with root_dir and state_dir behind symlinks a pod runs and its removal leaves no mount`, { timeout: 300_000 }, async (t) => {
    const { dir, config } = symlinkedDirs();
    const d = await daemonFor(t, dir, config);
    const r = await d.runtime('RunPodSandbox', { config: podConfig(`link-${handler}`), runtime_handler: handler }, 120_000);
    const id = String(r.pod_sandbox_id);
    const st = (await d.runtime('PodSandboxStatus', { pod_sandbox_id: id })).status as { state: string };
    assert.equal(st.state, 'SANDBOX_READY');
    await d.runtime('RemovePodSandbox', { pod_sandbox_id: id }, 120_000);
    const skeleton = path.join(fs.realpathSync(dir), 'state-real', 'netns');
    assert.deepEqual(
      mountsUnder(fs.realpathSync(dir)).filter((p) => p !== skeleton),
      [],
    );
    assert.deepEqual(listDir(path.join(dir, 'state-real', 'pods')), []);
  });
}

test('S5: a RunPodSandbox failing after the shm mount (no catatonit) undoes everything and names the failure', { timeout: 300_000 }, async (t) => {
  const { dir, config } = symlinkedDirs();
  const d = await daemonFor(t, dir, { ...config, catatonit_path: path.join(dir, 'no-catatonit') });
  const err = await d.runtime('RunPodSandbox', { config: podConfig('undo') }, 120_000).then(
    () => assert.fail('RunPodSandbox succeeded without catatonit'),
    (e: { code: number; details: string }) => e,
  );
  assert.equal(err.code, 9, err.details); // FAILED_PRECONDITION
  assert.match(err.details, /catatonit/);
  assert.doesNotMatch(err.details, /EBUSY|undoing/, 'every undo step succeeded');
  // The netns dir is the daemon's own bind mount (its skeleton, released at shutdown).
  const skeleton = path.join(fs.realpathSync(dir), 'state-real', 'netns');
  assert.deepEqual(
    mountsUnder(fs.realpathSync(dir)).filter((p) => p !== skeleton),
    [],
    'no shm or other mount stays',
  );
  assert.deepEqual(listDir(path.join(dir, 'state-real', 'pods')), [], 'no pod dir stays');
  assert.deepEqual(listDir(path.join(dir, 'root-real', 'pods')), [], 'no pod metadata stays');
  const list = await d.runtime('ListPodSandbox', {});
  assert.deepEqual(list.items ?? [], []);
});
