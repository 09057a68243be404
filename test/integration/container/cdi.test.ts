// S20 CDI devices through the daemon: a CDI spec the test writes to a `cdi_spec_dirs`
// directory, naming a device node the test makes (mknod: a char device with the null
// device's numbers) and a mount; the container asks for them by CDI_devices and by a
// cdi.k8s.io/* annotation and sees the node with the right major/minor, the mount and
// the env. runsc ignores linux.devices (measured), so there a device with nodes is
// UNIMPLEMENTED naming it, while env and mounts work. An unknown device is
// INVALID_ARGUMENT naming it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileAsync, failure, makeContainerEnv, type ContainerEnv } from './container-env.js';

const INVALID_ARGUMENT = 3;
const UNIMPLEMENTED = 12;
const KIND = 'test.sandlot.io/dev';

async function cdiEnv(t: { after(fn: () => void | Promise<void>): void }): Promise<ContainerEnv> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-cdi-'));
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const specs = path.join(root, 'cdi');
  const devs = path.join(root, 'devs');
  const data = path.join(root, 'data');
  for (const d of [specs, devs, data]) fs.mkdirSync(d);
  // The null device's numbers (1:3), under another name: the type and numbers come from the host node.
  await execFileAsync('mknod', ['-m', '0666', path.join(devs, 'cdinull'), 'c', '1', '3']);
  fs.writeFileSync(path.join(data, 'hello.txt'), 'from-the-cdi-mount\n');
  fs.writeFileSync(
    path.join(specs, 'test.yaml'),
    [
      'cdiVersion: "0.6.0"',
      `kind: ${KIND}`,
      'containerEdits:',
      '  env: [CDI_VENDOR=sandlot]',
      'devices:',
      '  - name: nullish',
      '    containerEdits:',
      '      env: [CDI_DEVICE=nullish]',
      '      deviceNodes:',
      `        - { path: /dev/cdinull, hostPath: ${path.join(devs, 'cdinull')} }`,
      '  - name: data',
      '    containerEdits:',
      '      env: [CDI_DATA=yes]',
      '      mounts:',
      `        - { hostPath: ${data}, containerPath: /cdi-data, options: [rbind, ro] }`,
      '',
    ].join('\n'),
  );
  return makeContainerEnv(t, { config: { cdi_spec_dirs: [path.join(root, 'absent'), specs] } });
}

async function runToEnd(env: ContainerEnv, pod: string, name: string, extra: Record<string, unknown>): Promise<string> {
  const id = await env.createContainer(pod, name, extra);
  await env.d.runtime('StartContainer', { container_id: id }, 120_000);
  const st = await env.waitState(id, 'CONTAINER_EXITED', 120_000);
  assert.equal(st.exit_code, 0, fs.readFileSync(st.log_path, 'utf8'));
  return fs.readFileSync(st.log_path, 'utf8');
}

test('runc: S20 CDI device node, mount and env reach the container; an unknown device is INVALID_ARGUMENT naming it', { timeout: 300_000 }, async (t) => {
  const env = await cdiEnv(t);
  const pod = await env.runPod('cdi-runc', {}, 'runc');
  const log = await runToEnd(env, pod, 'gpu', {
    command: [
      '/bin/sh',
      '-c',
      'stat -c "node %t:%T %F" /dev/cdinull; echo "env $CDI_VENDOR $CDI_DEVICE $CDI_DATA"; cat /cdi-data/hello.txt; echo x > /dev/cdinull && echo write-ok',
    ],
    CDI_devices: [{ name: `${KIND}=nullish` }],
    annotations: { 'cdi.k8s.io/test': `${KIND}=data` },
  });
  assert.match(log, / F node 1:3 character special file$/m);
  assert.match(log, / F env sandlot nullish yes$/m);
  assert.match(log, / F from-the-cdi-mount$/m);
  assert.match(log, / F write-ok$/m, 'the device cgroup allows the node');

  const err = await failure(
    env.d.runtime('CreateContainer', {
      pod_sandbox_id: pod,
      config: { metadata: { name: 'unknown' }, image: { image: 'docker.io/library/busybox:latest' }, CDI_devices: [{ name: `${KIND}=missing` }] },
      sandbox_config: {},
    }),
  );
  assert.equal(err.code, INVALID_ARGUMENT);
  assert.match(err.details, /CDI_devices\[0\]: unknown CDI device "test.sandlot.io\/dev=missing"/);
});

test('runsc: S20 CDI env and mounts reach the container; device nodes are UNIMPLEMENTED naming the device', { timeout: 300_000 }, async (t) => {
  const env = await cdiEnv(t);
  const pod = await env.runPod('cdi-runsc', {}, 'runsc');
  const log = await runToEnd(env, pod, 'data', {
    command: ['/bin/sh', '-c', 'echo "env $CDI_VENDOR $CDI_DATA"; cat /cdi-data/hello.txt'],
    annotations: { 'cdi.k8s.io/test': `${KIND}=data` },
  });
  assert.match(log, / F env sandlot yes$/m);
  assert.match(log, / F from-the-cdi-mount$/m);

  const err = await failure(
    env.d.runtime(
      'CreateContainer',
      {
        pod_sandbox_id: pod,
        config: { metadata: { name: 'nodes' }, image: { image: 'docker.io/library/busybox:latest' }, CDI_devices: [{ name: `${KIND}=nullish` }] },
        sandbox_config: {},
      },
      120_000,
    ),
  );
  assert.equal(err.code, UNIMPLEMENTED);
  assert.match(err.details, /CDI device "test.sandlot.io\/dev=nullish" of spec ".*test.yaml": device nodes cannot be passed into a gVisor sandbox/);
  const unknown = await failure(
    env.d.runtime('CreateContainer', {
      pod_sandbox_id: pod,
      config: { metadata: { name: 'unknown' }, image: { image: 'docker.io/library/busybox:latest' }, annotations: { 'cdi.k8s.io/x': `${KIND}=missing` } },
      sandbox_config: {},
    }),
  );
  assert.equal(unknown.code, INVALID_ARGUMENT);
  assert.match(unknown.details, /annotations\["cdi.k8s.io\/x"\]: unknown CDI device "test.sandlot.io\/dev=missing"/);
});
