// ReopenContainerLog (issue 10 item 5), on runc and runsc: it returns only once conmon
// has created the new log file, so a kubelet that rotates (rename, then reopen) finds
// the file at once; a monitor that never reopens makes it fail naming the container and
// the path, instead of an OK with no file behind it.
import { status } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { failure, makeContainerEnv, waitFor } from './container-env.js';

for (const handler of ['runc', 'runsc'] as const) {
  test(
    `${handler}: ReopenContainerLog returns once the new log file exists, and fails naming container and path when conmon never reopens`,
    { timeout: 600_000 },
    async (t) => {
      const env = await makeContainerEnv(t);
      const pod = await env.runPod(`reopen-${handler}`, {}, handler);
      const id = await env.createContainer(pod, 'ticker', {
        command: ['/bin/sh', '-c', 'i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.2; done'],
      });
      await env.d.runtime('StartContainer', { container_id: id }, 120_000);
      await env.waitState(id, 'CONTAINER_RUNNING');
      const logPath = String((await env.status(id)).log_path);
      await waitFor('some ticks', () => fs.existsSync(logPath) && fs.readFileSync(logPath, 'utf8').includes('tick-1'), 60_000);

      for (let round = 1; round <= 3; round++) {
        fs.renameSync(logPath, `${logPath}.${round}`);
        await env.d.runtime('ReopenContainerLog', { container_id: id }, 60_000);
        // No waiting: the answer came after the file was there.
        assert.ok(fs.existsSync(logPath), `round ${round}: ReopenContainerLog answered OK before "${logPath}" existed`);
      }
      await waitFor('the reopened log to fill', () => /tick-\d+/.test(fs.readFileSync(logPath, 'utf8')), 60_000);

      // A monitor that does not act on its control fifo (stopped): the call fails, naming both.
      const conmonPid = Number((await env.info(id)).conmonPid);
      assert.ok(conmonPid > 0);
      process.kill(conmonPid, 'SIGSTOP');
      t.after(() => {
        try {
          process.kill(conmonPid, 'SIGCONT');
        } catch {
          // gone
        }
      });
      fs.renameSync(logPath, `${logPath}.stuck`);
      const f = await failure(env.d.runtime('ReopenContainerLog', { container_id: id }, 120_000));
      process.kill(conmonPid, 'SIGCONT');
      assert.notEqual(f.code, status.OK);
      assert.notEqual(f.code, status.DEADLINE_EXCEEDED, 'the daemon answered, not the client deadline');
      assert.ok(f.details.includes(id), f.details);
      assert.ok(f.details.includes(logPath), f.details);
      // Once conmon runs again it catches up on the queued request.
      await waitFor('conmon to reopen after SIGCONT', () => fs.existsSync(logPath), 60_000);
    },
  );
}
