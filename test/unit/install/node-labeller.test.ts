// The installer's Kubernetes calls. (1) The labelling logic against a fake NodeApi.
// (2) The real NodeApi (@kubernetes/client-node's CoreV1Api) against a local HTTP
// server on 127.0.0.1 playing the API server for the two calls used: the exact method,
// path, query, content type, token and body client-node sends, and that a null in the
// merge patch removes the label. What needs a real cluster: RBAC (the chart's
// ClusterRole allows get and patch on nodes) and the in-cluster service-account config.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fakeApiServer, kubeConfig, type Seen } from './fake-api-server.js';
import { clientNodeApi, FIELD_MANAGER, labelNode, RUNTIME_LABEL, unlabelNode, type NodeApi } from '../../../src/install/node-labeller.js';

/** An error predicate: its code is `code` (a typed error's string, an HTTP status) and its message matches. */
const coded =
  (code: string | number, re = /./) =>
  (e: unknown): boolean => {
    const x = e as { code?: unknown; message?: unknown };
    return x.code === code && re.test(String(x.message));
  };

class FakeNodeApi implements NodeApi {
  readonly patches: Array<{ node: string; labels: Record<string, string | null> }> = [];
  constructor(readonly labels: Record<string, string>) {}
  readNodeLabels(): Promise<Record<string, string>> {
    return Promise.resolve({ ...this.labels });
  }
  patchNodeLabels(node: string, labels: Record<string, string | null>): Promise<void> {
    this.patches.push({ node, labels });
    for (const [k, v] of Object.entries(labels)) {
      if (v === null) delete this.labels[k];
      else this.labels[k] = v;
    }
    return Promise.resolve();
  }
}

test('labelNode sets the version label once; unlabelNode removes only that label', async () => {
  const api = new FakeNodeApi({ 'kubernetes.io/os': 'linux' });
  assert.equal(await labelNode(api, 'node-a', '0.1.0'), true);
  assert.equal(await labelNode(api, 'node-a', '0.1.0'), false, 'a second install patches nothing');
  assert.equal(await labelNode(api, 'node-a', '0.2.0'), true, 'an upgrade changes the value');
  assert.deepEqual(api.labels, { 'kubernetes.io/os': 'linux', [RUNTIME_LABEL]: '0.2.0' });
  assert.equal(await unlabelNode(api, 'node-a'), true);
  assert.equal(await unlabelNode(api, 'node-a'), false);
  assert.deepEqual(api.labels, { 'kubernetes.io/os': 'linux' });
  assert.deepEqual(
    api.patches.map((p) => p.labels),
    [{ [RUNTIME_LABEL]: '0.1.0' }, { [RUNTIME_LABEL]: '0.2.0' }, { [RUNTIME_LABEL]: null }],
  );
});

test('bad node names and versions are INVALID_ARGUMENT naming the value, before any call', async () => {
  const api = new FakeNodeApi({});
  await assert.rejects(labelNode(api, 'Node_A', '0.1.0'), coded('INVALID_ARGUMENT', /node name "Node_A"/));
  await assert.rejects(labelNode(api, 'node-a', '0.1.0+build/1'), coded('INVALID_ARGUMENT', /version "0.1.0\+build\/1"/));
  await assert.rejects(unlabelNode(api, ''), coded('INVALID_ARGUMENT'));
  assert.deepEqual(api.patches, []);
});

test('clientNodeApi sends GET /api/v1/nodes/<name> and a merge PATCH of metadata.labels (client-node against a local API server)', async (t) => {
  const api = await fakeApiServer(t, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-a', labels: { 'kubernetes.io/os': 'linux' } } });
  const nodes = clientNodeApi(kubeConfig(api.url));

  assert.equal(await labelNode(nodes, 'node-a', '0.1.0'), true);
  assert.equal(api.seen.length, 2);
  const [get, patch] = api.seen as [Seen, Seen];
  assert.equal(get.method, 'GET');
  assert.equal(get.url, '/api/v1/nodes/node-a');
  assert.equal(get.headers.authorization, 'Bearer sa-token');
  assert.equal(patch.method, 'PATCH');
  assert.equal(patch.url, `/api/v1/nodes/node-a?fieldManager=${FIELD_MANAGER}`);
  assert.equal(patch.headers['content-type'], 'application/merge-patch+json');
  assert.equal(patch.headers.authorization, 'Bearer sa-token');
  assert.deepEqual(JSON.parse(patch.body), { metadata: { labels: { [RUNTIME_LABEL]: '0.1.0' } } });
  assert.deepEqual(await nodes.readNodeLabels('node-a'), { 'kubernetes.io/os': 'linux', [RUNTIME_LABEL]: '0.1.0' });

  // Removal: the null survives client-node's serializer (a JSON merge patch deletes by it).
  api.seen.length = 0;
  assert.equal(await unlabelNode(nodes, 'node-a'), true);
  assert.equal(api.seen[1]?.method, 'PATCH');
  assert.equal(api.seen[1]?.body, JSON.stringify({ metadata: { labels: { [RUNTIME_LABEL]: null } } }));
  assert.deepEqual(await nodes.readNodeLabels('node-a'), { 'kubernetes.io/os': 'linux' });

  // An unknown node: the API server's 404 comes back as client-node's error, not a success.
  await assert.rejects(nodes.readNodeLabels('node-b'), coded(404));
});
