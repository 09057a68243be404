import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitAtCommand } from '../../../src/cli/arg-split.js';

const OPTS = {
  socket: { type: 'string' as const },
  name: { type: 'string' as const },
  env: { type: 'string' as const, short: 'e', multiple: true },
  rm: { type: 'boolean' as const },
  tty: { type: 'boolean' as const, short: 't' },
};

test("the command's own flags stay with the command", () => {
  assert.deepEqual(splitAtCommand(['--rm', 'busybox', 'sh', '-c', 'echo hi'], OPTS, 1), {
    flags: ['--rm', 'busybox'],
    command: ['sh', '-c', 'echo hi'],
  });
});

test('flags that take a value keep it, long, short and inline', () => {
  assert.deepEqual(splitAtCommand(['--name', 'web', '-e', 'A=1', '--socket=/s', '-t', 'busybox', 'ls', '-l'], OPTS, 1), {
    flags: ['--name', 'web', '-e', 'A=1', '--socket=/s', '-t', 'busybox'],
    command: ['ls', '-l'],
  });
});

test('"--" ends the flags; the leading positionals may follow it', () => {
  assert.deepEqual(splitAtCommand(['--rm', '--', 'busybox', '--weird'], OPTS, 1), { flags: ['--rm', 'busybox'], command: ['--weird'] });
  assert.deepEqual(splitAtCommand(['c1', '--', 'sh'], OPTS, 1), { flags: ['c1'], command: ['sh'] });
});

test('no command at all', () => {
  assert.deepEqual(splitAtCommand(['--rm', 'busybox'], OPTS, 1), { flags: ['--rm', 'busybox'], command: [] });
});
