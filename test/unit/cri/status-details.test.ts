import { status } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { boundDetails, MAX_STATUS_DETAILS, toGrpcStatus } from '../../../src/cri/status.js';
import { InvalidArgumentError } from '../../../src/errors.js';

test('a status message that echoes a huge value is cut to MAX_STATUS_DETAILS and says so', () => {
  const st = toGrpcStatus(new InvalidArgumentError(`pod_cidr "${'x'.repeat(1_000_000)}" is not a CIDR`));
  assert.equal(st.code, status.INVALID_ARGUMENT);
  assert.ok(st.details.length <= MAX_STATUS_DETAILS);
  assert.ok(st.details.startsWith('pod_cidr "xxx'));
  assert.ok(st.details.endsWith(' … [message cut, 1000025 characters in all]'), st.details.slice(-80));
});

test('short messages are kept whole; a cut never splits a surrogate pair', () => {
  assert.equal(boundDetails('sandbox "abc" not found'), 'sandbox "abc" not found');
  const cut = boundDetails('😀'.repeat(MAX_STATUS_DETAILS));
  assert.ok(cut.length <= MAX_STATUS_DETAILS);
  assert.doesNotMatch(cut, /[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
  assert.equal(Buffer.from(cut, 'utf8').toString('utf8'), cut);
});
