// Pure pieces of the CLI: naming by ID/name/prefix, --since, detach keys, -v/-p, --memory,
// and the word for an unreachable daemon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { DetachScanner, parseDetachKeys } from '../../../src/cli/detach-keys.js';
import { parseSince } from '../../../src/cli/human-time.js';
import { IdResolutionError, pickNamed } from '../../../src/cli/id-prefix.js';
import { parsePublish, parseVolume } from '../../../src/cli/run-config.js';
import { daemonUnreachable } from '../../../src/cli/unreachable.js';
import { parseMemory } from '../../../src/cli/verbs/resources.js';

const ITEMS = [
  { id: 'abc123', name: 'web' },
  { id: 'abd456', name: 'db' },
  { id: 'web999', name: 'cache' },
  { id: 'ff01', name: 'twin' },
  { id: 'ff02', name: 'twin' },
];

test('a reference is an exact ID, else an exact name, else a unique ID prefix', () => {
  assert.equal(pickNamed('container', 'abd456', ITEMS).id, 'abd456');
  assert.equal(pickNamed('container', 'web', ITEMS).id, 'abc123', 'a name wins over an ID prefix');
  assert.equal(pickNamed('container', 'web9', ITEMS).id, 'web999');
  assert.equal(pickNamed('container', 'abd', ITEMS).id, 'abd456');
});

test('an ambiguous name or prefix fails listing the candidates; a miss says so', () => {
  assert.throws(
    () => pickNamed('container', 'twin', ITEMS),
    (e: unknown) =>
      e instanceof IdResolutionError &&
      e.reason === 'ambiguous' &&
      /container name "twin" is ambiguous: 2 containers have it:\n {2}ff01 {2}twin\n {2}ff02 {2}twin/.test(e.message),
  );
  assert.throws(
    () => pickNamed('pod', 'ab', ITEMS),
    (e: unknown) => e instanceof IdResolutionError && /pod ID prefix "ab" is ambiguous: 2 pods match/.test(e.message),
  );
  assert.throws(
    () => pickNamed('pod', 'zz', ITEMS),
    (e: unknown) => e instanceof IdResolutionError && e.reason === 'not-found' && /^pod "zz" not found/.test(e.message),
  );
  assert.throws(() => pickNamed('pod', '', ITEMS), /must not be empty/);
});

test('--since takes a Go duration back from now or an RFC 3339 time', () => {
  const now = Date.parse('2026-12-04T03:00:00Z');
  assert.equal(parseSince('90s', now), now - 90_000);
  assert.equal(parseSince('1h30m', now), now - 5_400_000);
  assert.equal(parseSince('2026-12-04T02:00:00Z', now), Date.parse('2026-12-04T02:00:00Z'));
  for (const bad of ['yesterday', '10', '1x', '', '2026-12-04']) assert.equal(parseSince(bad, now), undefined, bad);
});

test('detach keys: docker notation, the sequence split across chunks, a lone prefix passed on at the end', () => {
  const keys = parseDetachKeys('ctrl-p,ctrl-q');
  assert.deepEqual([...keys], [0x10, 0x11]);
  assert.deepEqual([...parseDetachKeys('ctrl-a,d')], [0x01, 0x64]);
  assert.equal(parseDetachKeys('').length, 0);
  assert.throws(() => parseDetachKeys('ctrl-pp'), /--detach-keys "ctrl-pp"/);

  const s = new DetachScanner(keys);
  assert.deepEqual(s.push(Buffer.from('ab\x10')), { pass: Buffer.from('ab'), detach: false });
  assert.deepEqual(s.push(Buffer.from('\x11rest')), { pass: Buffer.alloc(0), detach: true });
  const t = new DetachScanner(keys);
  assert.deepEqual(t.push(Buffer.from('x\x10')), { pass: Buffer.from('x'), detach: false });
  assert.deepEqual(t.push(Buffer.from('y')), { pass: Buffer.from('\x10y'), detach: false }, 'a held byte that was data goes on');
  assert.deepEqual(t.push(Buffer.from('\x10')), { pass: Buffer.alloc(0), detach: false });
  assert.deepEqual(t.flush(), Buffer.from('\x10'));
});

test('-v HOST:CTR[:ro] and -p [IP:]HOST:CTR[/proto] into CRI mounts and port mappings', () => {
  assert.deepEqual(parseVolume('data:/data:ro', '/work'), { host_path: '/work/data', container_path: '/data', readonly: true });
  assert.deepEqual(parseVolume('/srv:/srv', '/work'), { host_path: '/srv', container_path: '/srv', readonly: false });
  assert.throws(() => parseVolume('/srv', '/'), /-v "\/srv": expected HOST_PATH:CONTAINER_PATH/);
  assert.throws(() => parseVolume('/srv:rel', '/'), /container path "rel" must be absolute/);
  assert.throws(() => parseVolume('/a:/b:rx', '/'), /expected HOST_PATH/);
  assert.deepEqual(parsePublish('8080:80'), { protocol: 'TCP', host_ip: '', host_port: 8080, container_port: 80 });
  assert.deepEqual(parsePublish('127.0.0.1:53:53/udp'), { protocol: 'UDP', host_ip: '127.0.0.1', host_port: 53, container_port: 53 });
  assert.throws(() => parsePublish('80'), /expected \[HOST_IP:\]HOST_PORT:CONTAINER_PORT/);
  assert.throws(() => parsePublish('8080:99999'), /port "99999" is not in 1\.\.65535/);
  assert.throws(() => parsePublish('1:2/icmp'), /expected/);
});

test('--memory takes bytes or docker units', () => {
  assert.equal(parseMemory('--memory', '1024'), 1024);
  assert.equal(parseMemory('--memory', '64m'), 64 * 1024 * 1024);
  assert.equal(parseMemory('--memory', '1G'), 1024 ** 3);
  assert.throws(() => parseMemory('--memory', 'lots'), /--memory "lots": expected bytes or a size/);
});

test('an unreachable daemon is named with its socket and how to start one; other failures keep their text', () => {
  const enoent = Object.assign(new Error('x'), { code: GrpcStatus.UNAVAILABLE, details: 'No connection established. Last error: connect ENOENT /s.sock' });
  assert.match(daemonUnreachable(enoent, '/s.sock')!, /^no sandlot daemon answers at \/s\.sock \(the socket does not exist\): start one with/);
  const refused = Object.assign(new Error('x'), {
    code: GrpcStatus.UNAVAILABLE,
    details: 'No connection established. Last error: connect ECONNREFUSED /s.sock',
  });
  assert.match(daemonUnreachable(refused, '/s.sock')!, /nothing listens on the socket/);
  assert.equal(daemonUnreachable(Object.assign(new Error('x'), { code: GrpcStatus.NOT_FOUND, details: 'nope' }), '/s'), undefined);
  assert.equal(daemonUnreachable(Object.assign(new Error('x'), { code: GrpcStatus.UNAVAILABLE, details: 'the daemon is shutting down' }), '/s'), undefined);
});
