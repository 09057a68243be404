// Running an OCI hook as a runtime does (the stages sandlot runs itself, S6): argv[0]
// from args, exactly the hook's env, the state JSON on stdin, its output in the error,
// killed after its timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runOciHook } from '../../../src/oci/hook-runner.js';

const state = { ociVersion: '1.0.2', id: 'c1', status: 'running' as const, pid: 42, bundle: '/b', annotations: { a: 'b' } };

test('a hook gets its args, exactly its env and the state on stdin; a failure carries its exit status and output', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-hook-runner-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'out');
  const script = path.join(dir, 'hook.sh');
  fs.writeFileSync(
    script,
    `#!/bin/sh\n{ echo "argv0=$0 args=$*"; echo "env=$(env | grep -v '^PWD=' | sort | tr '\\n' ' ')"; cat; } > ${out}\n[ "$1" = fail ] && { echo "it broke" >&2; exit 3; }\n[ "$1" = hang ] && exec sleep 30\nexit 0\n`,
    { mode: 0o755 },
  );
  await runOciHook({ path: script, args: ['my-hook', 'ok', 'x'], env: ['ONLY=this'] }, state);
  const text = fs.readFileSync(out, 'utf8');
  assert.match(text, /args=ok x/);
  assert.match(text, /env=.*ONLY=this/);
  assert.doesNotMatch(text, /HOME=/, 'nothing of the daemon env');
  assert.deepEqual(JSON.parse(text.split('\n').slice(2).join('\n')), state);
  await assert.rejects(runOciHook({ path: script, args: ['h', 'fail'] }, state), /^Error: exit status 3: it broke$/);
  await assert.rejects(runOciHook({ path: script, args: ['h', 'hang'], timeout: 1 }, state), /killed after its timeout of 1 s/);
  await assert.rejects(runOciHook({ path: path.join(dir, 'missing') }, state), /ENOENT/);
});
