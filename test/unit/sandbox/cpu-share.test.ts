import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CpuRateSampler, proportionalCpuUsageNs } from '../../../src/sandbox/stats/cpu-share.js';
import { InvalidArgumentError } from '../../../src/errors.js';

test('S13: no containers listed → 0', () => {
  assert.equal(proportionalCpuUsageNs({ containerId: 'a', inSandboxUsageNs: {}, cgroupUsageNs: 5e9 }), 0);
  assert.equal(proportionalCpuUsageNs({ containerId: 'a', inSandboxUsageNs: new Map() }), 0);
});

test('S13: no cgroup → the in-sandbox figure alone', () => {
  const usage = { a: 300, b: 100 };
  assert.equal(proportionalCpuUsageNs({ containerId: 'a', inSandboxUsageNs: usage }), 300);
  assert.equal(proportionalCpuUsageNs({ containerId: 'a', inSandboxUsageNs: usage, cgroupUsageNs: undefined }), 300);
});

test('S13: cgroup usage 0 → the in-sandbox figure alone', () => {
  assert.equal(proportionalCpuUsageNs({ containerId: 'b', inSandboxUsageNs: { a: 300, b: 100 }, cgroupUsageNs: 0 }), 100);
  assert.equal(proportionalCpuUsageNs({ containerId: 'b', inSandboxUsageNs: { a: 300, b: 100 }, cgroupUsageNs: 0n }), 100);
});

test('S13: in-sandbox usage all 0 → the cgroup usage split equally', () => {
  const usage = new Map([
    ['a', 0],
    ['b', 0],
    ['c', 0],
  ]);
  assert.equal(proportionalCpuUsageNs({ containerId: 'b', inSandboxUsageNs: usage, cgroupUsageNs: 900 }), 300);
});

test('S13: each container gets its proportional share of the cgroup usage', () => {
  const usage = { busy: 900, idle: 100 };
  const busy = proportionalCpuUsageNs({ containerId: 'busy', inSandboxUsageNs: usage, cgroupUsageNs: 2000 });
  const idle = proportionalCpuUsageNs({ containerId: 'idle', inSandboxUsageNs: usage, cgroupUsageNs: 2000 });
  assert.equal(busy, 1800);
  assert.equal(idle, 200);
  assert.equal(busy + idle, 2000);
});

test('S13: a container the sandbox does not list gets no share', () => {
  assert.equal(proportionalCpuUsageNs({ containerId: 'gone', inSandboxUsageNs: { a: 5 }, cgroupUsageNs: 10 }), 0);
  assert.equal(proportionalCpuUsageNs({ containerId: 'gone', inSandboxUsageNs: { a: 0 }, cgroupUsageNs: 10 }), 0);
  assert.equal(proportionalCpuUsageNs({ containerId: 'gone', inSandboxUsageNs: { a: 5 } }), 0);
});

test('S13: nanosecond counters near 1e18 do not overflow (floating point)', () => {
  // 16 s each already overflows a uint64 product; 1e18 ns is ~31 years of CPU.
  const big = 10n ** 18n;
  const usage = new Map<string, bigint>([
    ['a', big],
    ['b', 3n * big],
  ]);
  const cg = 8n * big;
  const a = proportionalCpuUsageNs({ containerId: 'a', inSandboxUsageNs: usage, cgroupUsageNs: cg });
  const b = proportionalCpuUsageNs({ containerId: 'b', inSandboxUsageNs: usage, cgroupUsageNs: cg });
  assert.ok(Number.isFinite(a) && Number.isFinite(b));
  assert.ok(Math.abs(a - 2e18) / 2e18 < 1e-12, `a=${a}`);
  assert.ok(Math.abs(b - 6e18) / 6e18 < 1e-12, `b=${b}`);
  // Values above 2^64 as bigints still scale.
  const huge = 2n ** 64n + 7n;
  const h = proportionalCpuUsageNs({ containerId: 'x', inSandboxUsageNs: { x: huge, y: huge }, cgroupUsageNs: huge });
  assert.ok(Math.abs(h - Number(huge) / 2) / (Number(huge) / 2) < 1e-12);
});

test('S13: results are whole nanoseconds', () => {
  const r = proportionalCpuUsageNs({ containerId: 'a', inSandboxUsageNs: { a: 1, b: 2 }, cgroupUsageNs: 10 });
  assert.equal(r, 3);
});

test('S13: a negative or non-finite usage is rejected naming the container', () => {
  assert.throws(() => proportionalCpuUsageNs({ containerId: 'a', inSandboxUsageNs: { a: -1 }, cgroupUsageNs: 1 }), {
    name: InvalidArgumentError.name,
    message: /container "a" is -1/,
  });
  assert.throws(() => proportionalCpuUsageNs({ containerId: 'a', inSandboxUsageNs: { a: 1 }, cgroupUsageNs: Number.NaN }), {
    message: /cgroup is NaN/,
  });
});

test('usage_nano_cores: undefined on the first sample, then Δcpu ÷ Δt', () => {
  const s = new CpuRateSampler();
  assert.equal(s.sample('c', 1_000_000_000n, 0n), undefined);
  // 0.5 s of CPU over 1 s of wall clock = half a core.
  assert.equal(s.sample('c', 2_000_000_000n, 500_000_000n), 500_000_000);
  // 2 s of CPU over 1 s = two cores.
  assert.equal(s.sample('c', 3_000_000_000, 2_500_000_000), 2_000_000_000);
});

test('usage_nano_cores: a sample at the same timestamp returns the previous rate', () => {
  const s = new CpuRateSampler();
  s.sample('c', 1e9, 0);
  assert.equal(s.sample('c', 2e9, 1e8), 1e8);
  assert.equal(s.sample('c', 2e9, 1e8), 1e8);
  assert.equal(s.sample('c', 1.5e9, 9e9), 1e8);
});

test('usage_nano_cores: a counter that goes backwards (restart) starts over', () => {
  const s = new CpuRateSampler();
  s.sample('c', 1e9, 5e9);
  assert.equal(s.sample('c', 2e9, 1e6), undefined);
  assert.equal(s.sample('c', 3e9, 1e6 + 2.5e8), 2.5e8);
});

test('usage_nano_cores: samples are kept per key and can be dropped', () => {
  const s = new CpuRateSampler();
  s.sample('a', 1e9, 0);
  s.sample('b', 1e9, 0);
  assert.equal(s.sample('a', 2e9, 1e9), 1e9);
  assert.equal(s.sample('b', 2e9, 3e8), 3e8);
  s.retain(['a']);
  assert.equal(s.size, 1);
  assert.equal(s.sample('b', 3e9, 6e8), undefined);
  s.forget('a');
  assert.equal(s.sample('a', 3e9, 2e9), undefined);
});

test('usage_nano_cores: realistic nanosecond clocks (~1.8e18) keep their precision', () => {
  const s = new CpuRateSampler();
  const t0 = 1_800_000_000_000_000_000n;
  s.sample('c', t0, 10n ** 12n);
  const r = s.sample('c', t0 + 10_000_000_000n, 10n ** 12n + 2_500_000_000n);
  assert.equal(r, 250_000_000);
});
