// api/cri.proto is the project's copy of the CRI v1 wire contract: every service,
// method, message, field (name, number, type, label) and enum value must equal
// upstream's. Comments are the project's own and are not compared.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import protobuf from 'protobufjs';
import { protoPath } from '../../../src/cri/proto.js';
import { REPO_ROOT } from '../../helpers/daemon.js';

const UPSTREAM = path.resolve(REPO_ROOT, '../shared/reference/cri-api/api.proto');

function wire(file: string): unknown {
  return JSON.parse(JSON.stringify(protobuf.loadSync(file).toJSON(), (k: string, v: unknown) => (k === 'comment' ? undefined : v)));
}

test(
  'api/cri.proto carries exactly the upstream CRI v1 wire contract',
  { skip: !fs.existsSync(UPSTREAM) && 'no upstream reference beside the checkout' },
  () => {
    assert.deepEqual(wire(protoPath()), wire(UPSTREAM));
  },
);

test('api/cri.proto defines 35 RuntimeService and 6 ImageService methods', () => {
  const root = protobuf.loadSync(protoPath());
  assert.equal(Object.keys(root.lookupService('runtime.v1.RuntimeService').methods).length, 35);
  assert.equal(Object.keys(root.lookupService('runtime.v1.ImageService').methods).length, 6);
});
