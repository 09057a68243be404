// A daemon whose start fails at a late step (a port taken) undoes every earlier step —
// image-store lock, netns dir mount, streaming listener, CRI socket — and exits non-zero
// naming what failed, so the next start with the problem fixed succeeds (issue 10 item 10).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { test } from 'node:test';
import YAML from 'yaml';
import { startDaemon, type TestDaemon } from '../../helpers/daemon.js';

/** A listener holding a loopback port, closed in t.after. */
async function occupyPort(): Promise<{ server: net.Server; address: string }> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return { server, address: `127.0.0.1:${(server.address() as net.AddressInfo).port}` };
}

function setConfig(d: TestDaemon, patch: Record<string, unknown>): void {
  Object.assign(d.config, patch);
  fs.writeFileSync(d.configPath, YAML.stringify(d.config));
}

function mountsUnder(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined && (p === dir || p.startsWith(`${dir}/`)));
}

async function assertFailedStartLeavesNothing(d: TestDaemon, address: string, step: RegExp): Promise<void> {
  await assert.rejects(d.start(), (e: Error) => {
    // It exits (not hangs until the start timeout) with a non-zero code…
    assert.match(e.message, /daemon exited with [1-9]\d* while starting/);
    return true;
  });
  assert.notEqual(await d.exited(), 0);
  // …naming the step and the address in what it prints.
  assert.match(d.stderr, new RegExp(`sandlot: starting the daemon: .*${step.source}.*${address.replace(/\./g, '\\.')}.*EADDRINUSE`));
  assert.equal(fs.existsSync(d.socket), false, 'the CRI socket is removed');
  assert.deepEqual(mountsUnder(d.stateDir), [], 'no mount left under the state dir');
  assert.deepEqual(mountsUnder(d.rootDir), [], 'no mount left under the root dir');
}

test('a daemon whose metrics port is taken (EADDRINUSE) undoes its start and exits non-zero; the next start succeeds', { timeout: 180_000 }, async (t) => {
  const d = await startDaemon();
  t.after(() => d.cleanup());
  assert.equal(await d.stop(), 0);
  const taken = await occupyPort();
  t.after(() => new Promise<void>((r) => taken.server.close(() => r())));

  setConfig(d, { metrics_address: taken.address });
  await assertFailedStartLeavesNothing(d, taken.address, /serving metrics on/);

  // No image-store lock, no socket, no mount holds the next start back.
  setConfig(d, { metrics_address: '127.0.0.1:0' });
  await d.start();
  const v = await d.runtime('Version', {});
  assert.equal(v.runtime_name, 'sandlot');
  assert.equal(await d.stop(), 0);
});

test(
  'a daemon whose streaming port is taken undoes images, network and recovery and exits non-zero; the next start succeeds',
  { timeout: 180_000 },
  async (t) => {
    const d = await startDaemon();
    t.after(() => d.cleanup());
    assert.equal(await d.stop(), 0);
    const taken = await occupyPort();
    t.after(() => new Promise<void>((r) => taken.server.close(() => r())));

    setConfig(d, { streaming_address: taken.address });
    await assertFailedStartLeavesNothing(d, taken.address, /starting streaming server on/);

    setConfig(d, { streaming_address: '127.0.0.1:0' });
    await d.start();
    const st = await d.runtime('Status', {});
    assert.ok(Array.isArray(st.status.conditions));
    assert.equal(await d.stop(), 0);
  },
);

test('the failed start also works when it is the very first one (fresh directories)', { timeout: 180_000 }, async (t) => {
  const taken = await occupyPort();
  t.after(() => new Promise<void>((r) => taken.server.close(() => r())));
  // startDaemon cleans up and rethrows when the first start fails: the error is what we check.
  await assert.rejects(startDaemon({ config: { metrics_address: taken.address } }), (e: Error) => {
    assert.match(e.message, /daemon exited with [1-9]\d* while starting/);
    assert.match(e.message, new RegExp(`serving metrics on "${taken.address.replace(/\./g, '\\.')}".*EADDRINUSE`));
    return true;
  });
});
