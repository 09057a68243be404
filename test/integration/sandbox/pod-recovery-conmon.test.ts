// Pods made by an earlier version, whose infra ran under a conmon (before issue 13): a
// daemon of this version recovers them as they were made. Their records have a
// conmonPid and no infra start time; the conmon's end (and its exit file) says when the
// infra died, a stop signals the infra through the conmon-parent guard, and a removal
// waits for the conmon to go. The fixture remakes a pod's infra under conmon, as the
// earlier version did, and writes its record as that version did.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Conmon } from '../../../src/oci/conmon.js';
import { alive, makePodEnv, mountsWith, podConfig, type PodEnv } from './pod-env.js';

async function waitFor(what: string, fn: () => boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Pod `id`'s infra made again under conmon, and its record as the earlier version wrote it (the manager closed). */
async function remakeWithConmon(env: PodEnv, id: string): Promise<{ pid: number; conmonPid: number }> {
  const rec = env.pods.get(id);
  const driver = env.pods.driver(rec.runtimeHandler);
  await driver.delete(id, { force: true });
  const { paths, config } = rec;
  const made = await new Conmon({ path: env.config.conmon_path }).create({
    id,
    name: `${config.metadata.namespace}_${config.metadata.name}_infra`,
    runtime: driver,
    bundle: paths.bundle,
    containerPidFile: paths.infraPidFile,
    conmonPidFile: paths.conmonPidFile,
    exitDir: paths.exitDir,
    logPath: paths.infraLog,
    socketDir: paths.socketDir,
    persistDir: paths.persistDir,
    conmonLogFile: paths.conmonLog,
  });
  await driver.start(id);
  const metaFile = path.join(env.config.root_dir, 'pods', id, 'meta.json');
  const meta = JSON.parse(fs.readFileSync(metaFile, 'utf8')) as Record<string, unknown>;
  delete meta.pidStartTicks;
  fs.writeFileSync(metaFile, JSON.stringify({ ...meta, pid: made.pid, conmonPid: made.conmonPid }));
  return made;
}

test(
  'pods of an earlier version, with an infra conmon, are recovered: exit with its code, stop and remove leave no process (runc and runsc)',
  { timeout: 240_000 },
  async (t) => {
    const env = await makePodEnv(t);
    const run = async (name: string, handler: string): Promise<string> =>
      ((await env.call('RunPodSandbox', { config: podConfig(name), runtime_handler: handler })) as { pod_sandbox_id: string }).pod_sandbox_id;
    const dies = await run('old-dies', 'runc');
    const stops = await run('old-stops', 'runc');
    const gvisor = await run('old-gvisor', 'runsc');
    env.pods.close();
    const made = new Map<string, { pid: number; conmonPid: number }>();
    for (const id of [dies, stops, gvisor]) made.set(id, await remakeWithConmon(env, id));
    await env.restart();

    const state = async (id: string): Promise<string> =>
      ((await env.call('PodSandboxStatus', { pod_sandbox_id: id })) as { status: { state: string } }).status.state;
    for (const id of [dies, stops, gvisor]) {
      assert.equal(await state(id), 'SANDBOX_READY');
      assert.equal(env.pods.get(id).conmonPid, made.get(id)!.conmonPid, 'the record keeps its conmon');
    }

    // The infra's death is pushed by its conmon's end, with the code from its exit file.
    process.kill(made.get(dies)!.pid, 'SIGKILL');
    await waitFor('the infra exit to be recorded', () => env.pods.get(dies).state === 'stopped');
    assert.equal(env.pods.get(dies).exitCode, 137);

    // A stop signals the infra (its parent is its conmon) and the conmon goes with it.
    await env.call('StopPodSandbox', { pod_sandbox_id: stops });
    assert.equal(await state(stops), 'SANDBOX_NOTREADY');
    assert.ok(!alive(made.get(stops)!.pid), 'the infra is gone after stop');

    for (const id of [dies, stops, gvisor]) await env.call('RemovePodSandbox', { pod_sandbox_id: id });
    for (const [id, { pid, conmonPid }] of made) {
      assert.ok(!alive(pid) && !alive(conmonPid), `pod ${id}: neither its infra nor its conmon is left`);
      assert.deepEqual(mountsWith(id), [], `pod ${id}: no mount is left`);
    }
    assert.deepEqual(env.pods.list(), []);
  },
);
