// Issue 11 items 2 and 3: a crash during StartContainer keeps the workload (the runtime's
// word wins at recovery; a retried start succeeds), and what calls that never completed
// left on disk (exec scratch dirs, container dirs without metadata, CNI result temp
// files) is gone after a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { alive, makeContainerEnv, waitFor } from './container-env.js';

const CALL_MS = 120_000;

for (const handler of ['runc', 'runsc']) {
  test(
    `S4/S6 (${handler}): a container the runtime started before a crash kept it from being saved is RUNNING after restart, and a retried StartContainer succeeds`,
    { timeout: 300_000 },
    async (t) => {
      const env = await makeContainerEnv(t);
      const pod = await env.runPod(`crash-start-${handler}`, {}, handler);
      const c = await env.createContainer(pod, 'sleeper', { command: ['/bin/sh', '-c', 'sleep 3600'] });
      await env.d.runtime('StartContainer', { container_id: c }, CALL_MS);
      const before = await env.status(c);
      const pid = Number((await env.info(c)).pid);
      env.pids.push(pid);

      await env.d.kill9();
      // The crash window: the runtime runs it, the books still say created.
      const meta = path.join(env.d.rootDir, 'containers', c, 'meta.json');
      const rec = JSON.parse(fs.readFileSync(meta, 'utf8')) as Record<string, unknown>;
      rec.state = 'created';
      rec.startedAt = '0';
      fs.writeFileSync(meta, JSON.stringify(rec));
      await env.d.start();

      const st = await env.status(c);
      assert.equal(st.state, 'CONTAINER_RUNNING', 'the runtime says running: running');
      assert.ok(BigInt(st.started_at) >= BigInt(before.created_at), `started_at ${st.started_at} not before created_at ${before.created_at}`);
      if (handler === 'runc') assert.ok(alive(pid), 'the workload was not killed');
      await env.d.runtime('StartContainer', { container_id: c }, CALL_MS); // the kubelet's retry
      assert.equal((await env.status(c)).state, 'CONTAINER_RUNNING');
      await env.d.runtime('StopContainer', { container_id: c, timeout: 0 }, CALL_MS);
      const done = await env.waitState(c, 'CONTAINER_EXITED');
      assert.equal(done.exit_code, 137, 'the exit code is the one of the kill, not a StartError');
      assert.notEqual(done.reason, 'StartError');
    },
  );
}

test(
  'issue 11 item 3: leftovers of calls a crash interrupted (exec scratch, container dir without metadata, CNI temp files) are removed at start',
  { timeout: 300_000 },
  async (t) => {
    const env = await makeContainerEnv(t);
    const pod = await env.runPod('crash-leftovers');
    const c = await env.createContainer(pod, 'sleeper', { command: ['/bin/sh', '-c', 'sleep 3600'] });
    await env.d.runtime('StartContainer', { container_id: c }, CALL_MS);
    const execDir = path.join(env.d.stateDir, 'exec');
    // A real ExecSync killed mid-call: its scratch dir and its process.
    const call = env.d.runtime('ExecSync', { container_id: c, cmd: ['/bin/sleep', '3000'], timeout: 0 }, CALL_MS).catch(() => undefined);
    await waitFor(
      'the exec scratch dir and its pid file',
      () => fs.existsSync(execDir) && fs.readdirSync(execDir).some((d) => fs.existsSync(path.join(execDir, d, 'exec.pid'))),
      60_000,
    );
    const scratch = fs.readdirSync(execDir)[0];
    const execPid = Number(fs.readFileSync(path.join(execDir, scratch, 'exec.pid'), 'utf8'));
    env.pids.push(execPid);
    await env.d.kill9();
    await call;
    // A CreateContainer killed before its first save, and a CNI result save cut short.
    const ghost = randomBytes(32).toString('hex');
    fs.mkdirSync(path.join(env.d.rootDir, 'containers', ghost), { recursive: true });
    fs.writeFileSync(path.join(env.d.rootDir, 'containers', ghost, '.lock'), '');
    const results = path.join(env.d.stateDir, 'cni', 'results');
    const tmp = path.join(results, `${pod}.json.tmp-4242-deadbeef`);
    fs.writeFileSync(tmp, '{"half":');
    await env.d.start();

    assert.deepEqual(fs.readdirSync(execDir), [], 'no exec scratch dir stays');
    await waitFor('the orphaned exec process to be killed', () => !alive(execPid), 30_000);
    assert.ok(!fs.existsSync(path.join(env.d.rootDir, 'containers', ghost)), 'the container dir without metadata is gone');
    assert.ok(!fs.existsSync(tmp), 'the CNI result temp file is gone');
    assert.ok(fs.existsSync(path.join(results, `${pod}.json`)), 'the real CNI result stays');
    assert.equal((await env.status(c)).state, 'CONTAINER_RUNNING');
    const r = await env.d.runtime('ExecSync', { container_id: c, cmd: ['/bin/echo', 'ok'], timeout: 30 }, CALL_MS);
    assert.equal(
      Buffer.from(r.stdout as Uint8Array)
        .toString()
        .trim(),
      'ok',
    );
    assert.doesNotMatch(env.d.stderr, new RegExp(`${ghost}.*left on disk`));
  },
);
