// SIGTERM while a call is in flight: the daemon stops accepting, lets the call finish
// and answer, then removes its socket and exits 0.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDaemon } from '../../helpers/daemon.js';

test('SIGTERM during RunPodSandbox lets the call finish, then exits 0 without the socket', { timeout: 180_000 }, async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const call = d.runtime('RunPodSandbox', {
    config: {
      metadata: { name: 'inflight', uid: 'uid-inflight', namespace: 'sandlot-test', attempt: 0 },
      hostname: 'inflight',
      linux: { security_context: { namespace_options: { network: 'POD', pid: 'POD', ipc: 'POD' } } },
    },
    runtime_handler: 'runc',
  });
  // Wait until the daemon has the call (its log says so when the handler starts work is
  // not guaranteed, so wait for the pod's directory to appear).
  const podsDir = `${d.rootDir}/pods`;
  for (let i = 0; i < 400 && !(fs.existsSync(podsDir) && fs.readdirSync(podsDir).length > 0); i++) await sleep(10);
  d.child!.kill('SIGTERM');
  const res = await call;
  assert.match(res.pod_sandbox_id, /^[0-9a-f]{64}$/);
  assert.equal(await d.exited(), 0);
  assert.equal(fs.existsSync(d.socket), false);
  // The pod outlived the daemon; a new daemon finds it READY and the cleanup removes it.
  await d.start();
  const st = await d.runtime('PodSandboxStatus', { pod_sandbox_id: res.pod_sandbox_id });
  assert.equal(st.status.state, 'SANDBOX_READY');
});
