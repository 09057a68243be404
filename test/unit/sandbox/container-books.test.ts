// The container layer's pure parts: S4 transitions and wording, CRI states and reasons,
// stop signals, the per-pod name reservation with retry-waits, the metadata store
// (atomic writes, prefix lookup, unloadable files kept), CreateContainer validation and
// conmon's arguments for stdin/tty/shim runtimes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AlreadyExistsError, FailedPreconditionError, InternalError, InvalidArgumentError, NotFoundError } from '../../../src/errors.js';
import { parseCreateContainer } from '../../../src/cri/container-handlers.js';
import { Conmon, conmonFiles, reopenConmonLog, type ConmonCreateOptions } from '../../../src/oci/conmon.js';
import type { RuntimeDriver } from '../../../src/oci/runtime.js';
import {
  changeState,
  containerNameKey,
  criContainerState,
  exitReason,
  normalizeStopSignal,
  requireState,
  type ContainerRecord,
} from '../../../src/sandbox/container/container.js';
import { NameIndex } from '../../../src/sandbox/store/name-index.js';
import { ContainerStore } from '../../../src/sandbox/store/container-store.js';

const ID = 'ab'.repeat(32);

function record(id = ID, over: Partial<ContainerRecord> = {}): ContainerRecord {
  return {
    version: 1,
    id,
    podId: 'cd'.repeat(32),
    state: 'creating',
    metadata: { name: 'c', attempt: 0 },
    configHash: 'h',
    createdAt: '1',
    startedAt: '0',
    finishedAt: '0',
    exitCode: 0,
    reason: '',
    message: '',
    image: 'busybox',
    imageId: 'sha256:x',
    labels: {},
    annotations: {},
    logPath: '',
    monitorLogPath: '/x',
    mounts: [],
    resources: {},
    oomScoreAdj: undefined,
    user: { uid: 0, gid: 0, supplementalGroups: [] },
    stopSignal: 'SIGTERM',
    runtimeHandler: 'runc',
    runtimeType: 'oci',
    cgroupPath: '/p/c',
    terminationMessagePath: undefined,
    tty: false,
    stdin: false,
    stdinOnce: false,
    pid: 0,
    conmonPid: 0,
    paths: {} as ContainerRecord['paths'],
    rootfsPrepared: false,
    ...over,
  };
}

test('S4: legal transitions pass, illegal ones are bugs, guards name the state', () => {
  const r = record();
  changeState(r, 'created');
  changeState(r, 'running');
  assert.throws(() => changeState(r, 'created'), InternalError);
  changeState(r, 'stopped');
  assert.throws(() => changeState(r, 'running'), /from state stopped to running: illegal transition/);
  assert.throws(
    () => requireState({ id: 'abc', state: 'running' }, 'start', 'created'),
    (e: unknown) => e instanceof FailedPreconditionError && e.message === 'cannot start container "abc" in state running',
  );
  requireState({ id: 'abc', state: 'created' }, 'start', 'created');
});

test('CRI state, reason and stop signal mapping', () => {
  assert.equal(criContainerState('created'), 'CONTAINER_CREATED');
  assert.equal(criContainerState('running'), 'CONTAINER_RUNNING');
  assert.equal(criContainerState('stopped'), 'CONTAINER_EXITED');
  assert.equal(criContainerState('creating'), 'CONTAINER_UNKNOWN');
  assert.equal(exitReason(0, false), 'Completed');
  assert.equal(exitReason(3, false), 'Error');
  assert.equal(exitReason(137, true), 'OOMKilled');
  assert.equal(exitReason(0, true), 'OOMKilled', 'an OOM kill in the cgroup wins even when init exited 0');
  assert.equal(normalizeStopSignal(undefined), 'SIGTERM');
  assert.equal(normalizeStopSignal(''), 'SIGTERM');
  assert.equal(normalizeStopSignal('quit'), 'SIGQUIT');
  assert.equal(normalizeStopSignal('SIGINT'), 'SIGINT');
  assert.equal(normalizeStopSignal('9'), '9');
  assert.equal(containerNameKey('pod', { name: 'c', attempt: 2 }), 'pod_c_2');
});

test('names: reserve, retry waits for the pending create, done+created returns it, else ALREADY_EXISTS', async () => {
  const names = new NameIndex({ what: 'container name', holder: 'container' });
  assert.deepEqual(
    names.reserve('k', 'id1', 'h1', () => false),
    { kind: 'reserved' },
  );
  const pending = Promise.resolve('id1');
  names.setPending('k', 'id1', pending);
  const r = names.reserve('k', 'id2', 'h1', () => false);
  assert.equal(r.kind, 'wait');
  assert.equal(await (r as { pending: Promise<string> }).pending, 'id1');
  assert.throws(
    () => names.reserve('k', 'id3', 'other', () => true),
    (e: unknown) => e instanceof AlreadyExistsError && /reserved by container "id1"/.test(e.message),
  );
  names.setPending('k', 'id1', undefined);
  assert.deepEqual(
    names.reserve('k', 'id4', 'h1', (h) => h === 'id1'),
    { kind: 'existing', id: 'id1' },
  );
  assert.throws(() => names.reserve('k', 'id5', 'h1', () => false), AlreadyExistsError, 'started or exited: no reuse');
  names.release('k', 'other-id');
  assert.throws(() => names.reserve('k', 'id6', 'h1', () => false), AlreadyExistsError, 'only the holder releases');
  names.release('k', 'id1');
  assert.deepEqual(
    names.reserve('k', 'id7', 'h2', () => false),
    { kind: 'reserved' },
  );
});

test('store: atomic save with "version": 1, reload, prefix lookup, ambiguous prefix, bad files kept', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-cstore-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const store = new ContainerStore({ rootDir: dir });
  const other = `ac${'0'.repeat(62)}`;
  await store.save(record(ID));
  await store.save(record(other, { state: 'created' }));
  const raw = JSON.parse(fs.readFileSync(store.metaPath(ID), 'utf8')) as { version: number };
  assert.equal(raw.version, 1);
  assert.equal(store.find('ab')?.id, ID);
  assert.throws(() => store.find('a'), InvalidArgumentError);
  assert.throws(() => store.resolve('ff'), NotFoundError);
  // A sibling module's file in the same dir (the image service's rootfs) survives delete.
  fs.mkdirSync(path.join(dir, 'containers', other, 'rootfs'));
  await store.delete(other);
  assert.ok(fs.existsSync(path.join(dir, 'containers', other, 'rootfs')));
  fs.writeFileSync(path.join(dir, 'containers', other, 'meta.json'), '{"version": 7}');

  const again = new ContainerStore({ rootDir: dir });
  const { records, failures } = await again.loadAll();
  assert.deepEqual(
    records.map((r) => r.id),
    [ID],
  );
  assert.equal(failures.length, 1);
  assert.match(failures[0].reason, /unknown metadata version 7/);
  assert.ok(fs.existsSync(path.join(dir, 'containers', other, 'meta.json')), 'never deleted silently');
  assert.deepEqual(
    again.ofPod('cd'.repeat(32)).map((r) => r.id),
    [ID],
  );
});

test('CreateContainer validation names the field', () => {
  const ok = { pod_sandbox_id: 'p', config: { metadata: { name: 'c' }, image: { image: 'busybox' }, log_path: 'c/0.log' } };
  assert.equal(parseCreateContainer(ok).config.metadata.attempt, 0);
  const bad = (over: Record<string, unknown>, re: RegExp): void => {
    assert.throws(
      () => parseCreateContainer({ ...ok, config: { ...ok.config, ...over } }),
      (e: unknown) => e instanceof InvalidArgumentError && re.test(e.message),
    );
  };
  bad({ log_path: '../x.log' }, /config\.log_path "\.\.\/x\.log"/);
  bad({ log_path: '/abs.log' }, /config\.log_path/);
  bad({ metadata: { name: '' } }, /config\.metadata\.name is required/);
  bad({ metadata: { name: 'a/b' } }, /config\.metadata\.name "a\/b"/);
  bad({ image: { image: '' } }, /config\.image\.image is required/);
  bad({ linux: { resources: { memory_limit_in_bytes: '-1' } } }, /memory_limit_in_bytes/);
  bad({ linux: { resources: { cpu_quota: -5 } } }, /cpu_quota/);
  bad({ mounts: [{ container_path: 'rel', host_path: '/x' }] }, /config\.mounts\[0\]\.container_path "rel"/);
  assert.throws(() => parseCreateContainer({ config: ok.config }), /pod_sandbox_id is required/);
  assert.throws(() => parseCreateContainer({ pod_sandbox_id: 'p' }), /config is required/);
});

test('conmon arguments: stdin with and without stdin_once, tty, a shim as the runtime', () => {
  const conmon = new Conmon({ path: 'conmon' });
  const driver = { binaryPath: () => '/usr/sbin/runc', globalArgs: () => ['--root', '/r'] } as unknown as RuntimeDriver;
  const base: ConmonCreateOptions = {
    id: 'c1',
    name: 'n',
    runtime: driver,
    bundle: '/b',
    containerPidFile: '/p',
    conmonPidFile: '/cp',
    exitDir: '/e',
    logPath: '/l',
    socketDir: '/s',
    persistDir: '/d',
    conmonLogFile: '/cl',
  };
  const plain = conmon.args(base);
  assert.ok(!plain.includes('--stdin') && !plain.includes('--terminal'));
  assert.deepEqual(plain.slice(plain.indexOf('--runtime'), plain.indexOf('--runtime') + 2), ['--runtime', '/usr/sbin/runc']);
  const stdin = conmon.args({ ...base, stdin: true, terminal: true });
  assert.ok(stdin.includes('--stdin') && stdin.includes('--leave-stdin-open') && stdin.includes('--terminal'));
  const once = conmon.args({ ...base, stdin: true, stdinOnce: true });
  assert.ok(once.includes('--stdin') && !once.includes('--leave-stdin-open'));
  const shim = conmon.args({ ...base, runtimePath: '/shim.sh', runtimeArgs: ['--state-dir', '/x'] });
  assert.equal(shim[shim.indexOf('--runtime') + 1], '/shim.sh');
  assert.deepEqual(
    shim.filter((_, i) => shim[i - 1] === '--runtime-arg'),
    ['--state-dir', '/x'],
  );
  assert.deepEqual(conmonFiles('/b', '/s', 'c1'), { ctl: '/b/ctl', winsz: '/b/winsz', attach: '/s/c1/attach' });
});

test('reopening the log of a container whose conmon is gone fails fast (no reader on the fifo)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-ctl-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  await assert.rejects(reopenConmonLog(path.join(dir, 'missing')), FailedPreconditionError);
  const { execFileSync } = await import('node:child_process');
  execFileSync('mkfifo', [path.join(dir, 'ctl')]);
  await assert.rejects(reopenConmonLog(path.join(dir, 'ctl')), (e: unknown) => e instanceof FailedPreconditionError && /ENXIO/.test(e.message));
});

test("store: delete removes a temp file a crash left mid-save, and leaves others' files", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-cstore-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const store = new ContainerStore({ rootDir: dir });
  await store.save(record(ID));
  const cdir = path.dirname(store.metaPath(ID));
  fs.writeFileSync(path.join(cdir, 'meta.json.tmp-123-abcd'), '{');
  await store.delete(ID);
  assert.equal(fs.existsSync(cdir), false, 'nothing of the store is left, so the directory goes');
  await store.save(record(ID));
  fs.mkdirSync(path.join(cdir, 'rootfs'));
  await store.delete(ID);
  assert.deepEqual(fs.readdirSync(cdir), ['rootfs'], "the image service's rootfs stays for it to remove");
});
