// ExecSync, Exec and Attach through the daemon on real runc containers (S18, S4): the
// URLs the daemon hands out are driven by an independent SPDY peer (Go spdystream, as
// client-go) and by the `ws` package. One daemon and pod for the file; every container
// and pod is removed at the end even when a check failed.
import { credentials, Metadata, status, type Client, type ServiceClientConstructor } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { alive, failure, makeContainerEnv, waitFor, type ContainerEnv } from '../container/container-env.js';
import { loadCriClientConstructors } from '../../../src/cri/proto.js';
import { runGoClient, streamStatus } from './go-client.js';

/** RuntimeService.ExecSync as a generated client has it (callback form). */
type ExecSyncCall = (
  req: Record<string, unknown>,
  md: Metadata,
  opts: { deadline: Date },
  cb: (err: Error | null, res: Record<string, unknown>) => void,
) => void;

async function runningContainer(env: ContainerEnv, podId: string, name: string, extra: Record<string, unknown> = {}): Promise<string> {
  const id = await env.createContainer(podId, name, { command: ['/bin/sh', '-c', 'sleep 100000'], ...extra });
  await env.d.runtime('StartContainer', { container_id: id }, 60_000);
  await env.waitState(id, 'CONTAINER_RUNNING');
  return id;
}

async function execSync(env: ContainerEnv, id: string, cmd: string[], timeout = 0): Promise<{ stdout: string; stderr: string; exit_code: number }> {
  const r = await env.d.runtime('ExecSync', { container_id: id, cmd, timeout }, 120_000);
  return { stdout: Buffer.from(r.stdout).toString(), stderr: Buffer.from(r.stderr).toString(), exit_code: r.exit_code };
}

interface WsSession {
  channels: Map<number, Buffer[]>;
  closed: Promise<number>;
  ws: WebSocket;
}

async function wsConnect(url: string, protocol = 'v4.channel.k8s.io'): Promise<WsSession> {
  const ws = new WebSocket(url.replace(/^http/, 'ws'), [protocol]);
  const channels = new Map<number, Buffer[]>();
  ws.on('message', (raw: Buffer) => {
    const ch = raw[0];
    if (!channels.has(ch)) channels.set(ch, []);
    channels.get(ch)!.push(raw.subarray(1));
  });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, channels, closed };
}

const wsText = (s: WsSession, ch: number): string => Buffer.concat(s.channels.get(ch) ?? []).toString();

test('exec, ExecSync and attach in runc containers through the daemon', { timeout: 600_000 }, async (t) => {
  const env = await makeContainerEnv(t);
  const podId = await env.runPod('exec');
  const id = await runningContainer(env, podId, 'sleeper');

  await t.test('ExecSync returns stdout, stderr and the exit code', async () => {
    const r = await execSync(env, id, ['/bin/sh', '-c', 'echo out; echo err >&2; exit 7']);
    assert.deepEqual(r, { stdout: 'out\n', stderr: 'err\n', exit_code: 7 });
    const ok = await execSync(env, id, ['echo', 'hello']);
    assert.deepEqual(ok, { stdout: 'hello\n', stderr: '', exit_code: 0 });
  });

  await t.test('ExecSync runs with the container environment, in its namespaces', async () => {
    const r = await execSync(env, id, ['/bin/sh', '-c', 'echo $PATH; hostname; cat /proc/1/cmdline | tr "\\0" " "']);
    assert.equal(r.exit_code, 0);
    const [pathLine, host, init] = r.stdout.split('\n');
    assert.match(pathLine, /\/bin/);
    assert.equal(host, 'exec');
    // pid: CONTAINER: PID 1 is the container's own command, not the host's init.
    assert.match(init, /sleep 100000/);
  });

  await t.test('ExecSync of a missing binary reports the runtime exit code and message, not an error status', async () => {
    const r = await execSync(env, id, ['/no/such/binary']);
    assert.notEqual(r.exit_code, 0);
    assert.match(r.stderr, /no such file or directory|not found/i);
  });

  await t.test('ExecSync output is bounded at 16 MiB per stream', async () => {
    // A client that takes messages over gRPC's default 4 MiB.
    const RuntimeService = loadCriClientConstructors().RuntimeService as ServiceClientConstructor;
    const client = new RuntimeService(`unix://${env.d.socket}`, credentials.createInsecure(), {
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    }) as unknown as Client & { ExecSync: ExecSyncCall };
    const r = await new Promise<Record<string, unknown>>((resolve, reject) => {
      client.ExecSync(
        { container_id: id, cmd: ['/bin/sh', '-c', 'head -c 17825792 /dev/zero; echo done >&2'], timeout: 0 },
        new Metadata(),
        { deadline: new Date(Date.now() + 120_000) },
        (err: Error | null, res: Record<string, unknown>) => (err ? reject(err) : resolve(res)),
      );
    }).finally(() => client.close());
    assert.equal((r.stdout as Buffer).length, 16 * 1024 * 1024);
    assert.equal(Buffer.from(r.stderr as Buffer).toString(), 'done\n');
    assert.equal(r.exit_code, 0);
    await waitFor('the drop is logged', () => /ExecSync output over the limit/.test(env.d.stderr) && env.d.stderr.includes(id));
  });

  await t.test('ExecSync past its timeout is DEADLINE_EXCEEDED and the process is killed', async () => {
    const f = await failure(env.d.runtime('ExecSync', { container_id: id, cmd: ['/bin/sh', '-c', 'exec sleep 7777'], timeout: 1 }, 60_000));
    assert.equal(f.code, status.DEADLINE_EXCEEDED);
    assert.match(f.details, /timed out after 1 s/);
    await waitFor('the timed-out process is gone', async () => !(await execSync(env, id, ['ps'])).stdout.includes('sleep 7777'));
  });

  await t.test('an ExecSync whose caller gives up (its deadline passes) is killed', async () => {
    const f = await failure(env.d.runtime('ExecSync', { container_id: id, cmd: ['/bin/sh', '-c', 'exec sleep 5555'], timeout: 0 }, 1_500));
    assert.equal(f.code, status.DEADLINE_EXCEEDED);
    await waitFor('the abandoned process is gone', async () => !(await execSync(env, id, ['ps'])).stdout.includes('sleep 5555'), 60_000);
  });

  await t.test('bad input: empty cmd, unknown container, empty id, negative timeout', async () => {
    let f = await failure(env.d.runtime('ExecSync', { container_id: id, cmd: [] }));
    assert.equal(f.code, status.INVALID_ARGUMENT);
    assert.match(f.details, /cmd must not be empty/);
    f = await failure(env.d.runtime('ExecSync', { container_id: 'f'.repeat(64), cmd: ['true'] }));
    assert.equal(f.code, status.NOT_FOUND);
    f = await failure(env.d.runtime('ExecSync', { container_id: '', cmd: ['true'] }));
    assert.equal(f.code, status.INVALID_ARGUMENT);
    f = await failure(env.d.runtime('ExecSync', { container_id: id, cmd: ['true'], timeout: -1 }));
    assert.equal(f.code, status.INVALID_ARGUMENT);
    f = await failure(env.d.runtime('Exec', { container_id: id, cmd: [], stdout: true }));
    assert.equal(f.code, status.INVALID_ARGUMENT);
    f = await failure(env.d.runtime('Exec', { container_id: 'e'.repeat(64), cmd: ['true'], stdout: true }));
    assert.equal(f.code, status.NOT_FOUND);
    f = await failure(env.d.runtime('Exec', { container_id: id, cmd: ['true'] }));
    assert.equal(f.code, status.INVALID_ARGUMENT, 'no stdio at all');
    f = await failure(env.d.runtime('Attach', { container_id: 'e'.repeat(64), stdout: true }));
    assert.equal(f.code, status.NOT_FOUND);
  });

  await t.test('Exec over SPDY: echo, cat with stdin, exit codes', async () => {
    let { url } = await env.d.runtime('Exec', { container_id: id, cmd: ['echo', 'hi there'], stdout: true, stderr: true });
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/exec\//);
    let r = await runGoClient({ url: url });
    assert.equal(r.stdout, 'hi there\n');
    assert.equal(streamStatus(r.errorStream).status, 'Success');

    ({ url } = await env.d.runtime('Exec', { container_id: id, cmd: ['cat'], stdin: true, stdout: true, stderr: true }));
    r = await runGoClient({ url: url, stdin: true, 'stdin-text': 'through cat\n' });
    assert.equal(r.stdout, 'through cat\n', 'stdin reaches the process and its end is EOF');
    assert.equal(streamStatus(r.errorStream).status, 'Success');

    ({ url } = await env.d.runtime('Exec', { container_id: id, cmd: ['/bin/sh', '-c', 'echo bad >&2; exit 3'], stdout: true, stderr: true }));
    r = await runGoClient({ url: url });
    assert.equal(r.stderr, 'bad\n');
    const st = streamStatus(r.errorStream);
    assert.equal(st.reason, 'NonZeroExitCode');
    assert.deepEqual(st.details?.causes, [{ reason: 'ExitCode', message: '3' }]);

    // The URL is single-use.
    r = await runGoClient({ url: url });
    assert.equal(r.httpStatus, 404);
  });

  await t.test('Exec with a TTY over SPDY: the terminal has the size the client set, and resizes', async () => {
    const { url } = await env.d.runtime('Exec', {
      container_id: id,
      // The first size may land just after the process started (the exec waits only a
      // moment for it): wait for it, then print it.
      cmd: [
        '/bin/sh',
        '-c',
        's=; while [ -z "$s" ] || [ "$s" = "0 0" ]; do s=$(stty size 2>/dev/null); sleep 0.05; done; echo "size $s"; [ -t 0 ] && echo tty',
      ],
      tty: true,
      stdin: true,
      stdout: true,
    });
    const r = await runGoClient({ url: url, tty: true, stdin: true, 'hold-stdin': true, resize: '123x45', stderr: false });
    assert.match(r.stdout, /size 45 123\r?\n/);
    assert.match(r.stdout, /tty\r?\n/);
    assert.equal(streamStatus(r.errorStream).status, 'Success');
  });

  await t.test('Exec over WebSocket v4: stdout, stderr, stdin and the exit status', async () => {
    const { url } = await env.d.runtime('Exec', {
      container_id: id,
      cmd: ['/bin/sh', '-c', 'read l; echo "got $l"; echo e >&2; exit 5'],
      stdin: true,
      stdout: true,
      stderr: true,
    });
    const s = await wsConnect(url);
    s.ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('line\n')]));
    assert.equal(await s.closed, 1000);
    assert.equal(wsText(s, 1), 'got line\n');
    assert.equal(wsText(s, 2), 'e\n');
    const st = streamStatus(wsText(s, 3));
    assert.deepEqual(st.details?.causes, [{ reason: 'ExitCode', message: '5' }]);
  });

  await t.test('a client vanishing mid-exec kills the exec process', async () => {
    const { url } = await env.d.runtime('Exec', {
      container_id: id,
      cmd: ['/bin/sh', '-c', 'while true; do echo tick-vanish; sleep 0.05; done'],
      stdout: true,
      stderr: true,
    });
    const r = await runGoClient({ url: url, 'vanish-after': 20 });
    assert.ok(r.stdoutLen >= 20);
    await waitFor("the vanished client's process is gone", async () => !(await execSync(env, id, ['ps'])).stdout.includes('tick-vanish'), 60_000);
  });

  await t.test('a client vanishing mid-exec with a TTY kills the exec process', async () => {
    const { url } = await env.d.runtime('Exec', {
      container_id: id,
      cmd: ['/bin/sh', '-c', 'while true; do echo tick-tty; sleep 0.05; done'],
      tty: true,
      stdin: true,
      stdout: true,
    });
    const r = await runGoClient({ url: url, tty: true, stdin: true, 'hold-stdin': true, stderr: false, 'vanish-after': 20 });
    assert.ok(r.stdoutLen >= 20);
    await waitFor('the TTY process is gone', async () => !(await execSync(env, id, ['ps'])).stdout.includes('tick-tty'), 60_000);
  });

  await t.test('20 concurrent execs each get their own output and exit code', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const { url } = await env.d.runtime('Exec', { container_id: id, cmd: ['/bin/sh', '-c', `echo n${i}; exit ${i % 4}`], stdout: true, stderr: true });
        return runGoClient({ url: url }, 180_000);
      }),
    );
    results.forEach((r, i) => {
      assert.equal(r.stdout, `n${i}\n`);
      if (i % 4 === 0) assert.equal(streamStatus(r.errorStream).status, 'Success');
      else assert.deepEqual(streamStatus(r.errorStream).details?.causes, [{ reason: 'ExitCode', message: String(i % 4) }]);
    });
  });

  await t.test('attach to a container that echoes its stdin, over SPDY and WebSocket; a detach leaves it running', async () => {
    const catId = await runningContainer(env, podId, 'echoer', { command: ['/bin/sh', '-c', 'while read -r l; do echo "echo: $l"; done'], stdin: true });
    let { url } = await env.d.runtime('Attach', { container_id: catId, stdin: true, stdout: true, stderr: true });
    assert.match(url, /\/attach\//);
    const s = await wsConnect(url);
    s.ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('one\n')]));
    await waitFor('the echo', () => wsText(s, 1).includes('echo: one\n'));
    s.ws.terminate(); // the client vanishes: a detach
    await s.closed;
    const st = await env.status(catId);
    assert.equal(st.state, 'CONTAINER_RUNNING', 'a detach leaves the container running');

    ({ url } = await env.d.runtime('Attach', { container_id: catId, stdin: true, stdout: true, stderr: true }));
    const r = await runGoClient({ url: url, stdin: true, 'stdin-text': 'two\n', 'vanish-after': 10 });
    assert.match(r.stdout, /echo: two\n/);
    assert.equal((await env.status(catId)).state, 'CONTAINER_RUNNING');
  });

  await t.test("attach with stdin_once: the client's EOF closes the container's stdin and the attach ends with the container", async () => {
    const once = await runningContainer(env, podId, 'once', { command: ['cat'], stdin: true, stdin_once: true });
    const { url } = await env.d.runtime('Attach', { container_id: once, stdin: true, stdout: true, stderr: true });
    const r = await runGoClient({ url: url, stdin: true, 'stdin-text': 'last words\n' });
    assert.equal(r.stdout, 'last words\n');
    const st = await env.waitState(once, 'CONTAINER_EXITED');
    assert.equal(st.exit_code, 0);
  });

  await t.test('TTY exec and attach resize the terminal mid-session (WebSocket resize channel)', async () => {
    const ttyId = await runningContainer(env, podId, 'ttyer', {
      command: ['/bin/sh', '-c', 'while read -r l; do echo "size=$(stty size 2>/dev/null)"; done'],
      stdin: true,
      tty: true,
    });
    const resizeUntil = async (s: WsSession, w: number, h: number): Promise<void> => {
      s.ws.send(Buffer.concat([Buffer.from([4]), Buffer.from(JSON.stringify({ Width: w, Height: h }))]));
      // The resize and the next line race inside the runtime/monitor: ask until it shows.
      await waitFor(`size ${h} ${w}`, async () => {
        s.ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('x\n')]));
        await new Promise((r) => setTimeout(r, 100));
        return wsText(s, 1).includes(`size=${h} ${w}`);
      });
    };
    let { url } = await env.d.runtime('Attach', { container_id: ttyId, stdin: true, stdout: true, tty: true });
    const a = await wsConnect(url);
    await resizeUntil(a, 88, 33);
    await resizeUntil(a, 101, 44);
    a.ws.close();
    await a.closed;

    ({ url } = await env.d.runtime('Exec', {
      container_id: id,
      cmd: ['/bin/sh', '-c', 'while read -r l; do echo "size=$(stty size 2>/dev/null)"; done'],
      tty: true,
      stdin: true,
      stdout: true,
    }));
    const e = await wsConnect(url);
    await resizeUntil(e, 70, 20);
    await resizeUntil(e, 90, 30);
    e.ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('exit\n')]));
    e.ws.close();
    await e.closed;
  });

  await t.test('S4: exec in a created (not yet started) container runs; attach to it is FAILED_PRECONDITION', async () => {
    const created = await env.createContainer(podId, 'created', { command: ['/bin/sh', '-c', 'sleep 100000'] });
    assert.deepEqual(await execSync(env, created, ['echo', 'in created']), { stdout: 'in created\n', stderr: '', exit_code: 0 });
    const f = await failure(env.d.runtime('Attach', { container_id: created, stdout: true }));
    assert.equal(f.code, status.FAILED_PRECONDITION);
    assert.match(f.details, /cannot attach to container ".*" in state created/);
  });

  await t.test('exec and attach in a stopped container are FAILED_PRECONDITION with the S4 wording', async () => {
    const doneId = await env.createContainer(podId, 'done', { command: ['true'] });
    await env.d.runtime('StartContainer', { container_id: doneId }, 60_000);
    await env.waitState(doneId, 'CONTAINER_EXITED');
    for (const [method, req] of [
      ['ExecSync', { container_id: doneId, cmd: ['true'] }],
      ['Exec', { container_id: doneId, cmd: ['true'], stdout: true }],
    ] as const) {
      const f = await failure(env.d.runtime(method, req));
      assert.equal(f.code, status.FAILED_PRECONDITION, method);
      assert.match(f.details, new RegExp(`cannot exec in container "${doneId}" in state stopped`));
    }
    const f = await failure(env.d.runtime('Attach', { container_id: doneId, stdout: true }));
    assert.equal(f.code, status.FAILED_PRECONDITION);
    assert.match(f.details, /cannot attach to container ".*" in state stopped/);
  });

  await t.test('no exec scratch files are left behind', async () => {
    const fs = await import('node:fs');
    const dir = `${env.d.stateDir}/exec`;
    assert.deepEqual(fs.existsSync(dir) ? fs.readdirSync(dir) : [], []);
    assert.ok(alive(process.pid));
  });
});
