// The runtime delete once an exit is recorded (issue 13): the runtime forgets the
// container and its conmon goes before any RemoveContainer; RemoveContainer right after
// an exit (its delete maybe still running) succeeds; a daemon killed between the exit
// and the removal leaves nothing once the container is removed (S7). On runc and runsc.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { alive, execFileAsync, makeContainerEnv, waitFor, type ContainerEnv } from './container-env.js';

const HANDLERS = ['runc', 'runsc'] as const;
/** runsc boots a sandbox per pod: slow on a busy machine. */
const CALL_TIMEOUT_MS = 120_000;

/** The container IDs the handler's runtime knows (its own `list`, under the daemon's root). */
async function runtimeIds(env: ContainerEnv, handler: string): Promise<string[]> {
  const root = path.join(env.d.stateDir, 'runtimes', handler);
  const { stdout } = await execFileAsync(handler, ['--root', root, 'list', '--format', 'json']);
  const parsed = JSON.parse(stdout.trim() || 'null') as Array<{ id: string }> | null;
  return (parsed ?? []).map((c) => c.id);
}

/** Nothing of the container is left: the runtime, its conmon, its state dir, its exit file. */
async function assertGone(env: ContainerEnv, handler: string, id: string, conmonPid: number): Promise<void> {
  assert.ok(!(await runtimeIds(env, handler)).includes(id), `${handler} no longer lists ${id}`);
  assert.ok(!alive(conmonPid), `the conmon of ${id} (pid ${conmonPid}) is gone`);
  assert.ok(!fs.existsSync(path.join(env.d.stateDir, 'containers', id)), 'its runtime files are gone');
  assert.ok(!fs.existsSync(path.join(env.d.stateDir, 'container-exits', id)), 'its exit file is gone');
}

for (const handler of HANDLERS) {
  test(
    `${handler}: once the exit is recorded the runtime forgets the container and its conmon ends, before any RemoveContainer`,
    { timeout: 300_000 },
    async (t) => {
      const env = await makeContainerEnv(t);
      const pod = await env.runPod(`exitdel-${handler}`, {}, handler);
      const id = await env.createContainer(pod, 'quick', { command: ['/bin/sh', '-c', 'echo done; exit 7'] });
      const conmonPid = Number((await env.info(id)).conmonPid);
      await env.d.runtime('StartContainer', { container_id: id }, CALL_TIMEOUT_MS);
      const st = await env.waitState(id, 'CONTAINER_EXITED', CALL_TIMEOUT_MS);
      assert.equal(st.exit_code, 7);
      await waitFor(`${handler} to forget the exited container`, async () => !(await runtimeIds(env, handler)).includes(id), 60_000);
      await waitFor('its conmon to end', () => !alive(conmonPid), 60_000);
      // The books still hold it, with its exit, until RemoveContainer.
      const kept = await env.status(id);
      assert.equal(kept.state, 'CONTAINER_EXITED');
      assert.equal(kept.exit_code, 7);
      await env.d.runtime('RemoveContainer', { container_id: id }, CALL_TIMEOUT_MS);
      await assertGone(env, handler, id, conmonPid);
    },
  );

  test(`${handler}: RemoveContainer right after StopContainer (its delete maybe still running) removes everything`, { timeout: 300_000 }, async (t) => {
    const env = await makeContainerEnv(t);
    const pod = await env.runPod(`exitrm-${handler}`, {}, handler);
    const ids = [
      await env.createContainer(pod, 'term', { command: ['/bin/sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'] }),
      await env.createContainer(pod, 'stubborn', { command: ['/bin/sh', '-c', 'trap "" TERM; sleep 3600 & wait'] }),
    ];
    const conmons: number[] = [];
    for (const id of ids) {
      conmons.push(Number((await env.info(id)).conmonPid));
      await env.d.runtime('StartContainer', { container_id: id }, CALL_TIMEOUT_MS);
    }
    for (const id of ids) {
      await env.d.runtime('StopContainer', { container_id: id, timeout: 1 }, CALL_TIMEOUT_MS);
      await env.d.runtime('RemoveContainer', { container_id: id }, CALL_TIMEOUT_MS);
    }
    for (const [i, id] of ids.entries()) await assertGone(env, handler, id, conmons[i]);
    const list = await env.d.runtime('ListContainers', { filter: { pod_sandbox_id: pod } });
    assert.deepEqual(list.containers, []);
  });

  test(`${handler}: a daemon killed between an exit and the removal leaves nothing once the container is removed`, { timeout: 300_000 }, async (t) => {
    const env = await makeContainerEnv(t);
    const { d } = env;
    const pod = await env.runPod(`exitkill-${handler}`, {}, handler);
    // One exits while the daemon is down (recovery records it), one is stopped and the
    // daemon killed at once (its background delete cut short or never begun).
    const downExit = await env.createContainer(pod, 'downexit', { command: ['/bin/sh', '-c', 'read line; exit 4'], stdin: true, stdin_once: true });
    const stopped = await env.createContainer(pod, 'stopped', { command: ['/bin/sh', '-c', 'trap "exit 0" TERM; sleep 3600 & wait'] });
    const conmons = [Number((await env.info(downExit)).conmonPid), Number((await env.info(stopped)).conmonPid)];
    for (const id of [downExit, stopped]) await d.runtime('StartContainer', { container_id: id }, CALL_TIMEOUT_MS);
    await d.runtime('StopContainer', { container_id: stopped, timeout: 10 }, CALL_TIMEOUT_MS);
    await d.kill9();
    // downexit's stdin is conmon's: kill its sh's read through the runtime instead.
    await execFileAsync(handler, ['--root', path.join(d.stateDir, 'runtimes', handler), 'kill', downExit, 'KILL']);
    await waitFor(
      'the exit file of the container ended while the daemon was down',
      () => fs.existsSync(path.join(d.stateDir, 'container-exits', downExit)),
      60_000,
    );
    await d.start();
    assert.equal((await env.status(downExit)).state, 'CONTAINER_EXITED');
    assert.equal((await env.status(stopped)).state, 'CONTAINER_EXITED');
    for (const id of [downExit, stopped]) await d.runtime('RemoveContainer', { container_id: id }, CALL_TIMEOUT_MS);
    await assertGone(env, handler, downExit, conmons[0]);
    await assertGone(env, handler, stopped, conmons[1]);
  });
}
