import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError, UnimplementedError } from '../../../src/errors.js';
import { chainIds, sha256Digest } from '../../../src/image/digest.js';
import { MEDIA_TYPE, hostPlatform, layerCompression, parseManifest, selectPlatform, type ImageIndex } from '../../../src/image/manifest.js';
import { credentialsFromAuthConfig, parseWwwAuthenticate } from '../../../src/image/registry-auth.js';
import { isLoopbackHost } from '../../../src/image/registry-client.js';

const D = (c: string): string => `sha256:${c.repeat(64)}`;

test('schema 1 manifests are rejected with a clear message', () => {
  const doc = Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'x', fsLayers: [] }));
  assert.throws(
    () => parseManifest(doc, MEDIA_TYPE.DOCKER_SCHEMA1_SIGNED, 'manifest'),
    (e: unknown) => e instanceof UnimplementedError && /schema 1/.test((e as Error).message),
  );
});

test('OCI and Docker manifests parse; bad descriptors are refused', () => {
  const m = parseManifest(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MEDIA_TYPE.DOCKER_MANIFEST,
        config: { mediaType: MEDIA_TYPE.DOCKER_CONFIG, digest: D('a'), size: 3 },
        layers: [{ mediaType: MEDIA_TYPE.DOCKER_LAYER_GZIP, digest: D('b'), size: 9 }],
      }),
    ),
    '',
    'm',
  );
  assert.equal(m.kind, 'manifest');
  assert.throws(
    () =>
      parseManifest(
        Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE.OCI_MANIFEST, config: { digest: 'sha256:zz', size: 1 }, layers: [] })),
        '',
        'm',
      ),
    InvalidArgumentError,
  );
  assert.throws(() => parseManifest(Buffer.from('not json'), '', 'm'), InvalidArgumentError);
});

test('the host platform is picked from an index, variant-insensitive when absent', () => {
  const index: ImageIndex = {
    kind: 'index',
    mediaType: MEDIA_TYPE.OCI_INDEX,
    manifests: [
      { mediaType: MEDIA_TYPE.OCI_MANIFEST, digest: D('1'), size: 1, platform: { os: 'linux', architecture: 'arm64' } },
      { mediaType: MEDIA_TYPE.OCI_MANIFEST, digest: D('2'), size: 1, platform: { os: 'linux', architecture: 'amd64' } },
    ],
  };
  assert.equal(selectPlatform(index, { os: 'linux', architecture: 'amd64' }, 'x').digest, D('2'));
  assert.equal(selectPlatform(index, { os: 'linux', architecture: 'arm64', variant: 'v8' }, 'x').digest, D('1'));
  assert.throws(() => selectPlatform(index, { os: 'linux', architecture: 's390x' }, 'x'), /linux\/s390x/);
  assert.deepEqual(hostPlatform('x64'), { os: 'linux', architecture: 'amd64' });
});

test('layer media types map to their compression', () => {
  assert.equal(layerCompression(MEDIA_TYPE.OCI_LAYER_ZSTD), 'zstd');
  assert.equal(layerCompression(MEDIA_TYPE.DOCKER_LAYER_GZIP), 'gzip');
  assert.equal(layerCompression(MEDIA_TYPE.OCI_LAYER), 'none');
  assert.throws(() => layerCompression('application/x-foo'), UnimplementedError);
});

test('chain IDs follow the OCI definition', () => {
  const [a, b] = [D('a'), D('b')];
  assert.deepEqual(chainIds([a, b]), [a, sha256Digest(`${a} ${b}`)]);
});

test('WWW-Authenticate challenges and CRI auth configs parse', () => {
  const [c] = parseWwwAuthenticate('Bearer realm="https://auth.example/token",service="registry",scope="repository:a/b:pull"');
  assert.deepEqual(c, { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry', scope: 'repository:a/b:pull' } });
  assert.equal(parseWwwAuthenticate('Basic realm="x"')[0].scheme, 'basic');
  assert.deepEqual(credentialsFromAuthConfig({ auth: Buffer.from('u:p:q').toString('base64') }), { username: 'u', password: 'p:q' });
  assert.equal(credentialsFromAuthConfig({}), undefined);
  assert.throws(() => credentialsFromAuthConfig({ auth: Buffer.from('nocolon').toString('base64') }), InvalidArgumentError);
  assert.ok(isLoopbackHost('127.0.0.1:5000') && isLoopbackHost('localhost') && isLoopbackHost('[::1]:80'));
  assert.ok(!isLoopbackHost('registry.example:5000'));
});
