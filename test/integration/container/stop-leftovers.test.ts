// StopContainer leaves nothing of the container running (S9), however the stop signal
// went (issue 13: through a pidfd of the init on runc, no `runc kill` process): in a PID
// namespace of its own the kernel ends the init's children with it (so no `kill --all`
// is run), in the pod's shared PID namespace they outlive the init (reparented to the
// infra) and the stop kills them. runc only: a runsc container's processes live in the
// sandbox kernel, with no host PID to look at, and its stop path (`runsc kill`, then
// `kill --all`) is the one it had.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { alive, makeContainerEnv, waitFor } from './container-env.js';

/** The init (sh) starts a child that ignores nothing and would sleep for an hour, then exits on SIGTERM. */
const PARENT_AND_CHILD = ['/bin/sh', '-c', 'sleep 3600 & trap "exit 0" TERM; echo ready; wait'];

/** The host PIDs of the children of `pid` (its main thread's). */
function childrenOf(pid: number): number[] {
  const text = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
  return text === '' ? [] : text.split(/\s+/).map(Number);
}

for (const pidMode of ['CONTAINER', 'POD'] as const) {
  test(
    `runc, PID namespace ${pidMode}: after StopContainer neither the init nor its child runs; exit 0 from the SIGTERM trap`,
    { timeout: 300_000 },
    async (t) => {
      const env = await makeContainerEnv(t);
      const namespaces = { namespace_options: { network: 'POD', pid: pidMode, ipc: 'POD' } };
      const pod = await env.runPod(`leftovers-${pidMode.toLowerCase()}`, { linux: { security_context: namespaces } });
      const id = await env.createContainer(pod, 'parent', { command: PARENT_AND_CHILD, linux: { security_context: namespaces } });
      await env.d.runtime('StartContainer', { container_id: id }, 120_000);
      const logPath = (await env.status(id)).log_path;
      await waitFor('the trap to be set', () => fs.existsSync(logPath) && fs.readFileSync(logPath, 'utf8').includes('ready'), 60_000);
      const init = Number((await env.info(id)).pid);
      const children = childrenOf(init);
      assert.equal(children.length, 1, `the init has its sleep child (${children.join(' ')})`);
      env.pids.push(...children);

      await env.d.runtime('StopContainer', { container_id: id, timeout: 30 }, 120_000);
      const st = await env.status(id);
      assert.equal(st.state, 'CONTAINER_EXITED');
      assert.equal(st.exit_code, 0, 'the stop signal reached the trap');
      assert.ok(!alive(init), 'the init is gone');
      if (pidMode === 'CONTAINER') assert.ok(!alive(children[0]), 'the kernel ended the child with its namespace init');
      else await waitFor('the child reparented to the infra to be killed', () => !alive(children[0]), 30_000);
    },
  );
}
