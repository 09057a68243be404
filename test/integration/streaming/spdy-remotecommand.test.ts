// remotecommand over SPDY/3.1 against an independent peer (Go, moby/spdystream).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { buildGoClient, runGoClient, streamStatus } from './go-client.js';
import { processGone, startServer, waitFor } from './harness.js';

const exec = (cmd: string[], extra: Partial<{ tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }> = {}) => ({
  containerId: 'host',
  cmd,
  tty: false,
  stdin: false,
  stdout: true,
  stderr: true,
  ...extra,
});

test('build the Go spdystream client once', { timeout: 120_000 }, async () => {
  await buildGoClient();
});

test('exec echo over SPDY v4 reports Success on the error stream', async (t) => {
  const { server } = await startServer(t);
  const r = await runGoClient({ url: server.getExecUrl(exec(['echo', 'hello'])) });
  assert.equal(r.httpStatus, 101);
  assert.equal(r.protocol, 'v4.channel.k8s.io');
  assert.equal(r.stdout, 'hello\n');
  assert.deepEqual(streamStatus(r.errorStream), { metadata: {}, status: 'Success' });
});

test('exec cat gets stdin and sees EOF when the client closes stdin', async (t) => {
  const { server } = await startServer(t);
  const r = await runGoClient({
    url: server.getExecUrl(exec(['cat'], { stdin: true })),
    stdin: true,
    'stdin-text': 'line one\nline two\n',
  });
  assert.equal(r.stdout, 'line one\nline two\n');
  assert.equal(streamStatus(r.errorStream).status, 'Success');
});

test('a non-zero exit code travels as a v4 Status with reason NonZeroExitCode', async (t) => {
  const { server } = await startServer(t);
  const r = await runGoClient({ url: server.getExecUrl(exec(['sh', '-c', 'echo oops >&2; exit 3'])) });
  assert.equal(r.stderr, 'oops\n');
  const status = streamStatus(r.errorStream);
  assert.equal(status.status, 'Failure');
  assert.equal(status.reason, 'NonZeroExitCode');
  assert.deepEqual(status.details?.causes, [{ reason: 'ExitCode', message: '3' }]);
});

test('a v3 client gets the failure as plain text and nothing on success', async (t) => {
  const { server } = await startServer(t);
  const fail = await runGoClient({ url: server.getExecUrl(exec(['sh', '-c', 'exit 7'])), protocols: 'v3.channel.k8s.io' });
  assert.equal(fail.protocol, 'v3.channel.k8s.io');
  assert.match(fail.errorStream, /non-zero exit code.*7/);
  const ok = await runGoClient({ url: server.getExecUrl(exec(['true'])), protocols: 'v2.channel.k8s.io' });
  assert.equal(ok.protocol, 'v2.channel.k8s.io');
  assert.equal(ok.errorStream, '');
});

test('an exec in an unknown container reports an internal error status', async (t) => {
  const { server } = await startServer(t);
  const r = await runGoClient({ url: server.getExecUrl({ ...exec(['true']), containerId: 'nope' }) });
  const status = streamStatus(r.errorStream);
  assert.equal(status.status, 'Failure');
  assert.match(status.message ?? '', /error executing command in container: container "nope" not found/);
});

test('a client offering no protocol we speak gets 403 and the accepted list', async (t) => {
  const { server, backend } = await startServer(t);
  const r = await runGoClient({ url: server.getExecUrl(exec(['true'])), protocols: 'v9.channel.k8s.io' });
  assert.equal(r.httpStatus, 403);
  assert.match(r.headers!['X-Accepted-Stream-Protocol-Versions'], /v4\.channel\.k8s\.io/);
  assert.equal(backend.execCount, 0);
});

test('exec with a tty applies the resize from the resize stream (stty size)', async (t) => {
  const { server } = await startServer(t);
  // Poll until the size arrived: the first resize races the process start, as with any runtime.
  const script = 'while [ "$(stty size)" = "0 0" ]; do sleep 0.05; done; stty size';
  const r = await runGoClient({
    url: server.getExecUrl(exec(['sh', '-c', script], { tty: true, stderr: false })),
    tty: true,
    resize: '100x40',
    stderr: false,
  });
  assert.equal(r.stdout.trim(), '40 100');
  assert.equal(streamStatus(r.errorStream).status, 'Success');
});

test('20 concurrent execs each get their own output', { timeout: 120_000 }, async (t) => {
  const { server } = await startServer(t);
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) => runGoClient({ url: server.getExecUrl(exec(['sh', '-c', `echo exec-${i}`])) }, 90_000)),
  );
  results.forEach((r, i) => {
    assert.equal(r.stdout, `exec-${i}\n`);
    assert.equal(streamStatus(r.errorStream).status, 'Success');
  });
});

test('50 MB out over SPDY does not stall on flow control', { timeout: 120_000 }, async (t) => {
  const { server } = await startServer(t);
  const size = 50 * 1024 * 1024;
  const line = 'abcdefghijklmnopqrstuvwxyz0123456789\n';
  const expected = createHash('sha256');
  const block = Buffer.from(line.repeat(Math.ceil(65536 / line.length)));
  const cycle = Buffer.from(line.repeat(block.length / line.length));
  let left = size;
  while (left > 0) {
    const n = Math.min(left, cycle.length);
    expected.update(cycle.subarray(0, n));
    left -= n;
  }
  const r = await runGoClient({ url: server.getExecUrl(exec(['sh', '-c', `yes ${line.trim()} | head -c ${size}`])) }, 110_000);
  assert.equal(r.stdoutLen, size);
  assert.equal(r.stdoutSha256, expected.digest('hex'));
  assert.equal(streamStatus(r.errorStream).status, 'Success');
});

test('20 MB in through cat comes back byte for byte', { timeout: 120_000 }, async (t) => {
  const { server } = await startServer(t);
  const size = 20 * 1024 * 1024;
  // The Go client's pattern: 'a'+i%26, with '\n' where i%61 == 60.
  const expected = createHash('sha256');
  const buf = Buffer.alloc(61 * 26 * 64);
  for (let i = 0; i < buf.length; i++) buf[i] = i % 61 === 60 ? 10 : 97 + (i % 26);
  for (let off = 0; off < size; off += buf.length) expected.update(buf.subarray(0, Math.min(buf.length, size - off)));
  const r = await runGoClient({ url: server.getExecUrl(exec(['cat'], { stdin: true })), stdin: true, 'stdin-gen': size }, 110_000);
  assert.equal(r.stdoutLen, size);
  assert.equal(r.stdoutSha256, expected.digest('hex'));
});

test('a client vanishing mid-stream gets its process killed and the session dropped', async (t) => {
  const { server, backend } = await startServer(t);
  const r = await runGoClient({ url: server.getExecUrl(exec(['yes'])), 'vanish-after': 1024 * 1024 });
  assert.ok(r.stdoutLen >= 1024 * 1024);
  assert.equal(backend.execPids.length, 1);
  const pid = backend.execPids[0];
  await waitFor('the exec process to die', () => processGone(pid));
  await waitFor('the session to end', () => server.activeSessions === 0);
});

test('attach over SPDY talks to the running process and detaching leaves it running', async (t) => {
  const { server, backend } = await startServer(t);
  const c = backend.startContainer('ctr1');
  const attach = { containerId: 'ctr1', tty: false, stdin: true, stdout: true, stderr: false };
  const r = await runGoClient({ url: server.getAttachUrl(attach), stdin: true, stderr: false, 'stdin-text': 'hi\n', 'vanish-after': 7 });
  assert.equal(r.stdout.slice(0, 7), 'got hi\n');
  await waitFor('the attach session to end', () => server.activeSessions === 0);
  assert.equal(c.child.exitCode, null, 'the container survives a detach');
  const again = await runGoClient({ url: server.getAttachUrl(attach), stdin: true, stderr: false, 'stdin-text': 'again\n', 'vanish-after': 10 });
  assert.equal(again.stdout.slice(0, 10), 'got again\n');
});
