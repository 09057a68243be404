// Recovery at start (a new PodManager over the same dirs, as after a daemon crash): a
// running pod stays READY and its infra was never interrupted; a pod whose infra died
// while "down" is NOTREADY; a half-made pod is undone; a netns without metadata goes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { alive, ipamLeases, isMounted, makePodEnv, podConfig } from './pod-env.js';

async function waitFor(what: string, fn: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test('after a restart: running pods stay READY untouched, a pod whose infra died is NOTREADY, a half-made pod is undone', { timeout: 180_000 }, async (t) => {
  const env = await makePodEnv(t);
  const run = async (name: string, handler = 'runc'): Promise<string> =>
    ((await env.call('RunPodSandbox', { config: podConfig(name), runtime_handler: handler })) as { pod_sandbox_id: string }).pod_sandbox_id;
  const keep = await run('keep');
  const keepGvisor = await run('keep-gvisor', 'runsc');
  const dies = await run('dies');
  const keepRec = env.pods.get(keep);
  const diesRec = env.pods.get(dies);

  // A half-made pod, as a crash in the middle of RunPodSandbox leaves it: metadata in
  // state creating, a pinned netns with a CNI attachment, files.
  const half = await run('half');
  const halfRec = env.pods.get(half);
  const metaFile = path.join(env.config.root_dir, 'pods', half, 'meta.json');
  const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as { state: string };
  meta.state = 'creating';
  fs.writeFileSync(metaFile, JSON.stringify(meta));

  // The infra of `dies` is killed while the daemon is "down" (nothing watches its exit).
  env.pods.close();
  process.kill(diesRec.pid, 'SIGKILL');
  await waitFor('the killed infra to be gone', () => !alive(diesRec.pid));

  await env.restart();

  const state = async (id: string): Promise<string> =>
    ((await env.call('PodSandboxStatus', { pod_sandbox_id: id })) as { status: { state: string } }).status.state;
  assert.equal(await state(keep), 'SANDBOX_READY');
  assert.equal(await state(keepGvisor), 'SANDBOX_READY');
  assert.ok(alive(keepRec.pid), 'the running infra was never interrupted');
  assert.equal(env.pods.get(keep).pid, keepRec.pid);
  assert.equal(await state(dies), 'SANDBOX_NOTREADY');
  assert.match(env.pods.get(dies).reason ?? '', /infra container was stopped at restart/);

  await assert.rejects(env.call('PodSandboxStatus', { pod_sandbox_id: half }), { code: 'NOT_FOUND' });
  assert.ok(!alive(halfRec.pid), 'the half-made pod has no process left');
  assert.ok(!fs.existsSync(halfRec.paths.dir), 'nor files');
  assert.ok(!isMounted(halfRec.netnsPath!), 'nor netns');
  assert.ok(!fs.existsSync(path.join('/sys/fs/cgroup/memory', halfRec.podCgroup)), 'nor cgroup');
  assert.ok(!ipamLeases(env.config.state_dir).includes(halfRec.ip), 'nor IP lease');

  // The listing agrees, and the books still reserve the names of the kept pods.
  const list = (await env.call('ListPodSandbox', {})) as { items: Array<{ id: string; state: string }> };
  assert.deepEqual(
    list.items.map((i) => [i.id, i.state]).sort(),
    [
      [keep, 'SANDBOX_READY'],
      [keepGvisor, 'SANDBOX_READY'],
      [dies, 'SANDBOX_NOTREADY'],
    ].sort(),
  );
  await assert.rejects(env.call('RunPodSandbox', { config: { ...podConfig('keep'), labels: { other: 'x' } } }), { code: 'ALREADY_EXISTS' });
  const ready = (await env.call('ListPodSandbox', { filter: { state: { state: 'SANDBOX_READY' }, label_selector: { app: 'keep' } } })) as {
    items: Array<{ id: string }>;
  };
  assert.deepEqual(
    ready.items.map((i) => i.id),
    [keep],
  );

  for (const id of [keep, keepGvisor, dies]) await env.call('RemovePodSandbox', { pod_sandbox_id: id });
  assert.deepEqual(ipamLeases(env.config.state_dir), []);
  assert.deepEqual(fs.readdirSync(path.join(env.config.state_dir, 'netns')), []);
});

test(
  'after a restart, an infra PID that is another process now is not taken for the infra: NOTREADY, and that process is never signalled',
  { timeout: 120_000 },
  async (t) => {
    const env = await makePodEnv(t);
    const { pod_sandbox_id: id } = (await env.call('RunPodSandbox', { config: podConfig('reused') })) as { pod_sandbox_id: string };
    const rec = env.pods.get(id);
    assert.ok(rec.pidStartTicks !== undefined, 'the infra start time is recorded at create');
    // As if the infra had died while the daemon was down and its PID were another process's
    // now: the record names a live stranger (the real infra runs on, for the runtime to find).
    const stranger = spawn('sleep', ['600'], { stdio: 'ignore' });
    t.after(() => stranger.kill('SIGKILL'));
    env.pods.close();
    const metaFile = path.join(env.config.root_dir, 'pods', id, 'meta.json');
    fs.writeFileSync(metaFile, JSON.stringify({ ...(JSON.parse(fs.readFileSync(metaFile, 'utf8')) as object), pid: stranger.pid }));
    await env.restart();
    await waitFor('the pod to be NOTREADY', () => env.pods.get(id).state === 'stopped');
    assert.match(env.pods.get(id).reason ?? '', /the infra process exited/);
    await env.call('StopPodSandbox', { pod_sandbox_id: id });
    await env.call('RemovePodSandbox', { pod_sandbox_id: id });
    assert.ok(alive(stranger.pid!), 'the process that has the PID now was never signalled');
    assert.ok(!alive(rec.pid), 'the real infra went with the pod (found through the runtime)');
  },
);

test('a pinned netns with a CNI attachment but no metadata is released at start', { timeout: 120_000 }, async (t) => {
  const env = await makePodEnv(t);
  const orphan = 'e'.repeat(64);
  const netnsPath = await env.network.createNetns(orphan);
  await env.network.setUp({ podId: orphan, name: 'orphan', namespace: 'x', uid: 'u', netnsPath, portMappings: [] });
  assert.equal(ipamLeases(env.config.state_dir).length, 1);
  await env.restart();
  assert.ok(!isMounted(netnsPath), 'the orphan netns is unpinned');
  assert.deepEqual(ipamLeases(env.config.state_dir), [], 'its IP is released');
});

for (const handler of ['runc', 'runsc']) {
  test(`${handler}: a pod whose infra dies while the daemon runs turns NOTREADY, pushed, in status and list`, { timeout: 120_000 }, async (t) => {
    const env = await makePodEnv(t);
    const { pod_sandbox_id: id } = (await env.call('RunPodSandbox', { config: podConfig(`sudden-${handler}`), runtime_handler: handler })) as {
      pod_sandbox_id: string;
    };
    const rec = env.pods.get(id);
    assert.equal(rec.conmonPid, 0, 'the infra has no conmon (issue 13)');
    // runsc: the host PID is the gVisor sandbox process.
    process.kill(rec.pid, 'SIGKILL');
    // Pushed by the end of the infra itself (its pidfd): no Status or List needed to notice it.
    await waitFor('the infra exit to be recorded', () => env.pods.get(id).state === 'stopped');
    const st = (await env.call('PodSandboxStatus', { pod_sandbox_id: id })) as { status: { state: string } };
    assert.equal(st.status.state, 'SANDBOX_NOTREADY');
    const list = (await env.call('ListPodSandbox', { filter: { state: { state: 'SANDBOX_NOTREADY' } } })) as { items: Array<{ id: string }> };
    assert.deepEqual(
      list.items.map((i) => i.id),
      [id],
    );
    // No monitor, no exit code (none is CRI-visible for a pod): the reason says it.
    assert.equal(env.pods.get(id).exitCode, undefined);
    assert.match(env.pods.get(id).reason ?? '', /the infra process exited/);
    await env.call('RemovePodSandbox', { pod_sandbox_id: id });
    assert.deepEqual(ipamLeases(env.config.state_dir), []);
  });
}
