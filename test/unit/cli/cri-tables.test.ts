import { test } from 'node:test';
import assert from 'node:assert/strict';
import { containerRows, imageNames, imageWord, parseLabels, podRows, POD_HEADER, shortId, stateWord } from '../../../src/cli/cri-tables.js';
import { table } from '../../../src/cli/verb.js';

const NOW = 1_700_000_000_000;
const ns = (ms: number): string => (BigInt(ms) * 1_000_000n).toString();
const ID_A = 'a'.repeat(64);
const ID_B = 'b'.repeat(64);

test('pod rows: 13-character IDs, relative times, crictl state words, newest first', () => {
  const rows = podRows(
    [
      {
        id: ID_A,
        created_at: ns(NOW - 3 * 60_000),
        state: 'SANDBOX_NOTREADY',
        metadata: { name: 'old', namespace: 'ns', attempt: 1 },
        runtime_handler: 'runsc',
      },
      { id: ID_B, created_at: ns(NOW - 5000), state: 'SANDBOX_READY', metadata: { name: 'new', namespace: 'default', attempt: 0 }, runtime_handler: '' },
    ],
    NOW,
  );
  assert.deepEqual(rows, [
    ['bbbbbbbbbbbbb', '5 seconds ago', 'Ready', 'new', 'default', '0', '(default)'],
    ['aaaaaaaaaaaaa', '3 minutes ago', 'NotReady', 'old', 'ns', '1', 'runsc'],
  ]);
});

test('container rows show the image as typed, or a short ID for a bare digest', () => {
  const rows = containerRows(
    [
      {
        id: ID_A,
        pod_sandbox_id: ID_B,
        image: { image: `sha256:${'c'.repeat(64)}`, user_specified_image: 'busybox' },
        created_at: ns(NOW - 60_000),
        state: 'CONTAINER_EXITED',
        metadata: { name: 'box', attempt: 0 },
      },
    ],
    NOW,
  );
  assert.deepEqual(rows, [['aaaaaaaaaaaaa', 'busybox', 'About a minute ago', 'Exited', 'box', '0', 'bbbbbbbbbbbbb']]);
  assert.equal(imageWord({ image: { image: `sha256:${'c'.repeat(64)}` } }), 'ccccccccccccc');
  assert.equal(imageWord({ image: { image: 'docker.io/library/busybox:latest' } }), 'docker.io/library/busybox:latest');
  const names = imageNames([
    { id: `sha256:${'c'.repeat(64)}`, repo_tags: ['docker.io/library/busybox:latest'] },
    { id: 'sha256:untagged', repo_tags: [] },
  ]);
  assert.equal(imageWord({ image: { image: `sha256:${'c'.repeat(64)}` } }, names), 'docker.io/library/busybox:latest');
  assert.equal(imageWord({ image: { image: 'c'.repeat(64) } }, names), 'docker.io/library/busybox:latest');
});

test('state words and short IDs', () => {
  assert.equal(stateWord('CONTAINER_RUNNING'), 'Running');
  assert.equal(stateWord('CONTAINER_CREATED'), 'Created');
  assert.equal(stateWord('CONTAINER_UNKNOWN'), 'Unknown');
  assert.equal(shortId('abc'), 'abc');
});

test('the table pads every column but the last, three spaces apart', () => {
  const out = table(POD_HEADER.slice(0, 3), [
    ['x', 'yy', 'z'],
    ['longer', '', 'last'],
  ]);
  assert.equal(out, ['POD ID   CREATED   STATE', 'x        yy        z', `longer${' '.repeat(13)}last`, ''].join('\n'));
});

test('labels: KEY=VALUE pairs; a value may hold "="; a missing "=" names the flag', () => {
  assert.deepEqual(parseLabels('--label', ['a=b', 'c=d=e', 'f=']), { a: 'b', c: 'd=e', f: '' });
  assert.throws(() => parseLabels('--label', ['nokey']), /--label "nokey": expected KEY=VALUE/);
  assert.throws(() => parseLabels('--label', ['=v']), /expected KEY=VALUE/);
});
