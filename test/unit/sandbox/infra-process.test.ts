// Who a pod's infra process is without a conmon (src/sandbox/pod/infra-process.ts): its
// PID and the start time recorded at create. A process with the PID but another start
// time is not the infra, and is never signalled.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { isSameProcess, processStartTicks, signalInfraProcess } from '../../../src/sandbox/pod/infra-process.js';

test('the start time of a running process is read; of no process, undefined', () => {
  const own = processStartTicks(process.pid);
  assert.ok(own !== undefined && own > 0);
  assert.equal(processStartTicks(process.pid), own, 'the same on every read');
  assert.equal(processStartTicks(0), undefined);
  assert.equal(processStartTicks(2 ** 22 + 1), undefined, 'above pid_max: no such process');
  assert.ok(isSameProcess(process.pid, own));
  assert.ok(!isSameProcess(process.pid, own - 1), 'another start time: another process');
  assert.ok(isSameProcess(process.pid, undefined), 'a record without a start time: the PID alone');
});

test('a signal goes to the process only when its start time is the recorded one', async (t) => {
  const child = spawn('sleep', ['600'], { stdio: 'ignore' });
  t.after(() => child.kill('SIGKILL'));
  const pid = child.pid!;
  const ticks = processStartTicks(pid);
  assert.ok(ticks !== undefined);
  assert.equal(signalInfraProcess(pid, ticks + 1, 'SIGKILL'), 'gone', 'a PID of another start time is not the infra');
  assert.equal(child.exitCode, null);
  assert.ok(isSameProcess(pid, ticks), 'and it still runs');
  const exited = once(child, 'exit');
  assert.equal(signalInfraProcess(pid, ticks, 'SIGKILL'), 'sent');
  const [, signal] = (await exited) as [number | null, string | null];
  assert.equal(signal, 'SIGKILL');
  assert.equal(signalInfraProcess(pid, ticks, 'SIGKILL'), 'gone', 'an ended process is gone');
});
