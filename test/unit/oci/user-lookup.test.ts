import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../../src/errors.js';
import { parseGroup, parsePasswd, resolveUser, type AccountFiles } from '../../../src/oci/user-lookup.js';

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  '# a comment',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  'www:x:33:33:www-data:/var/www:/bin/sh',
  'app:x:1000:1001:app user:/home/app:/bin/sh',
  'broken-line',
  'bad:x:notanumber:1::/:/bin/sh',
  'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
  '',
].join('\n');

const GROUP = ['root:x:0:', 'daemon:x:1:', 'www:x:33:app', 'app:x:1001:app', 'audio:x:29:app, www', 'video:x:44:www', 'staff:x:50:', 'nogroup:x:65534:'].join(
  '\n',
);

const FILES: AccountFiles = { passwd: PASSWD, group: GROUP };
const NONE: AccountFiles = { passwd: undefined, group: undefined };

test('parsePasswd reads entries and skips comments and malformed lines', () => {
  const p = parsePasswd(PASSWD);
  assert.deepEqual(
    p.map((e) => e.name),
    ['root', 'daemon', 'www', 'app', 'nobody'],
  );
  assert.deepEqual(p[3], { name: 'app', uid: 1000, gid: 1001, home: '/home/app', shell: '/bin/sh' });
});

test('parseGroup reads members, trimming spaces', () => {
  const g = parseGroup(GROUP);
  assert.deepEqual(
    g.find((e) => e.name === 'audio'),
    { name: 'audio', gid: 29, members: ['app', 'www'] },
  );
  assert.deepEqual(g.find((e) => e.name === 'root')?.members, []);
});

test('user forms resolve as containerd resolves them', () => {
  const cases: Array<{ spec: string; files?: AccountFiles; uid: number; gid: number; gids: number[] }> = [
    // name → passwd uid and gid, plus memberships (the group named like the user is not "supplementary")
    { spec: 'app', uid: 1000, gid: 1001, gids: [1001, 29, 33] },
    // uid with a passwd entry → that entry's gid and name (so memberships count)
    { spec: '1000', uid: 1000, gid: 1001, gids: [1001, 29, 33] },
    // uid unknown to passwd → gid 0, no memberships
    { spec: '4242', uid: 4242, gid: 0, gids: [0] },
    // uid:gid → both numbers, memberships of the named user still apply
    { spec: '33:50', uid: 33, gid: 50, gids: [50, 29, 44] },
    // name:group → group resolved in /etc/group
    { spec: 'www:staff', uid: 33, gid: 50, gids: [50, 29, 44] },
    // uid:group and name:gid
    { spec: '0:video', uid: 0, gid: 44, gids: [44] },
    { spec: 'nobody:7', uid: 65534, gid: 7, gids: [7] },
    // numeric forms need no files at all
    { spec: '0', files: NONE, uid: 0, gid: 0, gids: [0] },
    { spec: '1234:5678', files: NONE, uid: 1234, gid: 5678, gids: [5678] },
  ];
  for (const c of cases) {
    const r = resolveUser(c.spec, c.files ?? FILES);
    assert.deepEqual([r.uid, r.gid, r.additionalGids], [c.uid, c.gid, c.gids], c.spec);
  }
});

test('an unknown user or group name is INVALID_ARGUMENT naming it', () => {
  assert.throws(
    () => resolveUser('ghost', FILES, { field: 'linux.security_context.run_as_username' }),
    (e: Error) => e instanceof InvalidArgumentError && /run_as_username "ghost": user "ghost" not found/.test(e.message),
  );
  assert.throws(
    () => resolveUser('app:ghosts', FILES),
    (e: Error) => e instanceof InvalidArgumentError && /group "ghosts" not found/.test(e.message),
  );
  assert.throws(() => resolveUser('app', NONE), /user "app" not found: the image has no \/etc\/passwd/);
  assert.throws(() => resolveUser('0:wheel', { passwd: PASSWD, group: undefined }), /the image has no \/etc\/group/);
});

test('empty parts and out-of-range ids are INVALID_ARGUMENT', () => {
  assert.throws(() => resolveUser('', FILES), /empty user/);
  assert.throws(() => resolveUser(':0', FILES), /empty user/);
  assert.throws(() => resolveUser('app:', FILES), /empty group/);
  assert.throws(() => resolveUser('4294967295', FILES), /out of range/);
  assert.throws(() => resolveUser('0:99999999999', FILES), /out of range/);
});

test('supplemental groups are added without duplicates, primary first, the rest in ascending order; Strict ignores /etc/group membership', () => {
  assert.deepEqual(resolveUser('app', FILES, { supplementalGroups: [29, 5000, 1001, 5000] }).additionalGids, [1001, 29, 33, 5000]);
  // the order of /etc/group and of the request does not matter
  assert.deepEqual(resolveUser('app', FILES, { supplementalGroups: [5000, 7, 3] }).additionalGids, [1001, 3, 7, 29, 33, 5000]);
  assert.deepEqual(resolveUser('app', FILES, { supplementalGroups: [5000], strict: true }).additionalGids, [1001, 5000]);
  assert.throws(() => resolveUser('app', FILES, { supplementalGroups: [-1] }), /supplemental group -1 is out of range/);
});
