// runsc pods: app containers are subcontainers in the pod's gVisor sandbox, monitored
// through conmon + the runsc shim; logs, exit codes and stop behave as under runc.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { makeContainerEnv, waitFor } from './container-env.js';

test('runsc: a subcontainer prints and exits 3 (CRI log, exit code, reason); a sleeper is stopped with SIGTERM', { timeout: 240_000 }, async (t) => {
  const env = await makeContainerEnv(t);
  const pod = await env.runPod('gvisor', {}, 'runsc');
  const id = await env.createContainer(pod, 'printer', { command: ['/bin/sh', '-c', 'echo from-gvisor; exit 3'] });
  await env.d.runtime('StartContainer', { container_id: id }, 120_000);
  const st = await env.waitState(id, 'CONTAINER_EXITED', 120_000);
  assert.equal(st.exit_code, 3);
  assert.equal(st.reason, 'Error');
  assert.match(fs.readFileSync(st.log_path, 'utf8'), /^\S+ stdout F from-gvisor$/m);

  const sleeper = await env.createContainer(pod, 'sleeper', {
    command: ['/bin/sh', '-c', 'trap "echo bye; exit 0" TERM; echo ready; sleep 3600 & wait'],
  });
  await env.d.runtime('StartContainer', { container_id: sleeper }, 120_000);
  const log = (await env.status(sleeper)).log_path;
  await waitFor('the sleeper to be ready', () => fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('ready'), 60_000);
  await env.d.runtime('StopContainer', { container_id: sleeper, timeout: 30 }, 120_000);
  const s = await env.status(sleeper);
  assert.equal(s.state, 'CONTAINER_EXITED');
  assert.equal(s.exit_code, 0);

  // A created one that never starts is removed cleanly too.
  const idle = await env.createContainer(pod, 'idle', { command: ['/bin/sh', '-c', 'exit 0'] });
  for (const c of [id, sleeper, idle]) await env.d.runtime('RemoveContainer', { container_id: c }, 120_000);
  const list = (await env.d.runtime('ListContainers', { filter: { pod_sandbox_id: pod } })) as { containers: unknown[] };
  assert.deepEqual(list.containers, []);
});
