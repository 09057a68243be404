// ExecSync's timeout (S18, issue 10 item 4), on runc and runsc: when DEADLINE_EXCEEDED
// comes back, the killed process is already gone from the container. The `ps` right
// after the failure (no waiting) must not show it, neither running nor as a zombie, nor
// what it started (a `sh -c` whose child would otherwise live on).
import { status } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { failure, makeContainerEnv, type ContainerEnv } from '../container/container-env.js';

async function ps(env: ContainerEnv, id: string): Promise<string> {
  const r = await env.d.runtime('ExecSync', { container_id: id, cmd: ['ps', '-o', 'pid,ppid,stat,args'], timeout: 0 }, 120_000);
  assert.equal(r.exit_code, 0, Buffer.from(r.stderr).toString());
  return Buffer.from(r.stdout).toString();
}

for (const handler of ['runc', 'runsc'] as const) {
  test(
    `S18 ${handler}: ExecSync past its timeout answers DEADLINE_EXCEEDED only once the process is gone from the container`,
    { timeout: 600_000 },
    async (t) => {
      const env = await makeContainerEnv(t);
      const podId = await env.runPod(`exec-timeout-${handler}`, {}, handler);
      const id = await env.createContainer(podId, 'sleeper', { command: ['/bin/sh', '-c', 'sleep 100000'] });
      await env.d.runtime('StartContainer', { container_id: id }, 120_000);
      await env.waitState(id, 'CONTAINER_RUNNING');
      for (const [i, cmd] of [
        ['/bin/sh', '-c', 'exec sleep 7001'],
        ['sleep', '7002'],
        ['/bin/sh', '-c', 'sleep 7003; echo never'],
        ['/bin/sh', '-c', 'sleep 7004 & sleep 7005 & wait'],
      ].entries()) {
        const marker = `sleep 700${i + 1}`;
        const f = await failure(env.d.runtime('ExecSync', { container_id: id, cmd, timeout: 1 }, 120_000));
        assert.equal(f.code, status.DEADLINE_EXCEEDED, f.details);
        assert.match(f.details, /timed out after 1 s/);
        const listing = await ps(env, id);
        assert.ok(!listing.includes(marker), `right after DEADLINE_EXCEEDED, ps still shows the process:\n${listing}`);
        // Nor as a zombie: the runtime's exec reaped it (killing the exec too early left "Z [sh]").
        // What the command started dies with it; its zombies go to the container's init
        // (here a plain `sleep`, which reaps nothing, as in containerd): only those may stay.
        const zombies = listing.split('\n').filter((l) => /^\s*\d+\s+\d+\s+Z/.test(l));
        assert.ok(
          zombies.every((l) => l.trim().split(/\s+/)[1] === '1'),
          `right after DEADLINE_EXCEEDED, ps shows a zombie not left to the container's init:\n${listing}`,
        );
        if (i < 2) assert.deepEqual(zombies, [], `a single killed process leaves no zombie:\n${listing}`);
      }
    },
  );
}
