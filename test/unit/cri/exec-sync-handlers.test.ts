// ExecSync in its own handler file: the request is validated here (container_id, cmd,
// timeout in seconds) before the container layer runs anything; the answer carries the
// output and the exit code. A fake container layer records what reaches it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { execSyncHandlers, execSyncTimeoutMs, type ExecSyncHandlerDeps } from '../../../src/cri/exec-sync-handlers.js';
import type { CallContext } from '../../../src/cri/handler-types.js';
import { decodedRequest } from '../../../src/cri/proto.js';
import { InvalidArgumentError, NotFoundError } from '../../../src/errors.js';

interface Seen {
  id: string;
  cmd: string[];
  timeoutMs: number;
  signal: AbortSignal | undefined;
}

function fakeContainers(seen: Seen[]): ExecSyncHandlerDeps['containers'] {
  return {
    execSync(id, cmd, timeoutMs, signal) {
      if (id === 'gone') return Promise.reject(new NotFoundError(`container "${id}" not found`));
      seen.push({ id, cmd, timeoutMs, signal });
      return Promise.resolve({ stdout: Buffer.from('out'), stderr: Buffer.from('err'), exitCode: 3 });
    },
  };
}

function setup(): { seen: Seen[]; call: (req: Parameters<typeof decodedRequest<'ExecSync'>>[1]) => Promise<unknown>; ctx: CallContext } {
  const seen: Seen[] = [];
  const h = execSyncHandlers({ containers: fakeContainers(seen) });
  const ctx: CallContext = { log: pino({ level: 'silent' }), signal: new AbortController().signal };
  return { seen, ctx, call: (req) => h.unary!.ExecSync!(decodedRequest('ExecSync', req), ctx) };
}

test('ExecSync answers the output and exit code, with the timeout in milliseconds and the call signal', async () => {
  const { seen, call, ctx } = setup();
  const res = await call({ container_id: 'c1', cmd: ['sh', '-c', 'exit 3'], timeout: 7 });
  assert.deepEqual(res, { stdout: Buffer.from('out'), stderr: Buffer.from('err'), exit_code: 3 });
  assert.deepEqual(seen, [{ id: 'c1', cmd: ['sh', '-c', 'exit 3'], timeoutMs: 7000, signal: ctx.signal }]);
});

test('ExecSync refuses an empty container_id or cmd before the container layer sees it', async () => {
  const { seen, call } = setup();
  await assert.rejects(call({ cmd: ['true'] }), (e: unknown) => e instanceof InvalidArgumentError && /container_id must not be empty/.test(e.message));
  await assert.rejects(
    call({ container_id: 'c1' }),
    (e: unknown) => e instanceof InvalidArgumentError && /exec in container "c1": cmd must not be empty/.test(e.message),
  );
  await assert.rejects(call({ container_id: 'c1', cmd: [''] }), InvalidArgumentError);
  assert.deepEqual(seen, []);
});

test('ExecSync passes the container layer NotFound through (S4 guards live below)', async () => {
  const { call } = setup();
  await assert.rejects(call({ container_id: 'gone', cmd: ['true'] }), NotFoundError);
});

test('ExecSync timeout: 0 is none, seconds become milliseconds, anything else is INVALID_ARGUMENT naming it', () => {
  assert.equal(execSyncTimeoutMs('0'), 0);
  assert.equal(execSyncTimeoutMs('5'), 5000);
  for (const bad of ['-1', '1.5', 'x', '99999999999999999999']) {
    assert.throws(
      () => execSyncTimeoutMs(bad),
      (e: unknown) => e instanceof InvalidArgumentError && /timeout/.test(e.message),
      bad,
    );
  }
});
