import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError, UnimplementedError } from '../../../src/errors.js';
import {
  buildArgs,
  buildContainerSpec,
  containerCgroupPath,
  DEFAULT_PATH_ENV,
  infraNamespacePaths,
  terminationMessageHostPath,
  type ContainerSpecInput,
  type CriContainerConfig,
  type DeviceInfo,
  type PodFacts,
  type SpecLookups,
} from '../../../src/oci/spec-container.js';
import type { OciSpec } from '../../../src/oci/spec-common.js';

const POD_ID = 'p'.repeat(64);
const CID = 'c'.repeat(64);

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nwww:x:33:33::/var/www:/bin/sh\n';
const GROUP = 'root:x:0:\napp:x:1000:\nwww:x:33:\nextra:x:2000:app\n';

interface FakeFs {
  files?: Record<string, string>;
  exists?: string[];
  devices?: Record<string, DeviceInfo>;
  passwd?: string | undefined;
  group?: string | undefined;
}

function lookups(f: FakeFs = {}): SpecLookups & { rootfsAsked: string[] } {
  const rootfsAsked: string[] = [];
  return {
    rootfsAsked,
    accountFiles(rootfs) {
      rootfsAsked.push(rootfs);
      return Promise.resolve({ passwd: 'passwd' in f ? f.passwd : PASSWD, group: 'group' in f ? f.group : GROUP });
    },
    exists(p) {
      return Promise.resolve((f.exists ?? ['/data', '/var/log/pods/x', '/host/run']).includes(p));
    },
    statDevice(p) {
      return Promise.resolve(f.devices?.[p]);
    },
    readFile(p) {
      return Promise.resolve(f.files?.[p]);
    },
    hostDevices() {
      return Promise.resolve([{ path: '/dev/sda', type: 'b', major: 8, minor: 0, fileMode: 0o660, uid: 0, gid: 6 }]);
    },
  };
}

function pod(over: Partial<PodFacts> = {}): PodFacts {
  return {
    id: POD_ID,
    name: 'web',
    namespace: 'default',
    uid: 'uid-1',
    runtimeType: 'oci',
    namespaces: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' },
    namespacePaths: infraNamespacePaths(4321, '/run/sandlot/netns/p'),
    cgroupParent: '/sandlot/pod-p',
    hostname: 'web-0',
    hostsPath: '/run/sandlot/pods/p/hosts',
    hostnamePath: '/run/sandlot/pods/p/hostname',
    resolvConfPath: '/run/sandlot/pods/p/resolv.conf',
    shmPath: '/run/sandlot/pods/p/shm',
    sysctls: {},
    ...over,
  };
}

function input(config: CriContainerConfig = {}, over: Partial<ContainerSpecInput> = {}): ContainerSpecInput {
  return {
    containerId: CID,
    config: { metadata: { name: 'app' }, command: ['/bin/app'], ...config },
    image: { Entrypoint: ['/entry'], Cmd: ['cmd'], Env: ['PATH=/usr/bin:/bin', 'LANG=C'], WorkingDir: '/srv' },
    imageName: 'docker.io/library/app:1',
    pod: pod(),
    rootfs: '/var/lib/sandlot/containers/c/rootfs',
    lookups: lookups(),
    ...over,
  };
}

const sc = (s: NonNullable<NonNullable<CriContainerConfig['linux']>['security_context']>): CriContainerConfig => ({ linux: { security_context: s } });
const res = (r: NonNullable<NonNullable<CriContainerConfig['linux']>['resources']>): CriContainerConfig => ({ linux: { resources: r } });
const mount = (s: OciSpec, dest: string) => s.mounts.find((m) => m.destination === dest);

async function rejects(p: Promise<unknown>, re: RegExp, type: abstract new (...args: never[]) => Error = InvalidArgumentError): Promise<void> {
  await assert.rejects(p, (e: Error) => {
    assert.ok(e instanceof type, `expected ${type.name}, got ${e.constructor.name}: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}

test("args: the kubelet's command/args over Entrypoint/Cmd matrix", () => {
  const img = { Entrypoint: ['/ep', 'e1'], Cmd: ['c1', 'c2'] };
  const rows: Array<[string[], string[], { Entrypoint?: string[] | null; Cmd?: string[] | null }, string[]]> = [
    [[], [], img, ['/ep', 'e1', 'c1', 'c2']],
    [['/cmd'], [], img, ['/cmd']],
    [['/cmd'], ['a'], img, ['/cmd', 'a']],
    [[], ['a', 'b'], img, ['/ep', 'e1', 'a', 'b']],
    [[], [], { Cmd: ['c1'] }, ['c1']],
    [[], ['a'], { Cmd: ['c1'] }, ['a']],
    [[], [], { Entrypoint: ['/ep'], Cmd: null }, ['/ep']],
    // an Entrypoint of [""] means "none" (docker's reset)
    [[], [], { Entrypoint: [''], Cmd: ['c1'] }, ['c1']],
    [[], ['a'], { Entrypoint: [''], Cmd: ['c1'] }, ['a']],
  ];
  for (const [command, args, image, want] of rows) {
    assert.deepEqual(buildArgs({ command, args }, image), want, JSON.stringify({ command, args, image }));
  }
  assert.throws(
    () => buildArgs({ command: [], args: [] }, {}),
    (e: Error) => e instanceof InvalidArgumentError && /no command specified/.test(e.message),
  );
  assert.throws(() => buildArgs({ command: [], args: [] }, { Entrypoint: [''] }), /no command specified/);
});

test('env: image env overlaid by the config (later wins, in place), HOSTNAME set, PATH defaulted', async () => {
  const s = await buildContainerSpec(
    input({
      envs: [
        { key: 'LANG', value: 'en_US.UTF-8' },
        { key: 'A', value: Buffer.from('1') },
        { key: 'A', value: '2' },
        { key: 'EMPTY', value: '' },
      ],
    }),
  );
  assert.deepEqual(s.process.env, ['PATH=/usr/bin:/bin', 'HOSTNAME=web-0', 'LANG=en_US.UTF-8', 'A=2', 'EMPTY=']);
  const noPath = await buildContainerSpec(input({}, { image: { Cmd: ['x'] } }));
  assert.deepEqual(noPath.process.env, [DEFAULT_PATH_ENV, 'HOSTNAME=web-0']);
  // the image or the config may override HOSTNAME
  const own = await buildContainerSpec(input({ envs: [{ key: 'HOSTNAME', value: 'mine' }] }));
  assert.ok(own.process.env.includes('HOSTNAME=mine') && !own.process.env.includes('HOSTNAME=web-0'));
  await rejects(buildContainerSpec(input({ envs: [{ key: 'A=B', value: '1' }] })), /envs\[0\]\.key: "A=B"/);
  await rejects(buildContainerSpec(input({ envs: [{ key: '', value: '1' }] })), /envs\[0\]\.key/);
});

test('tty sets process.terminal and a TERM; stdin and stdin_once add nothing to the spec', async () => {
  const plain = await buildContainerSpec(input({ stdin: true, stdin_once: true }));
  assert.equal(plain.process.terminal, false);
  assert.ok(!plain.process.env.some((e) => e.startsWith('TERM=')));
  const tty = await buildContainerSpec(input({ tty: true, stdin: true }));
  assert.equal(tty.process.terminal, true);
  assert.ok(tty.process.env.includes('TERM=xterm'));
});

test("working dir: the config's, else the image's, else /; relative is refused", async () => {
  assert.equal((await buildContainerSpec(input({ working_dir: '/work' }))).process.cwd, '/work');
  assert.equal((await buildContainerSpec(input())).process.cwd, '/srv');
  assert.equal((await buildContainerSpec(input({}, { image: { Cmd: ['x'] } }))).process.cwd, '/');
  await rejects(buildContainerSpec(input({ working_dir: 'rel' })), /working_dir: "rel" is not an absolute path/);
});

test("user: run_as_user, run_as_username, run_as_group, else the image User, resolved in the image's files", async () => {
  const user = async (c: CriContainerConfig, imageUser?: string) => {
    const i = input(c);
    if (imageUser !== undefined) i.image = { ...i.image, User: imageUser };
    return (await buildContainerSpec(i)).process.user;
  };
  assert.deepEqual(await user({}), { uid: 0, gid: 0, additionalGids: [0] });
  assert.deepEqual(await user({}, 'app'), { uid: 1000, gid: 1000, additionalGids: [1000, 2000] });
  assert.deepEqual(await user({}, '33'), { uid: 33, gid: 33, additionalGids: [33] });
  assert.deepEqual(await user({}, '1000:33'), { uid: 1000, gid: 33, additionalGids: [33, 2000] });
  assert.deepEqual(await user({}, 'app:www'), { uid: 1000, gid: 33, additionalGids: [33, 2000] });
  // the CRI wins over the image
  assert.deepEqual(await user(sc({ run_as_user: { value: '33' } }), 'app'), { uid: 33, gid: 33, additionalGids: [33] });
  assert.deepEqual(await user(sc({ run_as_user: { value: '5000' } })), { uid: 5000, gid: 0, additionalGids: [0] });
  assert.deepEqual(await user(sc({ run_as_username: 'app' }), 'www'), { uid: 1000, gid: 1000, additionalGids: [1000, 2000] });
  // run_as_username wins over run_as_user (containerd's order)
  assert.deepEqual((await user(sc({ run_as_username: 'www', run_as_user: { value: '1000' } }))).uid, 33);
  assert.deepEqual(await user(sc({ run_as_user: { value: '1000' }, run_as_group: { value: '7' } })), { uid: 1000, gid: 7, additionalGids: [7, 2000] });
  assert.deepEqual(await user(sc({ run_as_user: { value: '1000' }, supplemental_groups: ['3000', '2000'] })), {
    uid: 1000,
    gid: 1000,
    additionalGids: [1000, 2000, 3000],
  });
  assert.deepEqual(await user(sc({ run_as_user: { value: '1000' }, supplemental_groups: ['3000'], supplemental_groups_policy: 'Strict' })), {
    uid: 1000,
    gid: 1000,
    additionalGids: [1000, 3000],
  });
});

test('user: unknown names and a group without a user are INVALID_ARGUMENT naming them', async () => {
  await rejects(buildContainerSpec(input(sc({ run_as_username: 'ghost' }))), /run_as_username "ghost": user "ghost" not found/);
  const i = input();
  i.image = { ...i.image, User: 'nobody' };
  await rejects(buildContainerSpec(i), /image config User "nobody": user "nobody" not found/);
  i.image = { ...i.image, User: 'app:wheel' };
  await rejects(buildContainerSpec(i), /group "wheel" not found/);
  await rejects(buildContainerSpec(input(sc({ run_as_group: { value: '5' } }))), /run_as_group: group 5 is specified without a user/);
  await rejects(buildContainerSpec(input(sc({ run_as_username: 'app' }), { lookups: lookups({ passwd: undefined }) })), /the image has no \/etc\/passwd/);
  await rejects(buildContainerSpec(input(sc({ run_as_user: { value: '-1' } }))), /run_as_user/);
});

test("the account files are read from the container's rootfs", async () => {
  const l = lookups();
  await buildContainerSpec(input({}, { lookups: l }));
  assert.deepEqual(l.rootfsAsked, ['/var/lib/sandlot/containers/c/rootfs']);
});

test('mounts: host binds with readonly and propagation; the rootfs follows slave/shared', async () => {
  const s = await buildContainerSpec(
    input({
      mounts: [
        { container_path: '/data/', host_path: '/data', readonly: true },
        { container_path: '/logs', host_path: '/var/log/pods/x', propagation: 'PROPAGATION_HOST_TO_CONTAINER' },
      ],
    }),
  );
  assert.deepEqual(mount(s, '/data'), { destination: '/data', type: 'bind', source: '/data', options: ['rbind', 'rprivate', 'ro'] });
  assert.deepEqual(mount(s, '/logs')?.options, ['rbind', 'rslave', 'rw']);
  assert.equal(s.linux.rootfsPropagation, 'rslave');
  const shared = await buildContainerSpec(
    input({
      mounts: [
        { container_path: '/a', host_path: '/host/run', propagation: 'PROPAGATION_BIDIRECTIONAL' },
        { container_path: '/b', host_path: '/data', propagation: 'PROPAGATION_HOST_TO_CONTAINER' },
      ],
    }),
  );
  assert.deepEqual(mount(shared, '/a')?.options, ['rbind', 'rshared', 'rw']);
  assert.equal(shared.linux.rootfsPropagation, 'rshared');
  const priv = await buildContainerSpec(input({ mounts: [{ container_path: '/a', host_path: '/data' }] }));
  assert.equal(priv.linux.rootfsPropagation, undefined);
});

test('mounts: slave and shared propagation need a host mount that propagates (as containerd checks)', async () => {
  const l = lookups();
  const propagation: Record<string, 'shared' | 'slave' | 'private'> = { '/data': 'private', '/host/run': 'shared', '/var/log/pods/x': 'slave' };
  l.hostMountPropagation = (p) => Promise.resolve({ mountPoint: p, propagation: propagation[p] ?? 'private' });
  const m = (host_path: string, p: 'PROPAGATION_HOST_TO_CONTAINER' | 'PROPAGATION_BIDIRECTIONAL' | 'PROPAGATION_PRIVATE') =>
    buildContainerSpec(input({ mounts: [{ container_path: '/m', host_path, propagation: p }] }, { lookups: l }));
  await m('/host/run', 'PROPAGATION_BIDIRECTIONAL');
  await m('/host/run', 'PROPAGATION_HOST_TO_CONTAINER');
  await m('/var/log/pods/x', 'PROPAGATION_HOST_TO_CONTAINER');
  await m('/data', 'PROPAGATION_PRIVATE');
  await rejects(
    m('/var/log/pods/x', 'PROPAGATION_BIDIRECTIONAL'),
    /mounts\[0\]\.propagation: PROPAGATION_BIDIRECTIONAL needs a shared mount, but "\/var\/log\/pods\/x" is on "\/var\/log\/pods\/x", a slave mount/,
  );
  await rejects(m('/data', 'PROPAGATION_HOST_TO_CONTAINER'), /needs a shared or slave mount, but "\/data" is on "\/data", a private mount/);
});

test('mounts under runsc: HOST_TO_CONTAINER keeps rslave (root too); BIDIRECTIONAL is unimplemented (mounts in the sandbox never reach the host)', async () => {
  const runsc = { pod: pod({ runtimeType: 'runsc' }) };
  const s = await buildContainerSpec(
    input({ mounts: [{ container_path: '/logs', host_path: '/var/log/pods/x', propagation: 'PROPAGATION_HOST_TO_CONTAINER' }] }, runsc),
  );
  assert.equal(s.linux.rootfsPropagation, 'rslave');
  assert.deepEqual(s.mounts.find((x) => x.destination === '/logs')?.options, ['rbind', 'rslave', 'rw']);
  await rejects(
    buildContainerSpec(input({ mounts: [{ container_path: '/a', host_path: '/host/run', propagation: 'PROPAGATION_BIDIRECTIONAL' }] }, runsc)),
    /^mounts\[0\]\.propagation: PROPAGATION_BIDIRECTIONAL is not supported under runsc/,
    UnimplementedError,
  );
});

test('mounts: recursive read-only and image volumes reach the spec only as prepared binds (prepared-mounts.ts); the CRI rules still hold', async () => {
  // runc 1.1.5 would take "rro" as mount data and ignore it: never a fake recursive read-only.
  await rejects(
    buildContainerSpec(input({ mounts: [{ container_path: '/a', host_path: '/data', readonly: true, recursive_read_only: true }] })),
    /mounts\[0\]\.recursive_read_only: must be prepared by the daemon/,
    UnimplementedError,
  );
  await rejects(
    buildContainerSpec(input({ mounts: [{ container_path: '/a', host_path: '/data', recursive_read_only: true }] })),
    /mounts\[0\]\.recursive_read_only: needs readonly/,
  );
  await rejects(
    buildContainerSpec(
      input({
        mounts: [{ container_path: '/a', host_path: '/data', readonly: true, recursive_read_only: true, propagation: 'PROPAGATION_HOST_TO_CONTAINER' }],
      }),
    ),
    /needs propagation PROPAGATION_PRIVATE/,
  );
  await rejects(
    buildContainerSpec(input({ mounts: [{ container_path: '/a', host_path: '', image: { image: 'x' } }] })),
    /mounts\[0\]\.image: an image volume must be prepared/,
    UnimplementedError,
  );
});

test('mounts: nested mounts come after their parents', async () => {
  const s = await buildContainerSpec(
    input({
      mounts: [
        { container_path: '/data/sub/deeper', host_path: '/data' },
        { container_path: '/data', host_path: '/host/run' },
        { container_path: '/data/sub', host_path: '/var/log/pods/x' },
      ],
    }),
  );
  const order = s.mounts.map((m) => m.destination).filter((d) => d.startsWith('/data'));
  assert.deepEqual(order, ['/data', '/data/sub', '/data/sub/deeper']);
});

test('mounts: a missing source, a relative or ".." path is INVALID_ARGUMENT naming the path', async () => {
  await rejects(
    buildContainerSpec(input({ mounts: [{ container_path: '/a', host_path: '/nope/here' }] })),
    /mounts\[0\]\.host_path: mount source "\/nope\/here" does not exist/,
  );
  await rejects(
    buildContainerSpec(input({ mounts: [{ container_path: 'a', host_path: '/data' }] })),
    /mounts\[0\]\.container_path: "a" is not an absolute path/,
  );
  await rejects(
    buildContainerSpec(input({ mounts: [{ container_path: '/a', host_path: '/data/../etc' }] })),
    /mounts\[0\]\.host_path: "\/data\/\.\.\/etc" holds "\.\."/,
  );
  await rejects(buildContainerSpec(input({ mounts: [{ container_path: '/a/../../etc', host_path: '/data' }] })), /container_path/);
  await rejects(buildContainerSpec(input({ mounts: [{ container_path: '/', host_path: '/data' }] })), /may not cover the container's root/);
});

test('what sandlot cannot do yet is UNIMPLEMENTED, naming the field', async () => {
  // S19: mappings without a user namespace are an error; id-mapped volumes are not made yet.
  await rejects(
    buildContainerSpec(input({ mounts: [{ container_path: '/a', host_path: '/data', uidMappings: [{ host_id: 1, container_id: 0, length: 1 }] }] })),
    /mounts\[0\]: uidMappings\/gidMappings need a pod user namespace \(S19\)/,
    InvalidArgumentError,
  );
  await rejects(
    buildContainerSpec(input(sc({ namespace_options: { userns_options: { mode: 'POD' } } }))),
    /userns_options\.mode: POD: the pod's user namespace mode is NODE/,
    InvalidArgumentError,
  );
  await rejects(buildContainerSpec(input({ CDI_devices: [{ name: 'vendor.com/gpu=0' }] })), /CDI_devices: .*"vendor\.com\/gpu=0"/, UnimplementedError);
});

test('pod files: hosts, hostname, resolv.conf and /dev/shm from the pod; read-only with a read-only rootfs', async () => {
  const s = await buildContainerSpec(input());
  assert.deepEqual(mount(s, '/etc/hosts'), {
    destination: '/etc/hosts',
    type: 'bind',
    source: '/run/sandlot/pods/p/hosts',
    options: ['rbind', 'rprivate', 'rw'],
  });
  assert.equal(mount(s, '/etc/hostname')?.source, '/run/sandlot/pods/p/hostname');
  assert.equal(mount(s, '/etc/resolv.conf')?.source, '/run/sandlot/pods/p/resolv.conf');
  assert.equal(mount(s, '/dev/shm')?.source, '/run/sandlot/pods/p/shm');
  assert.ok(mount(s, '/dev/shm')?.options?.includes('rw'));
  const ro = await buildContainerSpec(input(sc({ readonly_rootfs: true })));
  assert.equal(ro.root.readonly, true);
  for (const d of ['/etc/hosts', '/etc/hostname', '/etc/resolv.conf']) assert.ok(mount(ro, d)?.options?.includes('ro'), d);
  assert.ok(mount(ro, '/dev/shm')?.options?.includes('rw'), '/dev/shm stays writable');
  assert.equal(s.root.readonly, false);
  assert.equal(s.root.path, '/var/lib/sandlot/containers/c/rootfs');
});

test('default mounts are skipped where the config mounts the same path', async () => {
  const s = await buildContainerSpec(
    input({
      mounts: [
        { container_path: '/etc/hosts', host_path: '/data' },
        { container_path: '/etc/resolv.conf', host_path: '/data' },
        { container_path: '/dev/shm', host_path: '/host/run' },
        { container_path: '/etc/hostname', host_path: '/data' },
      ],
    }),
  );
  for (const d of ['/etc/hosts', '/etc/resolv.conf', '/dev/shm', '/etc/hostname']) {
    const all = s.mounts.filter((m) => m.destination === d);
    assert.equal(all.length, 1, d);
    assert.notEqual(all[0]?.source?.startsWith('/run/sandlot'), true, d);
  }
  // a /dev of the config's own replaces everything under /dev
  const dev = await buildContainerSpec(input({ mounts: [{ container_path: '/dev', host_path: '/host/run' }] }));
  assert.deepEqual(
    dev.mounts.filter((m) => m.destination.startsWith('/dev')).map((m) => m.source),
    ['/host/run'],
  );
});

test('standard mounts: proc, dev, devpts, mqueue, sysfs and cgroup read-only; no /run tmpfs', async () => {
  const s = await buildContainerSpec(input());
  for (const [dest, type] of [
    ['/proc', 'proc'],
    ['/dev', 'tmpfs'],
    ['/dev/pts', 'devpts'],
    ['/dev/mqueue', 'mqueue'],
    ['/sys', 'sysfs'],
    ['/sys/fs/cgroup', 'cgroup'],
  ]) {
    assert.equal(mount(s, dest)?.type, type, dest);
  }
  assert.ok(mount(s, '/sys')?.options?.includes('ro'));
  assert.ok(mount(s, '/sys/fs/cgroup')?.options?.includes('ro'));
  assert.equal(mount(s, '/run'), undefined);
});

test("the termination message path is the kubelet's own mount, found through its annotation", async () => {
  const config: CriContainerConfig = {
    annotations: { 'io.kubernetes.container.terminationMessagePath': '/dev/termination-log' },
    mounts: [{ container_path: '/dev/termination-log', host_path: '/var/log/pods/x' }],
  };
  const s = await buildContainerSpec(input(config));
  assert.equal(mount(s, '/dev/termination-log')?.source, '/var/log/pods/x');
  assert.equal(terminationMessageHostPath(config), '/var/log/pods/x');
  assert.equal(terminationMessageHostPath({}), undefined);
});

test('devices: linux.devices from the host node plus a cgroup rule; bad ones are INVALID_ARGUMENT', async () => {
  const fuse: DeviceInfo = { kind: 'c', major: 10, minor: 229, mode: 0o666, uid: 0, gid: 0 };
  const l = lookups({
    devices: {
      '/dev/fuse': fuse,
      '/dev/sda': { kind: 'b', major: 8, minor: 0, mode: 0o660, uid: 0, gid: 6 },
      '/dev/input': { ...fuse, kind: 'dir' },
      '/etc/passwd': { ...fuse, kind: 'other' },
    },
  });
  const s = await buildContainerSpec(
    input(
      {
        devices: [
          { container_path: '/dev/fuse', host_path: '/dev/fuse', permissions: 'rwm' },
          { container_path: '/dev/xvda', host_path: '/dev/sda', permissions: 'r' },
        ],
      },
      { lookups: l },
    ),
  );
  assert.deepEqual(s.linux.devices, [
    { path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 },
    { path: '/dev/xvda', type: 'b', major: 8, minor: 0, fileMode: 0o660, uid: 0, gid: 6 },
  ]);
  assert.deepEqual(s.linux.resources?.devices, [
    { allow: false, access: 'rwm' },
    { allow: true, type: 'c', major: 10, minor: 229, access: 'rwm' },
    { allow: true, type: 'b', major: 8, minor: 0, access: 'r' },
  ]);
  const dev = (d: { container_path: string; host_path: string; permissions?: string }) => buildContainerSpec(input({ devices: [d] }, { lookups: l }));
  await rejects(dev({ container_path: '/dev/x', host_path: '/dev/nope' }), /devices\[0\]\.host_path: device "\/dev\/nope" does not exist/);
  await rejects(dev({ container_path: '/dev/x', host_path: '/etc/passwd' }), /is not a device node/);
  await rejects(dev({ container_path: '/dev/x', host_path: '/dev/fuse', permissions: 'rx' }), /devices\[0\]\.permissions: "rx"/);
  await rejects(dev({ container_path: '/dev/x', host_path: '/dev/input' }), /is a directory/, UnimplementedError);
  const none = await buildContainerSpec(input());
  assert.equal(none.linux.devices, undefined);
  assert.deepEqual(none.linux.resources?.devices, [{ allow: false, access: 'rwm' }]);
});

test('privileged: every capability, no seccomp, no masked or read-only paths, all devices, writable /sys', async () => {
  const s = await buildContainerSpec(
    input(sc({ privileged: true, seccomp: { profile_type: 'RuntimeDefault' }, capabilities: { drop_capabilities: ['ALL'] } })),
  );
  assert.equal(s.process.capabilities?.bounding.length, 41);
  assert.equal(s.linux.seccomp, undefined);
  assert.equal(s.linux.maskedPaths, undefined);
  assert.equal(s.linux.readonlyPaths, undefined);
  assert.deepEqual(s.linux.resources?.devices, [{ allow: true, access: 'rwm' }]);
  assert.deepEqual(
    s.linux.devices?.map((d) => d.path),
    ['/dev/sda'],
  );
  assert.ok(mount(s, '/sys')?.options?.includes('rw'));
  assert.ok(mount(s, '/sys/fs/cgroup')?.options?.includes('rw'));
  await rejects(buildContainerSpec(input(sc({ privileged: true }), { pod: pod({ privileged: false }) })), /the pod is not privileged/);
});

test("capabilities: add/drop/ALL over containerd's defaults reach the spec", async () => {
  const s = await buildContainerSpec(input(sc({ capabilities: { add_capabilities: ['NET_ADMIN'], drop_capabilities: ['MKNOD'] } })));
  assert.ok(s.process.capabilities?.bounding.includes('CAP_NET_ADMIN'));
  assert.ok(!s.process.capabilities?.effective.includes('CAP_MKNOD'));
  const none = await buildContainerSpec(input(sc({ capabilities: { drop_capabilities: ['ALL'] } })));
  assert.deepEqual(none.process.capabilities?.bounding, []);
  await rejects(buildContainerSpec(input(sc({ capabilities: { add_capabilities: ['NOPE'] } }))), /add_capabilities: unknown capability "NOPE"/);
});

test("no_new_privs, masked and read-only paths (containerd's defaults when the CRI gives none)", async () => {
  const d = await buildContainerSpec(input(sc({ no_new_privs: true })));
  assert.equal(d.process.noNewPrivileges, true);
  assert.ok(d.linux.maskedPaths?.includes('/proc/kcore'));
  assert.ok(d.linux.maskedPaths?.includes('/sys/firmware'));
  assert.ok(d.linux.readonlyPaths?.includes('/proc/sys'));
  const own = await buildContainerSpec(input(sc({ masked_paths: ['/proc/x'], readonly_paths: ['/proc/y'] })));
  assert.deepEqual([own.linux.maskedPaths, own.linux.readonlyPaths], [['/proc/x'], ['/proc/y']]);
  assert.equal(own.process.noNewPrivileges, false);
  await rejects(buildContainerSpec(input(sc({ masked_paths: ['proc'] }))), /masked_paths\[0\]/);
});

test('seccomp: RuntimeDefault, Unconfined, Localhost, the deprecated path form, and unset', async () => {
  const rd = await buildContainerSpec(input(sc({ seccomp: { profile_type: 'RuntimeDefault' } })));
  assert.equal(rd.linux.seccomp?.defaultAction, 'SCMP_ACT_ERRNO');
  assert.ok((rd.linux.seccomp?.syscalls?.[0]?.names.length ?? 0) > 300);
  assert.equal((await buildContainerSpec(input(sc({ seccomp: { profile_type: 'Unconfined' } })))).linux.seccomp, undefined);
  assert.equal((await buildContainerSpec(input(sc({})))).linux.seccomp, undefined, 'unset → unconfined, as containerd');
  assert.equal((await buildContainerSpec(input(sc({ seccomp_profile_path: 'runtime/default' })))).linux.seccomp?.defaultAction, 'SCMP_ACT_ERRNO');

  const profile = JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] });
  const l = lookups({ files: { '/var/lib/kubelet/seccomp/p.json': profile } });
  const lh = await buildContainerSpec(input(sc({ seccomp: { profile_type: 'Localhost', localhost_ref: '/var/lib/kubelet/seccomp/p.json' } }), { lookups: l }));
  assert.deepEqual(lh.linux.seccomp, { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] });
  const old = await buildContainerSpec(input(sc({ seccomp_profile_path: 'localhost//var/lib/kubelet/seccomp/p.json' }), { lookups: l }));
  assert.equal(old.linux.seccomp?.defaultAction, 'SCMP_ACT_ALLOW');

  await rejects(
    buildContainerSpec(input(sc({ seccomp: { profile_type: 'Localhost', localhost_ref: '/var/lib/kubelet/seccomp/missing.json' } }), { lookups: l })),
    /seccomp\.localhost_ref: seccomp profile "\/var\/lib\/kubelet\/seccomp\/missing\.json" does not exist/,
  );
  await rejects(
    buildContainerSpec(input(sc({ seccomp: { profile_type: 'Localhost', localhost_ref: 'p.json' } }), { lookups: l })),
    /localhost_ref: "p\.json" is not an absolute path/,
  );
  await rejects(buildContainerSpec(input(sc({ seccomp_profile_path: 'weird' }))), /unknown seccomp profile "weird"/);
});

test('RuntimeDefault seccomp follows the capabilities (CAP_SYS_ADMIN opens mount)', async () => {
  const s = await buildContainerSpec(input(sc({ seccomp: { profile_type: 'RuntimeDefault' }, capabilities: { add_capabilities: ['SYS_ADMIN'] } })));
  assert.ok(s.linux.seccomp?.syscalls?.some((r) => r.names.includes('mount') && r.action === 'SCMP_ACT_ALLOW'));
});

test('apparmor: nothing on a host without AppArmor, a named profile is refused there', async () => {
  assert.equal((await buildContainerSpec(input(sc({ apparmor: { profile_type: 'RuntimeDefault' } })))).process.apparmorProfile, undefined);
  await rejects(buildContainerSpec(input(sc({ apparmor: { profile_type: 'Localhost', localhost_ref: 'k8s-x' } }))), /AppArmor is not enabled/);
  const on = await buildContainerSpec(input(sc({ apparmor: { profile_type: 'Localhost', localhost_ref: 'localhost/k8s-x' } }), { apparmorEnabled: true }));
  assert.equal(on.process.apparmorProfile, 'k8s-x');
});

test('resources map to linux.resources; 0 and "" mean unset', async () => {
  const s = await buildContainerSpec(
    input(
      res({
        cpu_period: '100000',
        cpu_quota: '50000',
        cpu_shares: '512',
        memory_limit_in_bytes: '67108864',
        cpuset_cpus: '0-1',
        cpuset_mems: '0',
        hugepage_limits: [{ page_size: '2MB', limit: '4194304' }],
        unified: { 'memory.high': '50000000' },
        oom_score_adj: '500',
      }),
      { pidsLimit: 100 },
    ),
  );
  assert.deepEqual(s.linux.resources?.cpu, { period: 100000, quota: 50000, shares: 512, cpus: '0-1', mems: '0' });
  assert.deepEqual(s.linux.resources?.memory, { limit: 67108864 });
  assert.deepEqual(s.linux.resources?.hugepageLimits, [{ pageSize: '2MB', limit: 4194304 }]);
  assert.deepEqual(s.linux.resources?.unified, { 'memory.high': '50000000' });
  assert.deepEqual(s.linux.resources?.pids, { limit: 100 });
  assert.equal(s.process.oomScoreAdj, 500);
  const empty = await buildContainerSpec(
    input(res({ cpu_period: '0', cpu_quota: '0', cpu_shares: '0', memory_limit_in_bytes: '0', cpuset_cpus: '', hugepage_limits: [], unified: {} })),
  );
  assert.deepEqual(empty.linux.resources, { devices: [{ allow: false, access: 'rwm' }] });
  const swap = await buildContainerSpec(input(res({ memory_limit_in_bytes: '100', memory_swap_limit_in_bytes: '-1' })));
  assert.deepEqual(swap.linux.resources?.memory, { limit: 100, swap: -1 });
});

test('negative or malformed resources are INVALID_ARGUMENT naming the field', async () => {
  const rows: Array<[CriContainerConfig, RegExp]> = [
    [res({ cpu_shares: '-2' }), /linux\.resources\.cpu_shares: -2 is negative/],
    [res({ cpu_quota: '-1' }), /linux\.resources\.cpu_quota: -1 is negative/],
    [res({ cpu_period: '-100' }), /linux\.resources\.cpu_period: -100 is negative/],
    [res({ memory_limit_in_bytes: '-1' }), /linux\.resources\.memory_limit_in_bytes: -1 is negative/],
    [res({ memory_swap_limit_in_bytes: '-2' }), /memory_swap_limit_in_bytes: -2 is negative/],
    [res({ hugepage_limits: [{ page_size: '2MB', limit: '-1' }] }), /hugepage_limits\[0\]\.limit: -1 is negative/],
    [res({ hugepage_limits: [{ page_size: 'big', limit: '1' }] }), /hugepage_limits\[0\]\.page_size: "big"/],
    [res({ cpuset_cpus: '0-a' }), /cpuset_cpus: "0-a"/],
    [res({ oom_score_adj: '1001' }), /oom_score_adj: 1001 is outside/],
    [res({ unified: { '../x': '1' } }), /unified: "\.\.\/x"/],
    [res({ cpu_shares: 'x' }), /cpu_shares: "x" is not an integer/],
  ];
  for (const [config, re] of rows) await rejects(buildContainerSpec(input(config)), re);
  await rejects(buildContainerSpec(input({}, { pidsLimit: -5 })), /pids limit: -5/);
});

test("oom_score_adj is clamped to the daemon's minimum (restrict_oom_score_adj)", async () => {
  const s = await buildContainerSpec(input(res({ oom_score_adj: '-998' }), { minOomScoreAdj: -500 }));
  assert.equal(s.process.oomScoreAdj, -500);
  const above = await buildContainerSpec(input(res({ oom_score_adj: '300' }), { minOomScoreAdj: -500 }));
  assert.equal(above.process.oomScoreAdj, 300);
  const free = await buildContainerSpec(input(res({ oom_score_adj: '-998' })));
  assert.equal(free.process.oomScoreAdj, -998);
});

test("sysctls: the pod's namespaced ones apply to each container; a host namespace refuses them", async () => {
  const s = await buildContainerSpec(input({}, { pod: pod({ sysctls: { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '100' } }) }));
  assert.deepEqual(s.linux.sysctl, { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '100' });
  await rejects(buildContainerSpec(input({}, { pod: pod({ sysctls: { 'kernel.panic': '1' } }) })), /not namespaced/);
  await rejects(
    buildContainerSpec(input(sc({ namespace_options: { network: 'NODE', pid: 'POD', ipc: 'POD' } }), { pod: pod({ sysctls: { 'net.core.somaxconn': '1' } }) })),
    /host network/,
  );
});

test("S1 namespaces: join the pod's network, UTS and IPC by path; PID by pod mode; new mount and cgroup", async () => {
  const types = (s: OciSpec) => s.linux.namespaces;
  const podPid = await buildContainerSpec(input({}, { pod: pod({ namespaces: { network: 'POD', pid: 'POD', ipc: 'POD' } }) }));
  assert.deepEqual(types(podPid), [
    { type: 'mount' },
    { type: 'network', path: '/run/sandlot/netns/p' },
    { type: 'uts', path: '/proc/4321/ns/uts' },
    { type: 'ipc', path: '/proc/4321/ns/ipc' },
    { type: 'pid', path: '/proc/4321/ns/pid' },
    { type: 'cgroup' },
  ]);
  const own = await buildContainerSpec(input());
  assert.deepEqual(
    types(own).find((n) => n.type === 'pid'),
    { type: 'pid' },
  );
  const host = await buildContainerSpec(input({}, { pod: pod({ namespaces: { network: 'NODE', pid: 'NODE', ipc: 'NODE' } }), cgroupNamespace: false }));
  assert.deepEqual(types(host), [{ type: 'mount' }]);
  // the container's own namespace_options win over the pod's
  const opt = await buildContainerSpec(input(sc({ namespace_options: { network: 'POD', pid: 'POD', ipc: 'POD' } })));
  assert.deepEqual(
    types(opt).find((n) => n.type === 'pid'),
    { type: 'pid', path: '/proc/4321/ns/pid' },
  );
  const target = await buildContainerSpec(input(sc({ namespace_options: { pid: 'TARGET', target_id: 'x' } }), { targetPidNamespacePath: '/proc/99/ns/pid' }));
  assert.deepEqual(
    types(target).find((n) => n.type === 'pid'),
    { type: 'pid', path: '/proc/99/ns/pid' },
  );
  await rejects(buildContainerSpec(input(sc({ namespace_options: { pid: 'TARGET', target_id: 'x' } }))), /target_id: container "x"/);
  await rejects(buildContainerSpec(input({}, { pod: pod({ namespacePaths: {} }) })), /the pod has no network namespace path/);
});

test('S12: the container cgroup nests under the pod cgroup', async () => {
  const s = await buildContainerSpec(input());
  assert.equal(s.linux.cgroupsPath, `/sandlot/pod-p/${CID}`);
  assert.equal(containerCgroupPath('/kubepods/burstable/pod1/', 'abc'), '/kubepods/burstable/pod1/abc');
});

test("S1/S14 annotations: CRI container keys and, for runsc, the pod's mount hints; the config cannot steer the runtime", async () => {
  const hints = {
    'dev.gvisor.spec.mount.vol.source': '/var/lib/kubelet/pods/u/volumes/kubernetes.io~empty-dir/vol',
    'dev.gvisor.spec.mount.vol.type': 'bind',
    'dev.gvisor.spec.mount.vol.share': 'pod',
  };
  const annotations = { 'team.example/owner': 'a', 'io.kubernetes.cri.container-type': 'sandbox', 'dev.gvisor.flag.debug': 'true' };
  const runsc = await buildContainerSpec(input({ annotations }, { pod: pod({ runtimeType: 'runsc', mountHintAnnotations: hints }) }));
  assert.deepEqual(runsc.annotations, {
    'team.example/owner': 'a',
    ...hints,
    'io.kubernetes.cri.container-type': 'container',
    'io.kubernetes.cri.sandbox-id': POD_ID,
    'io.kubernetes.cri.container-name': 'app',
    'io.kubernetes.cri.image-name': 'docker.io/library/app:1',
    'io.kubernetes.cri.sandbox-name': 'web',
    'io.kubernetes.cri.sandbox-namespace': 'default',
    'io.kubernetes.cri.sandbox-uid': 'uid-1',
  });
  const runc = await buildContainerSpec(input({ annotations }, { pod: pod({ mountHintAnnotations: hints }) }));
  assert.equal(runc.annotations['dev.gvisor.spec.mount.vol.source'], undefined, 'hints are for runsc only');
  assert.equal(runc.annotations['io.kubernetes.cri.container-type'], 'container');
});

test('the whole spec is plain JSON of OCI version 1.0.2', async () => {
  const s = await buildContainerSpec(input(sc({ seccomp: { profile_type: 'RuntimeDefault' } })));
  assert.equal(s.ociVersion, '1.0.2');
  assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
});
