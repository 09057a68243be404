import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../../src/errors.js';
import { sandboxSpec, validateSysctls, type SandboxSpecInput } from '../../../src/oci/spec-sandbox.js';

const ID = 'a'.repeat(64);

function input(over: Partial<SandboxSpecInput> = {}): SandboxSpecInput {
  return {
    id: ID,
    hostname: 'web-0',
    rootfs: '/run/sandlot/pods/x/rootfs',
    catatonitPath: '/usr/bin/catatonit',
    namespaces: { network: 'POD', pid: 'POD', ipc: 'POD' },
    netnsPath: '/run/sandlot/netns/x',
    sysctls: {},
    cgroupsPath: '/sandlot/pod-x/sandlot-x',
    podCgroup: '/sandlot/pod-x',
    annotations: { 'team.example/owner': 'a' },
    oomScoreAdj: -998,
    runtimeType: 'oci',
    ...over,
  };
}

type Spec = {
  process: { args: string[]; noNewPrivileges: boolean; oomScoreAdj: number };
  root: { readonly: boolean };
  hostname?: string;
  annotations: Record<string, string>;
  mounts: Array<{ destination: string; source: string; options?: string[] }>;
  linux: { namespaces: Array<{ type: string; path?: string }>; cgroupsPath: string; sysctl: Record<string, string> };
};

test('S1: the infra is a paused catatonit on a read-only root, bind-mounted read-only from the host', () => {
  const s = sandboxSpec(input()) as unknown as Spec;
  assert.deepEqual(s.process.args, ['/catatonit', '-P']);
  assert.equal(s.root.readonly, true);
  assert.equal(s.process.noNewPrivileges, true);
  assert.equal(s.process.oomScoreAdj, -998);
  const cat = s.mounts.find((m) => m.destination === '/catatonit');
  assert.equal(cat?.source, '/usr/bin/catatonit');
  assert.ok(cat?.options?.includes('ro'));
  assert.deepEqual(
    ['/proc', '/dev', '/sys'].every((d) => s.mounts.some((m) => m.destination === d)),
    true,
  );
});

test('a pod network joins the pinned netns and gets its own UTS namespace with the pod hostname', () => {
  const s = sandboxSpec(input()) as unknown as Spec;
  assert.deepEqual(
    s.linux.namespaces.find((n) => n.type === 'network'),
    { type: 'network', path: '/run/sandlot/netns/x' },
  );
  assert.ok(s.linux.namespaces.some((n) => n.type === 'uts'));
  assert.equal(s.hostname, 'web-0');
  assert.deepEqual(s.linux.namespaces.map((n) => n.type).sort(), ['ipc', 'mount', 'network', 'pid', 'uts']);
});

test('host network, host PID and host IPC leave those namespaces out', () => {
  const s = sandboxSpec(input({ namespaces: { network: 'NODE', pid: 'NODE', ipc: 'NODE' } })) as unknown as Spec;
  assert.deepEqual(
    s.linux.namespaces.map((n) => n.type),
    ['mount'],
  );
  assert.equal(s.hostname, undefined);
  assert.ok(!s.mounts.some((m) => m.destination === '/dev/mqueue'));
});

test('PID CONTAINER still gives the infra its own PID namespace', () => {
  const s = sandboxSpec(input({ namespaces: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } })) as unknown as Spec;
  assert.ok(s.linux.namespaces.some((n) => n.type === 'pid'));
});

test("annotations: the pod's own plus the CRI sandbox ones; runsc also gets the cgroup parent (S12)", () => {
  const runc = sandboxSpec(input()) as unknown as Spec;
  assert.deepEqual(runc.annotations, {
    'team.example/owner': 'a',
    'io.kubernetes.cri.container-type': 'sandbox',
    'io.kubernetes.cri.sandbox-id': ID,
  });
  const runsc = sandboxSpec(input({ runtimeType: 'runsc' })) as unknown as Spec;
  assert.equal(runsc.annotations['dev.gvisor.spec.cgroup-parent'], '/sandlot/pod-x');
});

test('a pod annotation cannot override the container type', () => {
  const s = sandboxSpec(input({ annotations: { 'io.kubernetes.cri.container-type': 'container' } })) as unknown as Spec;
  assert.equal(s.annotations['io.kubernetes.cri.container-type'], 'sandbox');
});

test('namespaced sysctls pass; others are INVALID_ARGUMENT naming the sysctl', () => {
  const pod = { network: 'POD', pid: 'POD', ipc: 'POD' } as const;
  validateSysctls(
    {
      'net.ipv4.ip_unprivileged_port_start': '0',
      'kernel.shmmax': '1',
      'kernel.msgmax': '1',
      'kernel.sem': '1 2 3 4',
      'fs.mqueue.msg_max': '10',
      'net/ipv4/ping_group_range': '0 0',
    },
    pod,
  );
  for (const key of ['kernel.panic', 'vm.swappiness', 'fs.file-max', 'kernel.hostname']) {
    assert.throws(
      () => validateSysctls({ [key]: '1' }, pod),
      (e: Error) => e instanceof InvalidArgumentError && e.message.includes(`"${key}" is not namespaced`),
    );
  }
  assert.throws(() => validateSysctls({ 'net.core.somaxconn': '1' }, { ...pod, network: 'NODE' }), /host network/);
  assert.throws(() => validateSysctls({ 'kernel.shmmax': '1' }, { ...pod, ipc: 'NODE' }), /host IPC/);
  assert.throws(() => validateSysctls({ 'net.ipv4.x': 'a\nb' }, pod), /newline/);
  assert.throws(() => validateSysctls({ 'net..x': '1' }, pod), /no sysctl name/);
});
