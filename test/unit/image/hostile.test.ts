// Hostile layer content (issue 11 items 4-7): overlayfs control xattrs, malformed file
// capabilities, non-tar layers, digests that try to name paths, and layers that
// expand without bound. Runs as root on a real filesystem (trusted.* xattrs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import pino from 'pino';
import { InvalidArgumentError, ResourceExhaustedError } from '../../../src/errors.js';
import { checkDigest, digestHex } from '../../../src/image/digest.js';
import { FileSource } from '../../../src/image/image-source.js';
import { SnapshotStore } from '../../../src/image/snapshot-store.js';
import { unpackLayer, xattrVerdict } from '../../../src/image/unpack.js';
import { lgetxattr } from '../../../native/index.js';
import { sha256, tarOf, type TestEntry } from '../../helpers/image-build.js';

const log = pino({ level: 'silent' });

function tempDir(t: { after: (fn: () => void) => void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-hostile-'));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

async function unpack(root: string, entries: TestEntry[]): Promise<void> {
  await unpackLayer(Readable.from([await tarOf(entries)]), { root, what: 'unpacking layer sha256:test', log });
}

/** vfs_cap_data revision 2: magic|effective, then permitted/inheritable for 2×32 bits. */
function capV2(permittedLow: number, flags = 0x1): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32LE(0x02000000 | flags, 0);
  b.writeUInt32LE(permittedLow, 4);
  return b;
}

for (const attr of ['trusted.overlay.redirect', 'trusted.overlay.metacopy', 'trusted.overlay.opaque', 'trusted.other']) {
  test(`a layer carrying ${attr} as SCHILY.xattr is refused, naming the entry; nothing is set`, async (t) => {
    const root = tempDir(t);
    await assert.rejects(
      unpack(root, [{ type: 'file', name: 'etc/evil', data: 'x', xattrs: { [attr]: attr.endsWith('redirect') ? '/etc/shadow' : 'y' } }]),
      (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError, String(e));
        assert.match(e.message, /unpacking layer sha256:test: entry "etc\/evil": xattr "trusted\./);
        assert.match(e.message, /not allowed in image layers/);
        return true;
      },
    );
    if (fs.existsSync(path.join(root, 'etc/evil'))) assert.equal(lgetxattr(path.join(root, 'etc/evil'), attr), undefined);
  });
}

test('the whiteout conversion still sets trusted.overlay.opaque itself (.wh..wh..opq)', async (t) => {
  const root = tempDir(t);
  await unpack(root, [
    { type: 'dir', name: 'var/' },
    { type: 'file', name: 'var/.wh..wh..opq', data: '' },
  ]);
  assert.equal(lgetxattr(path.join(root, 'var'), 'trusted.overlay.opaque')?.toString(), 'y');
});

test('security.* labels other than capabilities are dropped; user.* is kept', async (t) => {
  const root = tempDir(t);
  await unpack(root, [
    { type: 'file', name: 'f', data: 'x', xattrs: { 'security.selinux': 'system_u:object_r:shadow_t:s0', 'security.ima': 'z', 'user.kept': 'v' } },
  ]);
  const f = path.join(root, 'f');
  assert.equal(lgetxattr(f, 'security.ima'), undefined);
  assert.equal(lgetxattr(f, 'user.kept')?.toString(), 'v');
});

test('a valid security.capability (v2, cap_net_bind_service) is set', async (t) => {
  const root = tempDir(t);
  const cap = capV2(1 << 10);
  await unpack(root, [{ type: 'file', name: 'bin/ping', data: 'x', mode: 0o755, xattrs: { 'security.capability': cap.toString('utf8') } }]);
  assert.deepEqual(lgetxattr(path.join(root, 'bin/ping'), 'security.capability'), cap);
});

test('an invalid security.capability is INVALID_ARGUMENT naming the layer entry, not a temp path', async (t) => {
  for (const [why, value] of [
    ['too short', 'ab'],
    ['wrong revision', Buffer.from([0, 0, 0, 9, 0, 0, 0, 0]).toString('latin1')],
    [
      'wrong size for v2',
      capV2(1 << 10)
        .subarray(0, 16)
        .toString('utf8'),
    ],
  ] as const) {
    const root = tempDir(t);
    await assert.rejects(unpack(root, [{ type: 'file', name: 'bin/tool', data: 'x', xattrs: { 'security.capability': value } }]), (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError, `${why}: ${String(e)}`);
      assert.match(e.message, /entry "bin\/tool": xattr "security.capability": invalid file capability/, why);
      assert.doesNotMatch(e.message, new RegExp(root), why);
      return true;
    });
  }
});

test('xattrVerdict: namespaces outside user/ACL/capability are refused or dropped', () => {
  assert.equal(xattrVerdict('user.a', Buffer.from('x')), 'set');
  assert.equal(xattrVerdict('system.posix_acl_access', Buffer.alloc(4)), 'set');
  assert.deepEqual((xattrVerdict('system.nfs4_acl', Buffer.from('x')) as { drop: boolean }).drop, false);
  assert.deepEqual((xattrVerdict('security.apparmor', Buffer.from('x')) as { drop: boolean }).drop, true);
  assert.equal(xattrVerdict('security.capability', capV2(1, 0)), 'set');
  assert.notEqual(xattrVerdict('security.capability', capV2(1, 0x2)), 'set'); // unknown flag bits
});

test('a layer that is not a tar is INVALID_ARGUMENT naming the layer', async (t) => {
  const root = tempDir(t);
  for (const junk of [Buffer.alloc(1024, 0x41), (await tarOf([{ type: 'file', name: 'a', data: 'x'.repeat(5000) }])).subarray(0, 1200)]) {
    await assert.rejects(unpackLayer(Readable.from([junk]), { root, what: 'unpacking layer sha256:junk', log }), (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError, String(e));
      assert.match(e.message, /^unpacking layer sha256:junk: not a valid tar stream/);
      return true;
    });
  }
});

test('digests are validated before they name a file (checkDigest, digestHex, FileSource)', async (t) => {
  const good = `sha256:${'a'.repeat(64)}`;
  assert.equal(checkDigest(good, 'x'), good);
  for (const bad of [
    'sha256:../../../etc/passwd',
    `sha256:${'A'.repeat(64)}`,
    `sha512:${'a'.repeat(128)}`,
    `sha256:${'a'.repeat(63)}`,
    'sha256:',
    '',
    `sha256:${'a'.repeat(64)}/..`,
  ]) {
    assert.throws(() => checkDigest(bad, 'x'), InvalidArgumentError, bad);
    assert.throws(() => digestHex(bad), InvalidArgumentError, bad);
  }
  const dir = tempDir(t);
  const src = FileSource.ociLayout(dir);
  await assert.rejects(src.fetchManifest('sha256:../../../etc/passwd'), (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError, String(e));
    assert.match(e.message, /digest "sha256:..\/..\/..\/etc\/passwd" is not sha256:<64 lowercase hex>/);
    return true;
  });
  await assert.rejects(src.openBlob('sha256:../../../etc/passwd'), InvalidArgumentError);
});

test('a layer that unpacks past max_layer_unpacked_bytes fails while streaming, naming the layer; no snapshot or temp dir stays (S5)', async (t) => {
  const dir = tempDir(t);
  const store = new SnapshotStore({ dir, log });
  await store.init();
  const raw = await tarOf([{ type: 'file', name: 'big', data: Buffer.alloc(4 << 20) }]);
  const chain = sha256(raw);
  let fed = 0;
  // An endless source: only the limit stops it.
  const endless = (): Readable =>
    new Readable({
      read() {
        fed += 1 << 16;
        this.push(fed <= raw.length ? raw.subarray(fed - (1 << 16), fed) : Buffer.alloc(1 << 16));
      },
    });
  await assert.rejects(store.unpack(chain, chain, endless, 'unpacking layer sha256:bomb', { layerMaxBytes: 1 << 20 }), (e: unknown) => {
    assert.ok(e instanceof ResourceExhaustedError, String(e));
    assert.match(e.message, /^unpacking layer sha256:bomb: unpacks to more than 1048576 bytes \(config max_layer_unpacked_bytes\)/);
    return true;
  });
  assert.ok(fed < 8 << 20, `stopped early (read ${fed} bytes)`);
  assert.deepEqual(fs.readdirSync(dir), []);

  // The per-image charge stops a layer that is within its own limit.
  let charged = 0;
  await assert.rejects(
    store.unpack(chain, chain, () => Readable.from([raw]), 'unpacking layer sha256:two', {
      layerMaxBytes: 64 << 20,
      charge: (n) => {
        charged += n;
        if (charged > 1 << 20) throw new ResourceExhaustedError('image over its limit');
      },
    }),
    /image over its limit/,
  );
  assert.deepEqual(fs.readdirSync(dir), []);
  // Within both limits it unpacks.
  await store.unpack(chain, chain, () => Readable.from([raw]), 'unpacking layer sha256:ok', { layerMaxBytes: raw.length });
  assert.equal(fs.statSync(path.join(store.fsPath(chain), 'big')).size, 4 << 20);
});
