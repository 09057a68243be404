// Layer unpacking on a real filesystem (runs as root: owners, devices, trusted.* xattrs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import pino from 'pino';
import { InvalidArgumentError } from '../../../src/errors.js';
import { unpackLayer } from '../../../src/image/unpack.js';
import { lgetxattr } from '../../../native/index.js';
import { FIXED_MTIME, tarOf, type TestEntry } from '../../helpers/image-build.js';

const log = pino({ level: 'silent' });

function tempDir(t: { after: (fn: () => void) => void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-unpack-'));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

async function unpack(root: string, entries: TestEntry[]): Promise<void> {
  await unpackLayer(Readable.from([await tarOf(entries)]), { root, what: 'unpacking layer test', log });
}

test('files, dirs, links, devices, modes, owners, mtimes and xattrs are applied', async (t) => {
  const root = path.join(tempDir(t), 'fs');
  fs.mkdirSync(root);
  await unpack(root, [
    { type: 'dir', name: './', mode: 0o755 },
    { type: 'dir', name: 'etc/', mode: 0o750, uid: 12, gid: 34 },
    { type: 'file', name: 'etc/app.conf', data: 'x=1\n', mode: 0o4755, uid: 1000, gid: 1001, xattrs: { 'user.note': 'hello' } },
    { type: 'link', name: 'etc/app.hard', target: 'etc/app.conf' },
    { type: 'symlink', name: 'etc/app.link', target: '/etc/app.conf' },
    { type: 'char', name: 'dev/null', major: 1, minor: 3, mode: 0o666 },
    { type: 'fifo', name: 'run/fifo', mode: 0o600 },
    { type: 'file', name: 'deep/er/file', data: 'implicit parents' },
  ]);
  const conf = fs.statSync(path.join(root, 'etc/app.conf'));
  assert.equal(fs.readFileSync(path.join(root, 'etc/app.conf'), 'utf8'), 'x=1\n');
  assert.equal(conf.mode & 0o7777, 0o4755);
  assert.equal(conf.uid, 1000);
  assert.equal(conf.gid, 1001);
  assert.equal(conf.mtimeMs, FIXED_MTIME.getTime());
  assert.equal(conf.nlink, 2);
  assert.equal(fs.statSync(path.join(root, 'etc/app.hard')).ino, conf.ino);
  assert.equal(fs.readlinkSync(path.join(root, 'etc/app.link')), '/etc/app.conf');
  const etc = fs.statSync(path.join(root, 'etc'));
  assert.equal(etc.mode & 0o7777, 0o750);
  assert.equal(etc.uid, 12);
  assert.equal(etc.mtimeMs, FIXED_MTIME.getTime(), 'directory mtimes are set after their children');
  const dev = fs.lstatSync(path.join(root, 'dev/null'));
  assert.ok(dev.isCharacterDevice());
  assert.equal(dev.rdev, 259);
  assert.ok(fs.lstatSync(path.join(root, 'run/fifo')).isFIFO());
  assert.equal(lgetxattr(path.join(root, 'etc/app.conf'), 'user.note')?.toString(), 'hello');
  assert.equal(fs.readFileSync(path.join(root, 'deep/er/file'), 'utf8'), 'implicit parents');
});

test('whiteouts become overlay whiteouts and opaque markers', async (t) => {
  const root = path.join(tempDir(t), 'fs');
  fs.mkdirSync(root);
  await unpack(root, [
    { type: 'file', name: 'etc/.wh.passwd', data: '' },
    { type: 'dir', name: 'var/cache/' },
    { type: 'file', name: 'var/cache/.wh..wh..opq', data: '' },
    { type: 'file', name: 'var/cache/new', data: 'n' },
    { type: 'file', name: '.wh..wh.plnk', data: '' },
  ]);
  const wh = fs.lstatSync(path.join(root, 'etc/passwd'));
  assert.ok(wh.isCharacterDevice());
  assert.equal(wh.rdev, 0);
  assert.equal(lgetxattr(path.join(root, 'var/cache'), 'trusted.overlay.opaque')?.toString(), 'y');
  assert.deepEqual(fs.readdirSync(path.join(root, 'var/cache')), ['new']);
  assert.ok(!fs.existsSync(path.join(root, '.wh..wh.plnk')));
});

test('a later entry replaces an earlier one of the same name', async (t) => {
  const root = path.join(tempDir(t), 'fs');
  fs.mkdirSync(root);
  await unpack(root, [
    { type: 'file', name: 'a', data: 'first' },
    { type: 'symlink', name: 'a', target: 'b' },
    { type: 'dir', name: 'd/' },
    { type: 'file', name: 'd/keep', data: 'k' },
    { type: 'dir', name: 'd/', mode: 0o700 },
  ]);
  assert.equal(fs.readlinkSync(path.join(root, 'a')), 'b');
  assert.equal(fs.readFileSync(path.join(root, 'd/keep'), 'utf8'), 'k');
  assert.equal(fs.statSync(path.join(root, 'd')).mode & 0o777, 0o700);
});

const ESCAPES: { why: string; entries: TestEntry[]; entry: string }[] = [
  { why: 'a ".." component', entries: [{ type: 'file', name: '../x', data: 'evil' }], entry: '../x' },
  { why: 'an absolute path', entries: [{ type: 'file', name: '/etc/x', data: 'evil' }], entry: '/etc/x' },
  {
    why: 'a symlinked parent',
    entries: [
      { type: 'symlink', name: 'a', target: '/' },
      { type: 'file', name: 'a/etc/x', data: 'evil' },
    ],
    entry: 'a/etc/x',
  },
  {
    why: 'a symlinked parent pointing up',
    entries: [
      { type: 'symlink', name: 'up', target: '../..' },
      { type: 'file', name: 'up/x', data: 'evil' },
    ],
    entry: 'up/x',
  },
  { why: 'a hardlink to an absolute path', entries: [{ type: 'link', name: 'pw', target: '/etc/passwd' }], entry: 'pw' },
  { why: 'a hardlink through ".."', entries: [{ type: 'link', name: 'pw', target: '../../../../etc/passwd' }], entry: 'pw' },
  {
    why: 'a hardlink through a symlinked parent',
    entries: [
      { type: 'symlink', name: 'e', target: '/etc' },
      { type: 'link', name: 'pw', target: 'e/passwd' },
    ],
    entry: 'pw',
  },
  { why: 'a whiteout through ".."', entries: [{ type: 'file', name: '../.wh.x', data: '' }], entry: '../.wh.x' },
];

for (const c of ESCAPES) {
  test(`an entry escaping through ${c.why} fails naming the entry and writes nothing outside`, async (t) => {
    const base = tempDir(t);
    const root = path.join(base, 'layer', 'fs');
    fs.mkdirSync(root, { recursive: true });
    const before = fs.readFileSync('/etc/passwd');
    await assert.rejects(unpack(root, c.entries), (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError, String(e));
      assert.match((e as Error).message, new RegExp(JSON.stringify(c.entry).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
      return true;
    });
    assert.deepEqual(fs.readdirSync(base), ['layer']);
    assert.deepEqual(fs.readdirSync(path.join(base, 'layer')), ['fs']);
    assert.ok(!fs.existsSync('/etc/x'));
    assert.ok(!fs.existsSync('/x'));
    assert.deepEqual(fs.readFileSync('/etc/passwd'), before);
  });
}
