import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mock, test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { OptimizerSwitch, startedWithoutOptimizer } from '../../../src/util/optimizer-switch.js';

/** A stream handler's answers, each after a turn of the event loop; then `failure`, if given. */
async function* answers(items: number[], failure?: Error): AsyncGenerator<number> {
  for (const n of items) {
    await tick();
    yield n;
  }
  if (failure) throw failure;
}

function recorded(enabled = true, delayMs = 0): { sw: OptimizerSwitch; flags: string[] } {
  const flags: string[] = [];
  return { sw: new OptimizerSwitch({ enabled, setFlags: (f) => flags.push(f), delayMs }), flags };
}

test('the first holder turns TurboFan on, the last one off', async () => {
  const { sw, flags } = recorded();
  let release!: () => void;
  const first = sw.during(() => new Promise<void>((r) => (release = r)));
  const second = sw.during(() => Promise.resolve('done'));
  assert.equal(await second, 'done');
  assert.deepEqual(flags, ['--turbofan']);
  assert.equal(sw.active, 1);
  release();
  await first;
  assert.deepEqual(flags, ['--turbofan', '--no-turbofan']);
  assert.equal(sw.active, 0);
});

test('work that fails releases the switch and keeps its error', async () => {
  const { sw, flags } = recorded();
  const boom = new RangeError('bad layer');
  await assert.rejects(
    sw.during(() => Promise.reject(boom)),
    (e) => e === boom,
  );
  assert.deepEqual(flags, ['--turbofan', '--no-turbofan']);
});

test('a release function counts once', () => {
  const { sw, flags } = recorded();
  const a = sw.hold();
  const b = sw.hold();
  a();
  a();
  assert.equal(sw.active, 1);
  assert.deepEqual(flags, ['--turbofan']);
  b();
  assert.deepEqual(flags, ['--turbofan', '--no-turbofan']);
});

test('a stream holds the switch until it ends, is left, or throws', async () => {
  const { sw, flags } = recorded();
  const seen: number[] = [];
  for await (const n of sw.duringEach(() => [1, 2, 3])) {
    seen.push(n);
    assert.equal(sw.active, 1);
  }
  assert.deepEqual(seen, [1, 2, 3]);
  assert.equal(sw.active, 0);

  for await (const n of sw.duringEach(() => answers([1, 2]))) {
    if (n === 1) break; // a cancelled stream: the consumer returns early
  }
  assert.equal(sw.active, 0);

  const boom = new Error('pull failed');
  await assert.rejects(
    (async () => {
      for await (const n of sw.duringEach(() => answers([1], boom))) void n;
    })(),
    (e) => e === boom,
  );
  assert.equal(sw.active, 0);
  assert.deepEqual(flags, ['--turbofan', '--no-turbofan', '--turbofan', '--no-turbofan', '--turbofan', '--no-turbofan']);
});

test('with a delay: work over before it never turns TurboFan on; work that lasts gets it then, until its end', (t) => {
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  const { sw, flags } = recorded(true, 1000);
  const short = sw.hold();
  mock.timers.tick(999);
  short();
  mock.timers.tick(5000);
  assert.deepEqual(flags, [], 'released before the delay: never on');

  const long = sw.hold();
  mock.timers.tick(600);
  const other = sw.hold(); // a second holder does not start the wait again
  mock.timers.tick(400);
  assert.deepEqual(flags, ['--turbofan'], 'on once the first holder held it for the delay');
  long();
  assert.deepEqual(flags, ['--turbofan'], 'another holder still in');
  other();
  assert.deepEqual(flags, ['--turbofan', '--no-turbofan']);

  const again = sw.hold();
  mock.timers.tick(999);
  again();
  mock.timers.tick(5000);
  assert.deepEqual(flags, ['--turbofan', '--no-turbofan'], 'each hold from idle waits the whole delay afresh');
});

test('with a delay: a holder that says now turns TurboFan on at once, also while others wait; off with the last', (t) => {
  mock.timers.enable({ apis: ['setTimeout'] });
  t.after(() => mock.timers.reset());
  const { sw, flags } = recorded(true, 1000);
  const waiting = sw.hold();
  mock.timers.tick(300);
  const big = sw.hold(true);
  assert.deepEqual(flags, ['--turbofan'], 'on at once for the big work');
  mock.timers.tick(5000);
  assert.deepEqual(flags, ['--turbofan'], 'the pending wait does not turn it on a second time');
  big();
  assert.deepEqual(flags, ['--turbofan'], 'the waiting holder is still in');
  const another = sw.hold(true);
  another();
  waiting();
  assert.deepEqual(flags, ['--turbofan', '--no-turbofan'], 'off when the last holder leaves');
  const alone = sw.hold(true);
  alone();
  assert.deepEqual(flags, ['--turbofan', '--no-turbofan', '--turbofan', '--no-turbofan']);
});

test('a process started with TurboFan is left alone', async () => {
  const { sw, flags } = recorded(false);
  assert.equal(await sw.during(() => Promise.resolve(7)), 7);
  assert.deepEqual(flags, []);
});

test('startedWithoutOptimizer reads the last TurboFan flag of the command line', () => {
  assert.equal(startedWithoutOptimizer([]), false);
  assert.equal(startedWithoutOptimizer(['--expose-gc', '--no-opt']), true);
  assert.equal(startedWithoutOptimizer(['--no-turbofan']), true);
  assert.equal(startedWithoutOptimizer(['--no-opt', '--opt']), false);
});

test('V8 optimizes a function only while the switch has TurboFan on', () => {
  // A process started as the daemon is (--no-opt); V8's own test intrinsics ask for an
  // optimization and report whether TurboFan made one (bit 4 of GetOptimizationStatus).
  const script = `
    const v8 = require('node:v8');
    function optimizedWith(flag) {
      v8.setFlagsFromString(flag);
      const f = new Function('a', 'b', 'return a * b + 1;');
      %PrepareFunctionForOptimization(f);
      f(1, 2);
      f(3, 4);
      %OptimizeFunctionOnNextCall(f);
      f(5, 6);
      return (%GetOptimizationStatus(f) & (1 << 4)) !== 0;
    }
    process.stdout.write(JSON.stringify([optimizedWith('--no-turbofan'), optimizedWith('--turbofan'), optimizedWith('--no-turbofan')]));`;
  const out = execFileSync(process.execPath, ['--no-opt', '--allow-natives-syntax', '-e', script], { encoding: 'utf8' });
  assert.deepEqual(JSON.parse(out), [false, true, false]);
});
