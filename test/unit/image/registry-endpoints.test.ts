// Which endpoints a pull tries, in which order, over which scheme.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { RegistryClient } from '../../../src/image/registry-client.js';

const log = pino({ level: 'silent' });

test('mirrors come first in their order, then the upstream; loopback and insecure_registries speak plain HTTP', () => {
  const c = new RegistryClient({
    registryMirrors: { 'docker.io': ['https://mirror.example:5000', 'http://10.0.0.9:5001/'], 'quay.io': ['127.0.0.1:5002'] },
    insecureRegistries: ['plain.example:8080', 'bare.example'],
    log,
  });
  assert.deepEqual(
    c.endpoints('docker.io').map((e) => [e.base, e.host, e.mirror]),
    [
      ['https://mirror.example:5000', 'mirror.example:5000', true],
      ['http://10.0.0.9:5001', '10.0.0.9:5001', true],
      ['https://registry-1.docker.io', 'docker.io', false],
    ],
  );
  // A mirror without a scheme gets the same rule as any host: loopback is plain HTTP.
  assert.deepEqual(
    c.endpoints('quay.io').map((e) => e.base),
    ['http://127.0.0.1:5002', 'https://quay.io'],
  );
  assert.deepEqual(
    c.endpoints('plain.example:8080').map((e) => e.base),
    ['http://plain.example:8080'],
  );
  assert.deepEqual(
    c.endpoints('bare.example:9000').map((e) => e.base),
    ['http://bare.example:9000'],
    'a bare host covers every port',
  );
  assert.deepEqual(
    c.endpoints('secure.example').map((e) => e.base),
    ['https://secure.example'],
  );
  assert.deepEqual(
    c.endpoints('localhost:5000').map((e) => e.base),
    ['http://localhost:5000'],
  );
  assert.deepEqual(
    c.endpoints('[::1]:5000').map((e) => e.base),
    ['http://[::1]:5000'],
  );
});
