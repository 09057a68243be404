// loadApiServices (src/cri/proto.ts): the daemon's one load of api/sandlot.proto serves
// CRI and sandlot.v1.Images; its CRI definitions are those of cri.proto loaded alone
// (same methods, same paths, same decoding), so the server may take either.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadApiServices, loadCriServices } from '../../../src/cri/proto.js';

test('one load of sandlot.proto gives the CRI services as cri.proto alone does, and sandlot.v1.Images', () => {
  const api = loadApiServices();
  const cri = loadCriServices();
  for (const name of ['RuntimeService', 'ImageService'] as const) {
    assert.deepEqual(Object.keys(api[name]).sort(), Object.keys(cri[name]).sort());
    for (const [method, def] of Object.entries(cri[name])) assert.equal(api[name][method]?.path, def.path);
  }
  const req = { pod_sandbox_id: 'abc', verbose: true };
  const a = api.RuntimeService.PodSandboxStatus;
  const c = cri.RuntimeService.PodSandboxStatus;
  assert.deepEqual(a.requestDeserialize(c.requestSerialize(req)), c.requestDeserialize(c.requestSerialize(req)));
  assert.ok(Object.keys(api.SandlotImages).includes('PullWithProgress'));
});
