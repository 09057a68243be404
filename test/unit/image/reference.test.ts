import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../../src/errors.js';
import { normalizeReference, parseReference, registryHost } from '../../../src/image/reference.js';

const HEX = 'a'.repeat(64);

test('short names normalize the way the kubelet expects', () => {
  assert.equal(normalizeReference('busybox'), 'docker.io/library/busybox:latest');
  assert.equal(normalizeReference('busybox:1.36'), 'docker.io/library/busybox:1.36');
  assert.equal(normalizeReference('user/app'), 'docker.io/user/app:latest');
  assert.equal(normalizeReference('index.docker.io/library/busybox'), 'docker.io/library/busybox:latest');
  assert.equal(normalizeReference('docker.io/busybox'), 'docker.io/library/busybox:latest');
});

test('registry hosts with ports, localhost and IPs are kept', () => {
  assert.deepEqual(parseReference('host:5000/a/b:tag'), { domain: 'host:5000', path: 'a/b', tag: 'tag', digest: undefined });
  assert.equal(normalizeReference('localhost/x'), 'localhost/x:latest');
  assert.equal(normalizeReference('127.0.0.1:5000/x/y'), '127.0.0.1:5000/x/y:latest');
  assert.equal(normalizeReference('[::1]:5000/x'), '[::1]:5000/x:latest');
  assert.equal(registryHost('docker.io'), 'registry-1.docker.io');
});

test('digests pin a reference, alone or with a tag', () => {
  assert.equal(normalizeReference(`busybox@sha256:${HEX}`), `docker.io/library/busybox@sha256:${HEX}`);
  const r = parseReference(`quay.io/a/b:v1@sha256:${HEX}`);
  assert.equal(r.tag, 'v1');
  assert.equal(r.digest, `sha256:${HEX}`);
});

test('malformed references are InvalidArgumentError naming the reference', () => {
  for (const bad of [
    '',
    'Busybox',
    'busybox:',
    'busybox:-x',
    'a//b',
    'busybox@sha256:abc',
    `busybox@md5:${HEX}`,
    HEX,
    'a b',
    ' busybox',
    'host:5000/',
    'UPPER.io/Repo',
  ]) {
    assert.throws(
      () => parseReference(bad),
      (e: unknown) => e instanceof InvalidArgumentError && e.message.includes(JSON.stringify(bad)),
      `expected ${JSON.stringify(bad)} to be rejected`,
    );
  }
});
