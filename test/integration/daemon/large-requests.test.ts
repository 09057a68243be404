// Large CRI requests (issue 11 item 1): requests up to the kubelet's 16 MiB are answered,
// and so is the next small call on the same connection, whether the connection needs
// the :authority rewrite (Go clients that send the socket path) or not. A failure whose
// message would echo a huge value (a 1 MiB pod_cidr) is answered too, its message cut:
// Node's HTTP/2 layer cannot send a trailer block over 64 KiB and left such calls, and
// every later call of the connection, unanswered.
import { status } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { CriClient } from '../../../src/cli/client.js';
import { MAX_STATUS_DETAILS } from '../../../src/cri/status.js';
import { buildGo } from '../../helpers/go-build.js';
import { REPO_ROOT, startDaemon } from '../../helpers/daemon.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
/** A VersionRequest's `version` of this length makes a message of exactly 16 MiB (tag + 4-byte length). */
const LARGEST_VERSION = 16 * MiB - 5;
const CALL_TIMEOUT_MS = 120_000;

async function rejects(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code: number; details: string };
  }
  assert.fail('the call succeeded');
}

test('node grpc-js client: requests of 30 KiB to 16 MiB are answered, then a small one on the same connection', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const c = new CriClient(d.socket);
  t.after(() => c.close());
  for (const n of [30_000, 60_000, 70_000, 200_000, MiB, 5 * MiB, LARGEST_VERSION]) {
    const v = await c.runtimeCall('Version', { version: 'x'.repeat(n) }, { timeoutMs: CALL_TIMEOUT_MS });
    assert.equal(v.runtime_name, 'sandlot', `Version with a ${n}-byte version`);
    const small = await c.runtimeCall('Version', { version: 'v1' }, { timeoutMs: CALL_TIMEOUT_MS });
    assert.equal(small.runtime_name, 'sandlot', `the small call after the ${n}-byte one`);
  }
});

test('node grpc-js client: a message over 16 MiB is refused with RESOURCE_EXHAUSTED, and the connection still serves', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const c = new CriClient(d.socket);
  t.after(() => c.close());
  const e = await rejects(c.runtimeCall('Version', { version: 'x'.repeat(16 * MiB + 10) }, { timeoutMs: CALL_TIMEOUT_MS }));
  assert.equal(e.code, status.RESOURCE_EXHAUSTED, e.details);
  assert.equal((await c.runtimeCall('Version', {}, { timeoutMs: CALL_TIMEOUT_MS })).runtime_name, 'sandlot');
});

test('node grpc-js client: failures that name a huge value (UpdateRuntimeConfig, CreateContainer with 1 MiB env and annotations) are answered with a cut message', async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  const c = new CriClient(d.socket);
  t.after(() => c.close());
  for (const n of [30_000, 60_000, 100_000, MiB, 8 * MiB]) {
    const e = await rejects(
      c.runtimeCall('UpdateRuntimeConfig', { runtime_config: { network_config: { pod_cidr: 'x'.repeat(n) } } }, { timeoutMs: CALL_TIMEOUT_MS }),
    );
    assert.equal(e.code, status.INVALID_ARGUMENT, `pod_cidr of ${n} bytes: ${String(e.details).slice(0, 200)}`);
    assert.match(e.details, /pod_cidr/);
    assert.ok(e.details.length <= MAX_STATUS_DETAILS, `message of ${e.details.length} characters`);
    assert.equal((await c.runtimeCall('Version', {}, { timeoutMs: CALL_TIMEOUT_MS })).runtime_name, 'sandlot');
  }
  const big = 'v'.repeat(MiB);
  const e = await rejects(
    c.runtimeCall(
      'CreateContainer',
      {
        pod_sandbox_id: 'f'.repeat(64),
        config: {
          metadata: { name: 'big' },
          image: { image: 'busybox' },
          envs: [{ key: 'BIG', value: big }],
          annotations: { big },
        },
        sandbox_config: { metadata: { name: 'p', namespace: 'default', uid: 'u' } },
      },
      { timeoutMs: CALL_TIMEOUT_MS },
    ),
  );
  assert.notEqual(e.code, status.DEADLINE_EXCEEDED, e.details);
  assert.notEqual(e.code, status.INTERNAL, e.details);
  assert.equal((await c.runtimeCall('Version', {}, { timeoutMs: CALL_TIMEOUT_MS })).runtime_name, 'sandlot');
});

for (const authorityPath of [false, true]) {
  const how = authorityPath ? 'the socket path as :authority (rewritten by the front)' : 'the usual unix:// target';
  test(`Go grpc client with ${how}: requests of 30 KiB to 16 MiB and huge-value failures are answered on one connection`, async (t) => {
    const bin = buildGo(path.join(REPO_ROOT, 'test/helpers/go-cri-large'), 'go-cri-large');
    const d = await startDaemon();
    t.after(() => d.cleanup());
    const flags = [...(authorityPath ? ['-authority-path'] : []), '-timeout', `${CALL_TIMEOUT_MS}ms`];
    const sizes = [30_000, 60_000, 70_000, 200_000, MiB, 100, LARGEST_VERSION, 100].map(String);
    const ok = await run(bin, [...flags, d.socket, ...sizes], { timeout: 4 * CALL_TIMEOUT_MS, maxBuffer: MiB });
    assert.deepEqual(
      ok.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(' ').slice(0, 2).join(' ')),
      sizes.map((s) => `${s} ok`),
    );
    const failing = ['60000', '100000', String(MiB), '100'];
    const bad = await run(bin, [...flags, '-call', 'update', d.socket, ...failing], {
      timeout: 4 * CALL_TIMEOUT_MS,
      maxBuffer: MiB,
    });
    const lines = bad.stdout.trim().split('\n');
    assert.equal(lines.length, failing.length, bad.stdout + bad.stderr);
    for (const [i, line] of lines.entries()) {
      const [size, what, len] = line.split(' ');
      assert.equal(size, failing[i]);
      assert.equal(what, 'invalid-argument');
      assert.ok(Number(len) <= MAX_STATUS_DETAILS * 4, line);
    }
  });
}
