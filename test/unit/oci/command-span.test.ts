// A runtime process span is named after the binary and its subcommand, and names the
// container the command line is about (the first argument after the subcommand that is
// neither a flag nor a flag's value).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeCommand } from '../../../src/oci/command-span.js';

const G = ['--root', '/run/sandlot/runtimes/runc', '--systemd-cgroup'];

test('runtime command lines give the span name and the container ID', () => {
  assert.deepEqual(describeCommand('/usr/sbin/runc', [...G, 'create', '--bundle', '/b', '--pid-file', '/p', 'c1']), { name: 'runc create', containerId: 'c1' });
  assert.deepEqual(describeCommand('/usr/sbin/runc', [...G, 'kill', '--all', 'c2', 'SIGKILL']), { name: 'runc kill', containerId: 'c2' });
  assert.deepEqual(describeCommand('/usr/sbin/runc', [...G, 'delete', '--force', 'c3']), { name: 'runc delete', containerId: 'c3' });
  assert.deepEqual(describeCommand('/usr/bin/runsc', [...G, 'events', '--stats', 'c4']), { name: 'runsc events', containerId: 'c4' });
  assert.deepEqual(describeCommand('/usr/bin/runsc', [...G, 'kill', '--pid', '7', 'c5', 'KILL']), { name: 'runsc kill', containerId: 'c5' });
  assert.deepEqual(describeCommand('/usr/sbin/runc', [...G, 'update', '--resources', '-', 'c6']), { name: 'runc update', containerId: 'c6' });
  assert.deepEqual(describeCommand('/usr/sbin/runc', [...G, 'list', '--format', 'json']), { name: 'runc list', containerId: undefined });
  assert.deepEqual(describeCommand('/usr/sbin/runc', ['--version']), { name: 'runc --version', containerId: undefined });
});

test('a command line without a known subcommand is named after its binary', () => {
  assert.deepEqual(describeCommand('/usr/bin/conmon', ['--cid', 'c1', '--runtime', '/usr/sbin/runc']), { name: 'conmon', containerId: undefined });
});
