import assert from 'node:assert/strict';
import { test } from 'node:test';
import { validateExecRequest, validatePortForwardRequest, validateAttachRequest } from '../../../src/streaming/requests.js';
import { TokenStore } from '../../../src/streaming/tokens.js';
import { exitCodeStatus, encodeStatus, successStatus } from '../../../src/streaming/status.js';
import { parseListenAddress } from '../../../src/streaming/server.js';

const exec = { containerId: 'c1', cmd: ['ls'], tty: false, stdin: false, stdout: true, stderr: false };

test('a token is single use and bound to its request', () => {
  const store = new TokenStore();
  const token = store.issue({ kind: 'exec', request: exec });
  assert.deepEqual(store.consume(token), { kind: 'exec', request: exec });
  assert.equal(store.consume(token), undefined);
  assert.equal(store.consume('forged'), undefined);
});

test('a token expires after its lifetime', () => {
  let now = 0;
  const store = new TokenStore({ now: () => now });
  const token = store.issue({ kind: 'exec', request: exec });
  now = 60_000;
  assert.equal(store.consume(token), undefined);
});

test('tokens are unguessable and distinct', () => {
  const store = new TokenStore();
  const a = store.issue({ kind: 'exec', request: exec });
  const b = store.issue({ kind: 'exec', request: exec });
  assert.notEqual(a, b);
  assert.match(a, /^[A-Za-z0-9_-]{32}$/);
});

test('bad requests name the field and value', () => {
  assert.throws(() => validateExecRequest({ ...exec, cmd: [] }), { name: 'InvalidArgumentError', message: /cmd must not be empty/ });
  assert.throws(() => validateExecRequest({ ...exec, containerId: '' }), /container_id must not be empty/);
  assert.throws(() => validateExecRequest({ ...exec, stdout: false }), /one of stdin, stdout, or stderr must be set/);
  assert.throws(() => validateAttachRequest({ containerId: 'c', tty: false, stdin: false, stdout: false, stderr: false }), /one of stdin/);
  assert.throws(() => validatePortForwardRequest({ podSandboxId: 'p', ports: [0] }), /port 0 is not in 1\.\.65535/);
  assert.throws(() => validatePortForwardRequest({ podSandboxId: 'p', ports: [65536] }), /port 65536/);
  assert.deepEqual(validatePortForwardRequest({ podSandboxId: 'p', ports: [80, 65535] }).ports, [80, 65535]);
});

test('exit statuses are k8s Status JSON for v4 and bare messages before', () => {
  assert.equal(encodeStatus(successStatus(), true)!.toString(), '{"metadata":{},"status":"Success"}');
  assert.equal(encodeStatus(successStatus(), false), undefined);
  const failure = JSON.parse(encodeStatus(exitCodeStatus(137), true)!.toString()) as { reason: string; details: { causes: unknown[] } };
  assert.deepEqual(failure.details.causes, [{ reason: 'ExitCode', message: '137' }]);
  assert.equal(failure.reason, 'NonZeroExitCode');
  assert.match(encodeStatus(exitCodeStatus(1), false)!.toString(), /non-zero exit code/);
});

test('listen addresses parse as host:port, including IPv6', () => {
  assert.deepEqual(parseListenAddress('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  assert.deepEqual(parseListenAddress('[::1]:10010'), { host: '::1', port: 10010 });
  assert.throws(() => parseListenAddress('localhost'), { name: 'InvalidArgumentError' });
  assert.throws(() => parseListenAddress('h:70000'), /not host:port/);
});
