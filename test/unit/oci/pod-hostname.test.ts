// Issue 10 item 1: the pod's host name, containerd's rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../../src/errors.js';
import { HOST_NAME_MAX, podHostname } from '../../../src/oci/spec-sandbox.js';

test('a given hostname is kept; an empty one is the node\'s (never the pod name, which may be 253 bytes)', () => {
  assert.equal(podHostname('web-0', 'node-a'), 'web-0');
  assert.equal(podHostname('', 'node-a'), 'node-a');
  assert.equal(podHostname('h'.repeat(HOST_NAME_MAX), 'node-a'), 'h'.repeat(64));
  assert.equal(podHostname('a.b-c', 'node-a'), 'a.b-c');
});

test('a hostname over 64 bytes is INVALID_ARGUMENT naming config.hostname and the value', () => {
  const long = 'h'.repeat(65);
  assert.throws(
    () => podHostname(long, 'node-a'),
    (e: Error) => e instanceof InvalidArgumentError && e.message === `config.hostname "${long}" is longer than 64 bytes`,
  );
  // bytes, not characters
  assert.throws(() => podHostname('é'.repeat(33), 'node-a'), /longer than 64 bytes/);
});

test('no valid host name is INVALID_ARGUMENT', () => {
  for (const bad of ['-a', 'a-', 'a b', 'a_b', 'a/b']) {
    assert.throws(() => podHostname(bad, 'node'), (e: Error) => e instanceof InvalidArgumentError && /config\.hostname .* is no valid host name/.test(e.message), bad);
  }
});
