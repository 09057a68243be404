import { test } from 'node:test';
import assert from 'node:assert/strict';
import { absoluteLogPath, nameFromImage, parseEnv, planRun, RUN_LABEL } from '../../../src/cli/run-config.js';

const RANDOM = '0123456789abcdef0123456789abcdef';

test('a run plan: pod name from the image, kubelet log layout, args over the image Cmd', () => {
  const p = planRun({
    image: 'busybox',
    imageId: 'sha256:abc',
    args: ['echo', 'hello'],
    env: ['A=1'],
    tty: false,
    stdin: false,
    logRoot: '/var/log/sandlot-pods',
    random: RANDOM,
  });
  assert.equal(p.containerName, 'busybox');
  assert.equal(p.podName, 'busybox-012345');
  assert.equal(p.uid, '01234567-89ab-cdef-0123-456789abcdef');
  assert.equal(p.logDirectory, `/var/log/sandlot-pods/default_busybox-012345_${p.uid}`);
  assert.equal(p.logPath, 'busybox/0.log');
  const podConfig = p.podRequest.config as { log_directory: string; labels: Record<string, string> };
  assert.equal(podConfig.log_directory, p.logDirectory);
  assert.equal(podConfig.labels[RUN_LABEL], 'true');
  assert.equal(p.podRequest.runtime_handler, '');
  // The reference as typed, so ContainerStatus reports it as user_specified_image (the ID comes back as image_ref).
  assert.deepEqual(p.containerConfig.image, { image: 'busybox', user_specified_image: 'busybox' });
  assert.deepEqual(p.containerConfig.args, ['echo', 'hello']);
  assert.equal(p.containerConfig.command, undefined);
  assert.deepEqual(p.containerConfig.envs, [{ key: 'A', value: Buffer.from('1') }]);
  assert.equal(p.containerConfig.log_path, 'busybox/0.log');
});

test('--name names pod and container; -i sets stdin and stdin_once; --runtime the handler', () => {
  const p = planRun({ image: 'busybox', args: [], name: 'web', env: [], tty: true, stdin: true, runtimeHandler: 'runsc', logRoot: '/l', random: RANDOM });
  assert.equal(p.podName, 'web');
  assert.equal(p.containerName, 'web');
  assert.equal(p.podRequest.runtime_handler, 'runsc');
  assert.equal(p.containerConfig.stdin, true);
  assert.equal(p.containerConfig.stdin_once, true);
  assert.equal(p.containerConfig.tty, true);
  assert.deepEqual(p.containerConfig.image, { image: 'busybox', user_specified_image: 'busybox' });
});

test('bad names and env entries are refused, naming the flag and value', () => {
  assert.throws(() => planRun({ image: 'b', args: [], name: '../x', env: [], tty: false, stdin: false, logRoot: '/l', random: RANDOM }), /--name "..\/x"/);
  assert.throws(() => parseEnv(['NOVALUE']), /-e "NOVALUE": expected KEY=VALUE/);
  assert.deepEqual(parseEnv(['A=b=c', 'E=']), [
    { key: 'A', value: Buffer.from('b=c') },
    { key: 'E', value: Buffer.from('') },
  ]);
});

test('container names from image references', () => {
  assert.equal(nameFromImage('docker.io/library/busybox:1.36'), 'busybox');
  assert.equal(nameFromImage('registry:5000/team/My_App@sha256:abcd'), 'my-app');
  assert.equal(nameFromImage('___'), 'container');
});

test('a relative ContainerStatus log path is joined to the pod log directory', () => {
  assert.equal(absoluteLogPath('/abs/0.log', '/d'), '/abs/0.log');
  assert.equal(absoluteLogPath('c/0.log', '/d'), '/d/c/0.log');
});
