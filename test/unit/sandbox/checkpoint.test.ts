// ContainerCheckpointer (S17) on runsc handlers: the refusal names the reason for the
// handler's network mode, runs no runtime command and writes nothing; the S4/S17 state
// check comes first. (The measurements behind the reason: src/sandbox/container/checkpoint.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { RuntimeHandlerConfig } from '../../../src/config/types.js';
import type { CommandRunner } from '../../../src/oci/command.js';
import { createRuntime } from '../../../src/oci/runtimes.js';
import type { ContainerRecord } from '../../../src/sandbox/container/container.js';
import { ContainerCheckpointer } from '../../../src/sandbox/container/checkpoint.js';

const log = pino({ level: 'silent' });

function checkpointer(network: RuntimeHandlerConfig['network'], state: ContainerRecord['state'], calls: string[][]): ContainerCheckpointer {
  const run: CommandRunner = (_file, args) => {
    calls.push(args);
    return Promise.resolve({ stdout: '', stderr: '' });
  };
  const runsc = createRuntime({
    name: 'runsc',
    config: { type: 'runsc', path: '/bin/true', args: [], network, overlay: '', port_forward_relay: false },
    stateDir: '/run/sandlot-test',
    log,
    run,
  });
  const rec = { id: 'c1', state, runtimeType: 'runsc', runtimeHandler: 'runsc', unreadable: undefined } as unknown as ContainerRecord;
  return new ContainerCheckpointer({
    containers: { status: () => Promise.resolve(rec) },
    driver: () => runsc,
    probe: { ok: true, output: 'Looks good.' },
    log,
    run,
  });
}

test('S17 runsc, network auto (= host): UNIMPLEMENTED quoting the hostinet refusal and the two-container restore', async () => {
  const calls: string[][] = [];
  await assert.rejects(checkpointer('auto', 'running', calls).checkpoint('c1', '/tmp/never/app.tar', 1000), (e: Error) => {
    assert.equal(e.name, 'UnimplementedError');
    assert.match(
      e.message,
      /^checkpointing container "c1": runsc refuses to checkpoint a sandbox on host networking \("checkpoint not supported when using hostinet"\)/,
    );
    assert.match(e.message, /cannot restore a sandbox of more than one container/);
    return true;
  });
  assert.deepEqual(calls, [], 'no runsc or tar command');
});

test('S17 runsc, network sandbox (netstack): UNIMPLEMENTED, the checkpoint would stop the pod with no restore', async () => {
  const calls: string[][] = [];
  await assert.rejects(checkpointer('sandbox', 'created', calls).checkpoint('c1', '/tmp/never/app.tar', 1000), (e: Error) => {
    assert.equal(e.name, 'UnimplementedError');
    assert.doesNotMatch(e.message, /hostinet/);
    assert.match(e.message, /^checkpointing container "c1": a runsc checkpoint saves the whole pod sandbox/);
    assert.match(e.message, /"max channels limit": "cannot allocate memory"\), so checkpointing would stop the pod without a way back$/);
    return true;
  });
  assert.deepEqual(calls, []);
});

test('S4/S17: a stopped runsc container is FAILED_PRECONDITION naming its state, before the runtime refusal', async () => {
  await assert.rejects(checkpointer('auto', 'stopped', []).checkpoint('c1', '/tmp/never/app.tar', 1000), {
    name: 'FailedPreconditionError',
    message: /cannot checkpoint container "c1" in state stopped/,
  });
});
