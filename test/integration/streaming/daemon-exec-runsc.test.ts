// ExecSync, Exec and Attach in runsc (gVisor) subcontainers through the daemon: the
// same runtime path as runc (`runsc exec --process` with the handler's global flags),
// but killing goes through the sandbox-internal PID (`runsc kill --pid`), since killing
// `runsc exec` leaves the process running inside the sandbox.
import { status } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { failure, makeContainerEnv, waitFor, type ContainerEnv } from '../container/container-env.js';
import { runGoClient, streamStatus } from './go-client.js';

async function execSync(env: ContainerEnv, id: string, cmd: string[], timeout = 0): Promise<{ stdout: string; stderr: string; exit_code: number }> {
  const r = await env.d.runtime('ExecSync', { container_id: id, cmd, timeout }, 120_000);
  return { stdout: Buffer.from(r.stdout).toString(), stderr: Buffer.from(r.stderr).toString(), exit_code: r.exit_code };
}

test('exec, ExecSync and attach in runsc containers through the daemon', { timeout: 600_000 }, async (t) => {
  const env = await makeContainerEnv(t);
  const podId = await env.runPod('exec-runsc', {}, 'runsc');
  const id = await env.createContainer(podId, 'sleeper', { command: ['/bin/sh', '-c', 'sleep 100000'] });
  await env.d.runtime('StartContainer', { container_id: id }, 120_000);
  await env.waitState(id, 'CONTAINER_RUNNING');

  await t.test('ExecSync: output, exit code, and a kernel that is gVisor', async () => {
    assert.deepEqual(await execSync(env, id, ['/bin/sh', '-c', 'echo out; echo err >&2; exit 6']), { stdout: 'out\n', stderr: 'err\n', exit_code: 6 });
    // gVisor reports a kernel of its own.
    const inside = (await execSync(env, id, ['cat', '/proc/version'])).stdout;
    assert.notEqual(inside, fs.readFileSync('/proc/version', 'utf8'), 'not the host kernel');
  });

  await t.test('ExecSync of a missing binary reports the runtime exit code and message', async () => {
    const r = await execSync(env, id, ['/no/such/binary']);
    assert.notEqual(r.exit_code, 0);
    assert.match(r.stdout + r.stderr, /no such file|not found/i);
  });

  await t.test('ExecSync past its timeout is DEADLINE_EXCEEDED and the process in the sandbox is killed', async () => {
    const f = await failure(env.d.runtime('ExecSync', { container_id: id, cmd: ['/bin/sh', '-c', 'exec sleep 6666'], timeout: 1 }, 60_000));
    assert.equal(f.code, status.DEADLINE_EXCEEDED);
    await waitFor('the timed-out process is gone', async () => !(await execSync(env, id, ['ps'])).stdout.includes('sleep 6666'), 60_000);
  });

  await t.test('Exec over SPDY: cat with stdin, and exit codes', async () => {
    let { url } = await env.d.runtime('Exec', { container_id: id, cmd: ['cat'], stdin: true, stdout: true, stderr: true });
    let r = await runGoClient({ url: url, stdin: true, 'stdin-text': 'through gvisor\n' });
    assert.equal(r.stdout, 'through gvisor\n');
    assert.equal(streamStatus(r.errorStream).status, 'Success');
    ({ url } = await env.d.runtime('Exec', { container_id: id, cmd: ['/bin/sh', '-c', 'exit 4'], stdout: true, stderr: true }));
    r = await runGoClient({ url: url });
    assert.deepEqual(streamStatus(r.errorStream).details?.causes, [{ reason: 'ExitCode', message: '4' }]);
  });

  await t.test("Exec with a TTY: the terminal has the client's size", async () => {
    const { url } = await env.d.runtime('Exec', {
      container_id: id,
      cmd: ['/bin/sh', '-c', 's=; while [ -z "$s" ] || [ "$s" = "0 0" ]; do s=$(stty size 2>/dev/null); sleep 0.05; done; echo "size $s"'],
      tty: true,
      stdin: true,
      stdout: true,
    });
    const r = await runGoClient({ url: url, tty: true, stdin: true, 'hold-stdin': true, resize: '111x33', stderr: false });
    assert.match(r.stdout, /size 33 111/);
  });

  await t.test('a client vanishing mid-exec kills the process inside the sandbox', async () => {
    const { url } = await env.d.runtime('Exec', {
      container_id: id,
      cmd: ['/bin/sh', '-c', 'while true; do echo tick-gone; sleep 0.05; done'],
      stdout: true,
      stderr: true,
    });
    await runGoClient({ url: url, 'vanish-after': 20 });
    await waitFor('the process is gone', async () => !(await execSync(env, id, ['ps'])).stdout.includes('tick-gone'), 60_000);
  });

  await t.test('attach to a container that echoes its stdin', async () => {
    const echo = await env.createContainer(podId, 'echoer', { command: ['/bin/sh', '-c', 'while read -r l; do echo "echo: $l"; done'], stdin: true });
    await env.d.runtime('StartContainer', { container_id: echo }, 120_000);
    await env.waitState(echo, 'CONTAINER_RUNNING');
    const { url } = await env.d.runtime('Attach', { container_id: echo, stdin: true, stdout: true, stderr: true });
    const ws = new WebSocket(url.replace(/^http/, 'ws'), ['v4.channel.k8s.io']);
    let out = '';
    ws.on('message', (raw: Buffer) => {
      if (raw[0] === 1) out += raw.subarray(1).toString();
    });
    const closed = new Promise<void>((resolve) => ws.on('close', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('gv\n')]));
    await waitFor('the echo', () => out.includes('echo: gv\n'));
    ws.close();
    await closed;
    assert.equal((await env.status(echo)).state, 'CONTAINER_RUNNING', 'a detach leaves it running');
  });
});
