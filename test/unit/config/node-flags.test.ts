// The daemon's Node flags (src/config/node-flags.ts) are the same wherever it starts:
// bin/sandlot's first line must carry them too (a shebang cannot import the constant).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { DAEMON_NODE_FLAGS } from '../../../src/config/node-flags.js';
import { REPO_ROOT } from '../../helpers/daemon.js';

test('bin/sandlot starts node with DAEMON_NODE_FLAGS', () => {
  const first = fs.readFileSync(path.join(REPO_ROOT, 'bin/sandlot'), 'utf8').split('\n')[0];
  assert.equal(first, `#!/usr/bin/env -S node ${DAEMON_NODE_FLAGS.join(' ')}`);
});

test('node accepts DAEMON_NODE_FLAGS', () => {
  const out = execFileSync(process.execPath, [...DAEMON_NODE_FLAGS, '-e', 'process.stdout.write("ok")'], { encoding: 'utf8' });
  assert.equal(out, 'ok');
});
