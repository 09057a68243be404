import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JsonObjectSplitter, parseTerminalSize, ResizeQueue } from '../../../src/streaming/resize-queue.js';

test('JSON objects split however the bytes arrive', () => {
  const s = new JsonObjectSplitter();
  const text = '{"Width":80,"Height":24}\n{"Width":1,"Height":2,"x":"}{"}\n';
  const out: string[] = [];
  for (const ch of text) out.push(...s.push(ch));
  assert.deepEqual(
    out.map((o) => JSON.parse(o) as unknown),
    [
      { Width: 80, Height: 24 },
      { Width: 1, Height: 2, x: '}{' },
    ],
  );
  assert.deepEqual(s.push(text), out);
});

test('terminal sizes must be 16-bit integers', () => {
  assert.deepEqual(parseTerminalSize('{"Width":80,"Height":24}'), { width: 80, height: 24 });
  assert.equal(parseTerminalSize('{"Width":-1,"Height":24}'), undefined);
  assert.equal(parseTerminalSize('{"Width":"80","Height":24}'), undefined);
  assert.equal(parseTerminalSize('nope'), undefined);
});

test('the resize queue hands the newest size to its reader and ends on close', async () => {
  const q = new ResizeQueue();
  q.push({ width: 1, height: 1 });
  q.push({ width: 2, height: 2 });
  const seen: number[] = [];
  const reader = (async () => {
    for await (const s of q) seen.push(s.width);
  })();
  await new Promise((r) => setImmediate(r));
  q.push({ width: 3, height: 3 });
  await new Promise((r) => setImmediate(r));
  q.close();
  await reader;
  assert.deepEqual(seen, [2, 3]);
});
