// Containers restart in a pod, as the kubelet does all the time: after one container of
// the pod has been stopped, a new one (another name, and the same name at attempt + 1)
// is created, starts and runs. Issue 10 item 8 was runsc-only ("creating process: out of
// memory" on every start after a stop in a pod sharing its PID namespace: the first app
// container had become the init of the namespace the others joined); the same test runs
// on runc, with and without a pod-wide PID namespace.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { makeContainerEnv, waitFor } from '../container/container-env.js';

const SLEEPER = ['/bin/sh', '-c', 'trap "exit 0" TERM; echo up; sleep 3601 & wait'];

for (const handler of ['runc', 'runsc'])
  for (const pid of ['POD', 'CONTAINER']) {
    test(
      `${handler}, pid ${pid}: after a container of the pod is stopped, new containers (a new name, the same name at attempt 1) start and run`,
      { timeout: 300_000 },
      async (t) => {
        const env = await makeContainerEnv(t);
        const ns = { linux: { security_context: { namespace_options: { network: 'POD', pid, ipc: 'POD' } } } };
        const pod = await env.runPod(`restart-${handler}-${pid.toLowerCase()}`, ns, handler);
        const logged = async (id: string, text: string): Promise<void> => {
          const log = (await env.status(id)).log_path;
          await waitFor(`"${text}" in the log of ${id}`, () => fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes(text), 60_000);
        };

        const first = await env.createContainer(pod, 'app', { command: SLEEPER });
        await env.d.runtime('StartContainer', { container_id: first }, 120_000);
        await logged(first, 'up');
        await env.d.runtime('StopContainer', { container_id: first, timeout: 10 }, 120_000);
        assert.equal((await env.status(first)).state, 'CONTAINER_EXITED');

        // The kubelet's restart: the same name, attempt + 1, while the exited one still exists.
        const again = await env.createContainer(pod, 'app', {
          metadata: { name: 'app', attempt: 1 },
          log_path: 'app-1.log',
          command: ['/bin/sh', '-c', 'echo second; cat /proc/1/cmdline; echo; sleep 3600'],
        });
        await env.d.runtime('StartContainer', { container_id: again }, 120_000);
        await logged(again, 'second');
        // A pod-wide PID namespace is the infra's: its PID 1 is catatonit on both handlers,
        // and the stopped container left none of its processes (its background sleep) there.
        if (pid === 'POD') {
          await logged(again, 'catatonit');
          const r = (await env.d.runtime('ExecSync', { container_id: again, cmd: ['ps', '-o', 'args'], timeout: 30 }, 60_000)) as { stdout: Buffer };
          assert.doesNotMatch(Buffer.from(r.stdout).toString(), /^sleep 3601$/m);
        }
        assert.equal((await env.status(again)).state, 'CONTAINER_RUNNING');

        // Another container after a second stop, once the first is removed as well.
        await env.d.runtime('StopContainer', { container_id: again, timeout: 0 }, 120_000);
        await env.d.runtime('RemoveContainer', { container_id: first }, 120_000);
        const other = await env.createContainer(pod, 'other', { command: ['/bin/sh', '-c', 'echo third; exit 7'] });
        await env.d.runtime('StartContainer', { container_id: other }, 120_000);
        const st = await env.waitState(other, 'CONTAINER_EXITED', 120_000);
        assert.equal(st.exit_code, 7);
        await logged(other, 'third');
      },
    );
  }
