// The messages of a runtime's JSON log (runtime-cli.ts runtimeLogMessages), in the two
// shapes measured here: runc's one object per line, runsc's objects back to back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runtimeLogMessages } from '../../../src/oci/runtime-cli.js';

test('runc: one JSON object per line gives each message', () => {
  const text =
    '{"level":"warning","msg":"a warning","time":"t"}\n{"level":"error","msg":"runc create failed: sysctl \\"x\\" is not in a separate kernel namespace","time":"t"}\n';
  assert.deepEqual(runtimeLogMessages(text), ['a warning', 'runc create failed: sysctl "x" is not in a separate kernel namespace']);
});

test('runsc: objects written back to back without a newline give each message', () => {
  const text =
    '{"msg":"applyCaps() failed: invalid capability \\"CAP_PERFMON\\" {x}","level":"error","time":"t"}{"msg":"creating container: cannot create sandbox: EOF","level":"error","time":"t"}';
  assert.deepEqual(runtimeLogMessages(text), ['applyCaps() failed: invalid capability "CAP_PERFMON" {x}', 'creating container: cannot create sandbox: EOF']);
});

test('a log that is not JSON gives its lines; an empty one nothing', () => {
  assert.deepEqual(runtimeLogMessages('panic: oops\n\ngoroutine 1\n'), ['panic: oops', 'goroutine 1']);
  assert.deepEqual(runtimeLogMessages(''), []);
});
