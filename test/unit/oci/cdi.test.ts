// S20 CDI: spec parsing (0.3.0–0.8.0, JSON and YAML, minimum versions), qualified names,
// the registry over spec directories (later directory wins, conflicts, unknown devices
// as INVALID_ARGUMENT naming them) and the edits applied to an OCI spec in CDI's order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { InvalidArgumentError, FailedPreconditionError, UnimplementedError } from '../../../src/errors.js';
import { applyCdiEdits } from '../../../src/oci/cdi-edits.js';
import { CdiRegistry } from '../../../src/oci/cdi-registry.js';
import { CdiSpecError, parseCdiSpec, parseQualifiedName, requestedCdiDevices } from '../../../src/oci/cdi-spec.js';
import type { ContainerSpecInput, DeviceInfo } from '../../../src/oci/container-config.js';
import { parseHookFile } from '../../../src/oci/oci-hooks.js';
import { applyContainerExtensions } from '../../../src/oci/spec-container-extensions.js';
import type { OciSpec } from '../../../src/oci/spec-common.js';

const log = pino({ level: 'silent' });

const YAML_SPEC = `
cdiVersion: "0.6.0"
kind: example.com/gpu
containerEdits:
  env: [VENDOR=example]
devices:
  - name: gpu0
    annotations: { x: y }
    containerEdits:
      env: [GPU=0, VENDOR=override]
      deviceNodes:
        - path: /dev/gpu0
          hostPath: /host/dev/gpu0
      mounts:
        - hostPath: /opt/lib
          containerPath: /usr/lib/gpu
          options: [ro]
      hooks:
        - hookName: createContainer
          path: /usr/bin/gpu-hook
          args: [gpu-hook, setup]
`;

test('qualified device names: vendor/class=name', () => {
  assert.deepEqual(parseQualifiedName('example.com/gpu=gpu0'), { kind: 'example.com/gpu', name: 'gpu0' });
  assert.deepEqual(parseQualifiedName('nvidia.com/gpu=all'), { kind: 'nvidia.com/gpu', name: 'all' });
  for (const bad of ['gpu0', 'example.com=gpu0', 'example.com/gpu', '/gpu=x', 'example.com/gpu=', 'example.com/g pu=x', 'example.com/gpu=-x']) {
    assert.equal(parseQualifiedName(bad), undefined, bad);
  }
});

test('a YAML spec parses; JSON too; unknown versions and features newer than the version are refused', () => {
  const spec = parseCdiSpec(YAML_SPEC, '/etc/cdi/gpu.yaml');
  assert.equal(spec.kind, 'example.com/gpu');
  assert.equal(spec.devices[0].containerEdits.deviceNodes![0].hostPath, '/host/dev/gpu0');
  const json = parseCdiSpec(
    JSON.stringify({ cdiVersion: '0.3.0', kind: 'a.com/b', devices: [{ name: 'x', containerEdits: { env: ['A=1'] } }] }),
    '/etc/cdi/a.json',
  );
  assert.deepEqual(json.devices[0].containerEdits.env, ['A=1']);
  const bad: Array<[unknown, RegExp]> = [
    [{ cdiVersion: '0.9.0', kind: 'a.com/b', devices: [] }, /cdiVersion: "0.9.0" is not supported/],
    [{ cdiVersion: '0.3.0', kind: 'ab', devices: [] }, /kind: "ab" is not "vendor\/class"/],
    [{ cdiVersion: '0.3.0', kind: 'a.com/b', devices: [] }, /at least one device/],
    [
      { cdiVersion: '0.3.0', kind: 'a.com/b', devices: [{ name: 'x', containerEdits: { mounts: [{ hostPath: '/a', containerPath: '/b', type: 'bind' }] } }] },
      /type needs cdiVersion 0.4.0/,
    ],
    [
      { cdiVersion: '0.4.0', kind: 'a.com/b', devices: [{ name: 'x', containerEdits: { deviceNodes: [{ path: '/dev/x', hostPath: '/dev/y' }] } }] },
      /hostPath needs cdiVersion 0.5.0/,
    ],
    [
      { cdiVersion: '0.5.0', kind: 'a.com/b', annotations: {}, devices: [{ name: 'x', containerEdits: { env: ['A=1'] } }] },
      /annotations need cdiVersion 0.6.0/,
    ],
    [{ cdiVersion: '0.6.0', kind: 'a.com/b', devices: [{ name: 'x', containerEdits: { additionalGids: [5] } }] }, /additionalGids need cdiVersion 0.7.0/],
    [
      { cdiVersion: '0.8.0', kind: 'a.com/b', devices: [{ name: 'x', containerEdits: { deviceNodes: [{ path: 'dev/x' }] } }] },
      /deviceNodes\[0\].path: "dev\/x" is not an absolute path/,
    ],
    [
      { cdiVersion: '0.8.0', kind: 'a.com/b', devices: [{ name: 'x', containerEdits: { hooks: [{ hookName: 'prestop', path: '/x' }] } }] },
      /hookName: "prestop" is not an OCI hook stage/,
    ],
    [{ cdiVersion: '0.8.0', kind: 'a.com/b', devices: [{ name: 'x', containerEdits: {} }] }, /a device needs at least one edit/],
    [
      {
        cdiVersion: '0.8.0',
        kind: 'a.com/b',
        devices: [
          { name: 'x', containerEdits: { env: ['A=1'] } },
          { name: 'x', containerEdits: { env: ['A=1'] } },
        ],
      },
      /"x" is defined twice/,
    ],
  ];
  for (const [doc, re] of bad)
    assert.throws(
      () => parseCdiSpec(JSON.stringify(doc), '/d/s.json'),
      (e: unknown) => e instanceof CdiSpecError && re.test(e.message),
      String(re),
    );
});

test('requested devices: CDI_devices then cdi.k8s.io/* annotations, deduplicated', () => {
  const got = requestedCdiDevices([{ name: 'a.com/b=x' }], { 'cdi.k8s.io/plugin': 'a.com/b=x,a.com/b=y', other: 'a.com/b=z' });
  assert.deepEqual(got, [
    { name: 'a.com/b=x', field: 'CDI_devices[0]' },
    { name: 'a.com/b=y', field: 'annotations["cdi.k8s.io/plugin"]' },
  ]);
});

function tempDirs(t: { after(fn: () => void): void }): [string, string] {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-cdi-unit-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const a = path.join(root, 'etc-cdi');
  const b = path.join(root, 'run-cdi');
  fs.mkdirSync(a);
  fs.mkdirSync(b);
  return [a, b];
}

const specJson = (kind: string, names: string[], env: string): string =>
  JSON.stringify({ cdiVersion: '0.5.0', kind, devices: names.map((name) => ({ name, containerEdits: { env: [`${env}=${name}`] } })) });

test('registry: a later directory overrides, a spec change is seen, conflicts and unknown devices are INVALID_ARGUMENT naming them', async (t) => {
  const [etc, run] = tempDirs(t);
  fs.writeFileSync(path.join(etc, 'a.json'), specJson('a.com/b', ['x', 'y'], 'FROM_ETC'));
  fs.writeFileSync(path.join(run, 'a.json'), specJson('a.com/b', ['x'], 'FROM_RUN'));
  fs.writeFileSync(path.join(etc, 'broken.yaml'), 'cdiVersion: "0.1.0"\n');
  const reg = new CdiRegistry({ dirs: [etc, run], log });
  const [x, y] = await reg.resolve([
    { name: 'a.com/b=x', field: 'f0' },
    { name: 'a.com/b=y', field: 'f1' },
  ]);
  assert.deepEqual(x.device.containerEdits.env, ['FROM_RUN=x']);
  assert.equal(y.spec.file, path.join(etc, 'a.json'));

  await assert.rejects(reg.resolve([{ name: 'a.com/b=nope', field: 'CDI_devices[0]' }]), (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError);
    assert.match(e.message, /^CDI_devices\[0\]: unknown CDI device "a.com\/b=nope"/);
    assert.match(e.message, /unusable spec ".*broken.yaml": cdiVersion: "0.1.0" is not supported/);
    return true;
  });
  await assert.rejects(
    reg.resolve([{ name: 'not-qualified', field: 'CDI_devices[1]' }]),
    /CDI_devices\[1\]: "not-qualified" is not a qualified CDI device name/,
  );

  fs.writeFileSync(path.join(run, 'c.json'), specJson('a.com/b', ['x'], 'OTHER'));
  await assert.rejects(reg.resolve([{ name: 'a.com/b=x', field: 'f' }]), /"a.com\/b=x" is defined by more than one spec/);
  fs.rmSync(path.join(run, 'c.json'));
  fs.writeFileSync(path.join(run, 'a.json'), specJson('a.com/b', ['x'], 'CHANGED'));
  assert.deepEqual((await reg.resolve([{ name: 'a.com/b=x', field: 'f' }]))[0].device.containerEdits.env, ['CHANGED=x']);
});

function baseSpec(): OciSpec {
  return {
    ociVersion: '1.0.2',
    process: { user: { uid: 0, gid: 0 }, args: ['/bin/sh'], env: ['PATH=/bin', 'VENDOR=none'], cwd: '/' },
    root: { path: '/rootfs' },
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/data/sub', type: 'bind', source: '/x', options: ['rbind'] },
    ],
    annotations: {},
    linux: { namespaces: [], resources: { devices: [{ allow: false, access: 'rwm' }] } },
  };
}

const lookups = {
  statDevice(p: string): Promise<DeviceInfo | undefined> {
    if (p === '/host/dev/gpu0') return Promise.resolve({ kind: 'c', major: 1, minor: 3, mode: 0o666, uid: 0, gid: 0 });
    if (p === '/dev/plain') return Promise.resolve({ kind: 'other', major: 0, minor: 0, mode: 0o644, uid: 0, gid: 0 });
    return Promise.resolve(undefined);
  },
  exists: (p: string): Promise<boolean> => Promise.resolve(p === '/opt/lib'),
};

test('edits: spec-level then device edits; device numbers from the host node; cgroup rule; mounts ordered parents first; hooks added', async () => {
  const spec = baseSpec();
  const parsed = parseCdiSpec(YAML_SPEC, '/etc/cdi/gpu.yaml');
  await applyCdiEdits(spec, [{ qualifiedName: 'example.com/gpu=gpu0', spec: parsed, device: parsed.devices[0] }], lookups);
  assert.deepEqual(spec.process.env, ['PATH=/bin', 'VENDOR=override', 'GPU=0']);
  assert.deepEqual(spec.linux.devices, [{ path: '/dev/gpu0', type: 'c', major: 1, minor: 3, fileMode: 0o666 }]);
  assert.deepEqual(spec.linux.resources!.devices!.at(-1), { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' });
  assert.deepEqual(
    spec.mounts.map((m) => m.destination),
    ['/proc', '/data/sub', '/usr/lib/gpu'],
  );
  assert.deepEqual(spec.mounts.at(-1), { destination: '/usr/lib/gpu', type: 'bind', source: '/opt/lib', options: ['rbind', 'ro'] });
  assert.deepEqual(spec.hooks, { createContainer: [{ path: '/usr/bin/gpu-hook', args: ['gpu-hook', 'setup'] }] });
});

test('edits: a missing host device or mount source fails naming the step, the device and its spec', async () => {
  const doc = (edits: unknown): string => JSON.stringify({ cdiVersion: '0.5.0', kind: 'a.com/b', devices: [{ name: 'x', containerEdits: edits }] });
  const cases: Array<[string, RegExp]> = [
    [
      doc({ deviceNodes: [{ path: '/dev/missing' }] }),
      /applying CDI device "a.com\/b=x" of spec "\/d\/s.json": device node "\/dev\/missing": looking up host device "\/dev\/missing": it does not exist/,
    ],
    [doc({ deviceNodes: [{ path: '/dev/plain' }] }), /looking up host device "\/dev\/plain": it is not a device node/],
    [doc({ mounts: [{ hostPath: '/nope', containerPath: '/x' }] }), /mount "\/x": host path "\/nope" does not exist/],
  ];
  for (const [text, re] of cases) {
    const s = parseCdiSpec(text, '/d/s.json');
    await assert.rejects(
      applyCdiEdits(baseSpec(), [{ qualifiedName: 'a.com/b=x', spec: s, device: s.devices[0] }], lookups),
      (e: unknown) => e instanceof FailedPreconditionError && re.test(e.message),
    );
  }
  // Given numbers need no host node.
  const s = parseCdiSpec(doc({ deviceNodes: [{ path: '/dev/given', type: 'c', major: 10, minor: 200 }] }), '/d/s.json');
  const spec = baseSpec();
  await applyCdiEdits(spec, [{ qualifiedName: 'a.com/b=x', spec: s, device: s.devices[0] }], lookups);
  assert.deepEqual(spec.linux.devices, [{ path: '/dev/given', type: 'c', major: 10, minor: 200 }]);
});

test('extensions: CDI edits first, then the matching hooks of the hook directories; an unknown device stays INVALID_ARGUMENT', async (t) => {
  const [etc] = tempDirs(t);
  fs.writeFileSync(
    path.join(etc, 'v.json'),
    JSON.stringify({
      cdiVersion: '0.6.0',
      kind: 'v.com/c',
      devices: [{ name: 'd', containerEdits: { env: ['D=1'], hooks: [{ hookName: 'prestart', path: '/cdi-hook' }] } }],
    }),
  );
  const dirHook = parseHookFile(
    JSON.stringify({ version: '1.0.0', hook: { path: '/dir-hook' }, when: { commands: ['^/bin/sh$'] }, stages: ['prestart', 'poststop'] }),
    '/h/1.json',
  );
  const extensions = { hooks: { definitions: () => Promise.resolve([dirHook]) }, cdi: new CdiRegistry({ dirs: [etc], log }) };
  const spec = baseSpec();
  const input = {
    config: { annotations: { 'cdi.k8s.io/x': 'v.com/c=d' } },
    pod: { runtimeType: 'oci' },
    lookups: { ...lookups, accountFiles: () => Promise.reject(new Error('unused')), readFile: () => Promise.resolve(undefined) },
    extensions,
  };
  await applyContainerExtensions(spec, input as unknown as ContainerSpecInput);
  assert.ok(spec.process.env.includes('D=1'));
  assert.deepEqual(spec.hooks, { prestart: [{ path: '/cdi-hook' }, { path: '/dir-hook' }], poststop: [{ path: '/dir-hook' }] });
  const unknown = { ...input, config: { CDI_devices: [{ name: 'v.com/c=gone' }] } };
  await assert.rejects(
    applyContainerExtensions(baseSpec(), unknown as unknown as ContainerSpecInput),
    (e: unknown) => e instanceof InvalidArgumentError && /CDI_devices\[0\]: unknown CDI device "v.com\/c=gone"/.test(e.message),
  );
});

test('S20 under runsc: a CDI device with device nodes is UNIMPLEMENTED naming it (runsc ignores linux.devices); env and mounts apply', async () => {
  const s = parseCdiSpec(
    JSON.stringify({
      cdiVersion: '0.5.0',
      kind: 'a.com/b',
      devices: [
        { name: 'node', containerEdits: { deviceNodes: [{ path: '/dev/given', type: 'c', major: 10, minor: 200 }] } },
        { name: 'env', containerEdits: { env: ['E=1'], mounts: [{ hostPath: '/opt/lib', containerPath: '/lib/x' }] } },
      ],
    }),
    '/d/s.json',
  );
  await assert.rejects(
    applyCdiEdits(baseSpec(), [{ qualifiedName: 'a.com/b=node', spec: s, device: s.devices[0] }], lookups, { handler: 'runsc', hostDeviceNodes: false }),
    (e: unknown) =>
      e instanceof UnimplementedError &&
      /CDI device "a.com\/b=node" of spec "\/d\/s.json": device nodes cannot be passed into a gVisor sandbox/.test(e.message),
  );
  const spec = baseSpec();
  await applyCdiEdits(spec, [{ qualifiedName: 'a.com/b=env', spec: s, device: s.devices[1] }], lookups, { handler: 'runsc', hostDeviceNodes: false });
  assert.ok(spec.process.env.includes('E=1'));
  assert.equal(spec.mounts.at(-1)?.destination, '/lib/x');
});
