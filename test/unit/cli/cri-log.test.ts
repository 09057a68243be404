import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CriLogDecoder, decodeCriLog, LineJoiner, parseCriLogLine, recordText, tailLines } from '../../../src/cli/cri-log.js';

const TS = '2024-05-01T10:00:00.123456789Z';

test('a CRI log record splits into time, stream, tag and text (the text keeps its spaces)', () => {
  assert.deepEqual(parseCriLogLine(`${TS} stdout F hello  world `), { time: TS, stream: 'stdout', partial: false, text: 'hello  world ' });
  assert.deepEqual(parseCriLogLine(`${TS} stderr P part`), { time: TS, stream: 'stderr', partial: true, text: 'part' });
  assert.deepEqual(parseCriLogLine(`${TS} stdout F`), { time: TS, stream: 'stdout', partial: false, text: '' });
});

test('a record without a P/F tag (old kubelet format) is a full line', () => {
  assert.deepEqual(parseCriLogLine(`${TS} stdout plain text`), { time: TS, stream: 'stdout', partial: false, text: 'plain text' });
});

test('lines not in the CRI format are not records', () => {
  assert.equal(parseCriLogLine(''), undefined);
  assert.equal(parseCriLogLine('garbage'), undefined);
  assert.equal(parseCriLogLine(`${TS} stdin F x`), undefined);
});

test('the decoder holds a record split across chunks, even inside a UTF-8 character', () => {
  const bytes = Buffer.from(`${TS} stdout F grüße\n${TS} stderr F second\n`);
  const cut = bytes.indexOf(Buffer.from('ü')) + 1; // inside the two-byte ü
  const dec = new CriLogDecoder();
  const first = dec.push(bytes.subarray(0, cut));
  assert.deepEqual(first, []);
  assert.ok(dec.pendingBytes > 0);
  const rest = dec.push(bytes.subarray(cut));
  assert.deepEqual(
    rest.map((r) => [r.stream, r.text]),
    [
      ['stdout', 'grüße'],
      ['stderr', 'second'],
    ],
  );
  assert.equal(dec.pendingBytes, 0);
});

test('malformed lines are counted and skipped', () => {
  const dec = new CriLogDecoder();
  const recs = dec.push(Buffer.from(`junk\n${TS} stdout F ok\n`));
  assert.equal(recs.length, 1);
  assert.equal(dec.malformed, 1);
});

test('partial records join into one line per stream, interleaved streams kept apart', () => {
  const j = new LineJoiner();
  const out = [
    j.push({ time: TS, stream: 'stdout', partial: true, text: 'ab' }),
    j.push({ time: TS, stream: 'stderr', partial: false, text: 'err' }),
    j.push({ time: TS, stream: 'stdout', partial: true, text: 'cd' }),
    j.push({ time: TS, stream: 'stdout', partial: false, text: 'ef' }),
  ];
  assert.deepEqual(out, [undefined, { time: TS, stream: 'stderr', text: 'err' }, undefined, { time: TS, stream: 'stdout', text: 'abcdef' }]);
  assert.deepEqual(j.flush(), []);
});

test('a log cut off after a partial record still yields its text', () => {
  const lines = decodeCriLog(Buffer.from(`${TS} stdout F one\n${TS} stdout P tw`));
  assert.deepEqual(
    lines.map((l) => l.text),
    ['one', 'tw'],
  );
});

test('recordText: P records carry no newline, F records end one', () => {
  assert.equal(recordText({ time: TS, stream: 'stdout', partial: true, text: 'a' }), 'a');
  assert.equal(recordText({ time: TS, stream: 'stdout', partial: false, text: 'a' }), 'a\n');
});

test('tail: the last n lines, all for a negative n, none for 0', () => {
  assert.deepEqual(tailLines([1, 2, 3], 2), [2, 3]);
  assert.deepEqual(tailLines([1, 2, 3], 5), [1, 2, 3]);
  assert.deepEqual(tailLines([1, 2, 3], -1), [1, 2, 3]);
  assert.deepEqual(tailLines([1, 2, 3], 0), []);
});
