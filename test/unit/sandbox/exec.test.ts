// Pure pieces of exec, ExecSync and attach (S18), and the native bindings they rest on
// (fd passing, window size, pipes) exercised on real kernel objects.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { getWindowSize, openPty, parseRights, pipe, recvFds, sendFds, setWindowSize } from '../../../native/index.js';
import { execSyncTimeoutMs } from '../../../src/cri/exec-sync-handlers.js';
import { InvalidArgumentError } from '../../../src/errors.js';
import { RELAY_BINARY, sandboxSpec, type SandboxSpecInput } from '../../../src/oci/spec-sandbox.js';
import { parseAttachPacket, resizeMessage } from '../../../src/sandbox/io/attach-session.js';
import { execProcessSpec } from '../../../src/oci/exec.js';
import { BoundedCollector } from '../../../src/sandbox/io/exec-sync.js';

const BASE = {
  terminal: false,
  user: { uid: 1000, gid: 1000 },
  args: ['/bin/sleep', 'infinity'],
  env: ['PATH=/usr/bin:/bin', 'HOME=/root'],
  cwd: '/work',
  capabilities: { bounding: ['CAP_KILL'] },
  consoleSize: { height: 1, width: 1 },
};

test("the exec process is the container's, with the command as args", () => {
  const p = execProcessSpec(BASE, ['ls', '-l'], false);
  assert.deepEqual(p.args, ['ls', '-l']);
  assert.equal(p.terminal, false);
  assert.deepEqual(p.user, BASE.user);
  assert.equal(p.cwd, '/work');
  assert.deepEqual(p.capabilities, BASE.capabilities);
  assert.deepEqual(p.env, BASE.env, 'no TERM without a tty');
  assert.equal(p.consoleSize, undefined, "the container's console size is not the exec's");
  assert.deepEqual(BASE.args, ['/bin/sleep', 'infinity'], 'the base is not changed');
});

test('a TTY exec gets terminal: true, TERM=xterm unless set, and the first size', () => {
  const p = execProcessSpec(BASE, ['sh'], true, { width: 120, height: 40 });
  assert.equal(p.terminal, true);
  assert.ok(p.env!.includes('TERM=xterm'));
  assert.deepEqual(p.consoleSize, { height: 40, width: 120 });
  const own = execProcessSpec({ ...BASE, env: ['TERM=vt100'] }, ['sh'], true);
  assert.deepEqual(own.env, ['TERM=vt100']);
  assert.equal(own.consoleSize, undefined);
});

test('ExecSync output is kept up to the limit and the rest counted as dropped', () => {
  const c = new BoundedCollector(10);
  c.push(Buffer.from('12345'));
  c.push(Buffer.from('67890abc'));
  c.push(Buffer.from('def'));
  assert.equal(c.result().toString(), '1234567890');
  assert.equal(c.dropped, 6);
  const under = new BoundedCollector(10);
  under.push(Buffer.from('abc'));
  assert.equal(under.result().toString(), 'abc');
  assert.equal(under.dropped, 0);
});

test('ExecSync timeout: seconds to ms, 0 = none, anything else is INVALID_ARGUMENT', () => {
  assert.equal(execSyncTimeoutMs('0'), 0);
  assert.equal(execSyncTimeoutMs(undefined), 0);
  assert.equal(execSyncTimeoutMs('5'), 5000);
  for (const bad of ['-1', '1.5', 'x', '99999999999999999999']) {
    assert.throws(() => execSyncTimeoutMs(bad), InvalidArgumentError, bad);
  }
});

test('conmon attach packets: first byte names the pipe; resize is "1 <h> <w>\\n" on ctl', () => {
  assert.deepEqual(parseAttachPacket(Buffer.from([2, 104, 105])), { pipe: 2, data: Buffer.from('hi') });
  assert.deepEqual(parseAttachPacket(Buffer.from([3])), { pipe: 3, data: Buffer.alloc(0) });
  assert.equal(parseAttachPacket(Buffer.alloc(0)), undefined);
  assert.equal(resizeMessage(80, 24), '1 24 80\n');
});

test('parseRights reads every SCM_RIGHTS fd and ignores other cmsgs', () => {
  const cmsg = (level: number, type: number, ints: number[]): Buffer => {
    const len = 16 + 4 * ints.length;
    const b = Buffer.alloc((len + 7) & ~7);
    b.writeBigUInt64LE(BigInt(len), 0);
    b.writeInt32LE(level, 8);
    b.writeInt32LE(type, 12);
    ints.forEach((v, i) => b.writeInt32LE(v, 16 + 4 * i));
    return b;
  };
  assert.deepEqual(parseRights(Buffer.concat([cmsg(1, 1, [7, 9, 11]), cmsg(1, 2, [42]), cmsg(1, 1, [5])])), [7, 9, 11, 5]);
  assert.deepEqual(parseRights(Buffer.alloc(0)), []);
});

test('an fd sent with SCM_RIGHTS over a unix socket arrives and reads the same file', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-fdpass-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'payload');
  fs.writeFileSync(file, 'passed along');
  const sockPath = path.join(dir, 's.sock');
  // pauseOnConnect: libuv must not read (and so drop) the ancillary data itself.
  const server = net.createServer({ pauseOnConnect: true });
  await new Promise<void>((resolve) => server.listen(sockPath, resolve));
  t.after(() => server.close());
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect(sockPath);
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  const conn = await accepted;
  t.after(() => {
    client.destroy();
    conn.destroy();
  });
  const fdOf = (s: net.Socket): number => (s as unknown as { _handle: { fd: number } })._handle.fd;
  assert.equal(recvFds(fdOf(conn)), undefined, 'nothing waiting yet: EAGAIN, not a block');
  const sent = fs.openSync(file, 'r');
  try {
    sendFds(fdOf(client), Buffer.from('/dev/pts/x'), [sent]);
  } finally {
    fs.closeSync(sent);
  }
  let got: ReturnType<typeof recvFds>;
  for (let i = 0; i < 100 && !(got = recvFds(fdOf(conn))); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(got!, 'the message arrived');
  assert.equal(got.data.toString(), '/dev/pts/x');
  assert.equal(got.fds.length, 1);
  try {
    assert.equal(fs.readFileSync(got.fds[0], 'utf8'), 'passed along');
  } finally {
    fs.closeSync(got.fds[0]);
  }
});

test('a pty pair: the window size set on the master is what the slave reports', () => {
  const p = openPty();
  try {
    setWindowSize(p.master, { width: 132, height: 43 });
    assert.deepEqual(getWindowSize(p.slave), { width: 132, height: 43 });
    assert.match(p.slavePath, /^\/dev\/pts\/\d+$/);
  } finally {
    fs.closeSync(p.master);
    fs.closeSync(p.slave);
  }
});

test('pipe() is a real pipe: bytes written come out, EOF after the write end closes', () => {
  const [r, w] = pipe();
  try {
    assert.ok(fs.fstatSync(r).isFIFO());
    fs.writeSync(w, 'through');
    fs.closeSync(w);
    const buf = Buffer.alloc(32);
    assert.equal(buf.subarray(0, fs.readSync(r, buf)).toString(), 'through');
    assert.equal(fs.readSync(r, buf), 0);
  } finally {
    fs.closeSync(r);
  }
});

test('the infra of a relaying handler gets the host busybox bound read-only; others do not', () => {
  const input: SandboxSpecInput = {
    id: 'a'.repeat(64),
    hostname: 'p',
    rootfs: '/run/sandlot/pods/x/rootfs',
    catatonitPath: '/usr/bin/catatonit',
    namespaces: { network: 'POD', pid: 'POD', ipc: 'POD' },
    netnsPath: '/run/sandlot/netns/x',
    sysctls: {},
    cgroupsPath: '/sandlot/pod-x/sandlot-x',
    podCgroup: '/sandlot/pod-x',
    annotations: {},
    oomScoreAdj: -998,
    runtimeType: 'runsc',
  };
  type Mount = { destination: string; source: string; type: string; options: string[] };
  const mounts = (i: SandboxSpecInput): Mount[] => (sandboxSpec(i) as unknown as { mounts: Mount[] }).mounts;
  assert.equal(
    mounts(input).find((m) => m.destination === RELAY_BINARY),
    undefined,
  );
  const relay = mounts({ ...input, relayBinaryPath: '/bin/busybox' }).find((m) => m.destination === RELAY_BINARY);
  assert.deepEqual(relay, { destination: RELAY_BINARY, type: 'bind', source: '/bin/busybox', options: ['rbind', 'ro', 'nosuid', 'nodev'] });
  // Under the /dev tmpfs, which is mounted first: the read-only rootfs needs no mount point.
  const all = mounts({ ...input, relayBinaryPath: '/bin/busybox' });
  assert.ok(all.findIndex((m) => m.destination === '/dev') < all.findIndex((m) => m.destination === RELAY_BINARY));
});
