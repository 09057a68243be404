// The oci-hooks 1.0.0 schema (S6): parsing, the pure `when` matcher, and the split of
// stages between the runtime and sandlot (hook-stages.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HookFileError, matchingHooks, mergeHooks, parseHookFile, whenMatches, type HookMatchFacts } from '../../../src/oci/oci-hooks.js';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { SANDLOT_HOOKS_FILE, splitHookStages, withHookStages, type HookableMonitor } from '../../../src/oci/hook-stages.js';
import { runtimeFeatures } from '../../../src/oci/runtime.js';

const facts = (over: Partial<HookMatchFacts> = {}): HookMatchFacts => ({
  annotations: { 'io.kubernetes.cri.container-type': 'container', 'com.example.department': 'fluid-dynamics' },
  command: '/usr/bin/nginx',
  hasBindMounts: false,
  ...over,
});

const file = (doc: unknown): string => JSON.stringify(doc);
const good = {
  version: '1.0.0',
  hook: { path: '/usr/bin/hook', args: ['hook', 'prestart'], env: ['A=1'], timeout: 5 },
  when: { always: true },
  stages: ['prestart'],
};

test('a 1.0.0 hook file parses with its name, hook, when and stages', () => {
  const def = parseHookFile(file(good), '/etc/containers/oci/hooks.d/01-x.json');
  assert.equal(def.name, '01-x.json');
  assert.deepEqual(def.hook, good.hook);
  assert.deepEqual(def.stages, ['prestart']);
});

test('malformed hook files are refused with the reason', () => {
  const bad: Array<[unknown, RegExp]> = [
    ['{', /parsing JSON/],
    [{ ...good, version: '0.1.0' }, /version: "0.1.0" is not supported/],
    [{ ...good, hook: { path: 'relative' } }, /hook.path: "relative" is not an absolute path/],
    [{ ...good, hook: { path: '/x', timeout: 0 } }, /hook.timeout/],
    [{ ...good, hook: { path: '/x', args: [1] } }, /hook.args/],
    [{ ...good, when: {} }, /when: at least one of always, annotations, commands or hasBindMounts must be set/],
    [{ ...good, when: { commands: ['('] } }, /when.commands\[0\]: "\(" is no regular expression/],
    [{ ...good, when: { annotations: { a: '[' } } }, /when.annotations\["a"\]/],
    [{ ...good, stages: [] }, /stages: a non-empty list/],
    [{ ...good, stages: ['prestop'] }, /unknown stage "prestop"/],
  ];
  for (const [doc, re] of bad) {
    assert.throws(
      () => parseHookFile(typeof doc === 'string' ? doc : file(doc), '/d/x.json'),
      (e: unknown) => e instanceof HookFileError && re.test(e.message),
      String(re),
    );
  }
});

test('when.always: true matches everything, false nothing', () => {
  assert.equal(whenMatches({ always: true }, facts()), true);
  assert.equal(whenMatches({ always: false }, facts()), false);
});

test('when.annotations: a key regex and a value regex must match one annotation', () => {
  assert.equal(whenMatches({ annotations: { '^com\\.example\\.department$': '.*fluid-dynamics.*' } }, facts()), true);
  assert.equal(whenMatches({ annotations: { '^com\\.example\\.department$': '^chemistry$' } }, facts()), false);
  assert.equal(whenMatches({ annotations: { department: 'fluid' } }, facts()), true, 'unanchored, as Go MatchString');
  // Key and value must match the same annotation.
  assert.equal(whenMatches({ annotations: { 'container-type': 'fluid' } }, facts()), false);
  // Every pair must match.
  assert.equal(whenMatches({ annotations: { department: 'fluid', missing: '.*' } }, facts()), false);
});

test('when.commands: one regex must match the command path', () => {
  assert.equal(whenMatches({ commands: ['^/bin/sh$', 'nginx$'] }, facts()), true);
  assert.equal(whenMatches({ commands: ['^/bin/sh$'] }, facts()), false);
  assert.equal(whenMatches({ commands: ['.*'] }, facts({ command: undefined })), false);
});

test('when.hasBindMounts: true matches containers with bind mounts only; false never', () => {
  assert.equal(whenMatches({ hasBindMounts: true }, facts({ hasBindMounts: true })), true);
  assert.equal(whenMatches({ hasBindMounts: true }, facts()), false);
  assert.equal(whenMatches({ hasBindMounts: false }, facts()), false);
});

test('when: every condition that is set must hold (1.0.0 is "and")', () => {
  const when = { commands: ['nginx'], hasBindMounts: true };
  assert.equal(whenMatches(when, facts({ hasBindMounts: true })), true);
  assert.equal(whenMatches(when, facts()), false);
  assert.equal(whenMatches({ always: true, commands: ['^/bin/sh$'] }, facts()), false);
});

test('matchingHooks collects the matching definitions per stage, in order; mergeHooks appends', () => {
  const a = parseHookFile(file({ ...good, hook: { path: '/a' }, stages: ['prestart', 'poststop'] }), '/d/01-a.json');
  const b = parseHookFile(file({ ...good, hook: { path: '/b' }, when: { commands: ['^/bin/sh$'] } }), '/d/02-b.json');
  const c = parseHookFile(file({ ...good, hook: { path: '/c' }, when: { annotations: { department: '.' } } }), '/d/03-c.json');
  const hooks = matchingHooks([a, b, c], facts());
  assert.deepEqual(hooks, { prestart: [{ path: '/a' }, { path: '/c' }], poststop: [{ path: '/a' }] });
  assert.deepEqual(mergeHooks({ prestart: [{ path: '/cdi' }] }, hooks).prestart, [{ path: '/cdi' }, { path: '/a' }, { path: '/c' }]);
});

test('S6: the runtime keeps the stages it runs right; sandlot takes poststart and poststop; runsc cannot run container-namespace stages', () => {
  const all = Object.fromEntries(
    ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'].map((s) => [s, [{ path: `/${s}` }]]),
  );
  const runc = splitHookStages(all, runtimeFeatures('oci').runtimeHookStages);
  assert.deepEqual(Object.keys(runc.runtime), ['prestart', 'createRuntime', 'createContainer', 'startContainer']);
  assert.deepEqual(Object.keys(runc.sandlot), ['poststart', 'poststop']);
  assert.deepEqual(runc.dropped, []);
  const runsc = splitHookStages(all, runtimeFeatures('runsc').runtimeHookStages);
  assert.deepEqual(Object.keys(runsc.runtime), ['prestart', 'createRuntime']);
  assert.deepEqual(Object.keys(runsc.sandlot), ['poststart', 'poststop']);
  assert.deepEqual(runsc.dropped, ['createContainer', 'startContainer']);
});

/** A monitor that only records its calls, over a bundle in a temp dir. */
async function hookedMonitor(): Promise<{ bundle: string; calls: string[]; ran: string[]; monitor: HookableMonitor; done: () => Promise<void> }> {
  const bundle = await fs.mkdtemp(path.join(os.tmpdir(), 'sandlot-hook-stages-'));
  const calls: string[] = [];
  const ran: string[] = [];
  const inner: HookableMonitor = {
    create: (req) => Promise.resolve(calls.push(`create ${req.id}`)),
    start: (id) => Promise.resolve(void calls.push(`start ${id}`)),
    delete: (id) => Promise.resolve(void calls.push(`delete ${id}`)),
    state: () => Promise.resolve(undefined),
  };
  const monitor = withHookStages(inner, {
    features: runtimeFeatures('oci'),
    handler: 'runc',
    bundleOf: () => bundle,
    log: pino({ level: 'silent' }),
    runHook: (hook) => Promise.resolve(void ran.push(hook.path)),
  });
  return { bundle, calls, ran, monitor, done: () => fs.rm(bundle, { recursive: true, force: true }) };
}

test('S6: the spec given at create is split without reading config.json; poststart and poststop run from sandlot-hooks.json', async () => {
  const m = await hookedMonitor();
  try {
    const spec = {
      ociVersion: '1.0.2',
      annotations: { a: 'b' },
      process: { args: ['sh'] },
      hooks: { prestart: [{ path: '/pre' }], poststart: [{ path: '/post' }], poststop: [{ path: '/stop' }] },
    };
    await fs.writeFile(path.join(m.bundle, 'config.json'), JSON.stringify(spec));
    await m.monitor.create({ id: 'c1', paths: { bundle: m.bundle }, spec });
    const onDisk = JSON.parse(await fs.readFile(path.join(m.bundle, 'config.json'), 'utf8')) as typeof spec;
    assert.deepEqual(onDisk.hooks, { prestart: [{ path: '/pre' }] });
    assert.deepEqual(onDisk.process, spec.process);
    assert.deepEqual(Object.keys(spec.hooks), ['prestart', 'poststart', 'poststop'], "the caller's spec is left as it was");
    await m.monitor.start('c1');
    await m.monitor.delete('c1');
    assert.deepEqual(m.ran, ['/post', '/stop']);
    await assert.rejects(fs.access(path.join(m.bundle, SANDLOT_HOOKS_FILE)), { code: 'ENOENT' });
  } finally {
    await m.done();
  }
});

test('S6: a container created without sandlot stages has no sandlot-hooks.json looked for; one this monitor did not create has it read', async () => {
  const m = await hookedMonitor();
  try {
    const spec = { ociVersion: '1.0.2', hooks: { prestart: [{ path: '/pre' }] } };
    await fs.writeFile(path.join(m.bundle, 'config.json'), JSON.stringify(spec));
    await m.monitor.create({ id: 'c1', paths: { bundle: m.bundle }, spec });
    // Left there by hand: a container known to have none never reads it.
    const file = { version: 1, ociVersion: '1.0.2', annotations: {}, hooks: { poststart: [{ path: '/post' }], poststop: [{ path: '/stop' }] } };
    await fs.writeFile(path.join(m.bundle, SANDLOT_HOOKS_FILE), JSON.stringify(file));
    await m.monitor.start('c1');
    await m.monitor.delete('c1');
    assert.deepEqual(m.ran, []);
    // A container this monitor never created (a daemon restart): the file is read.
    await m.monitor.start('c2');
    await m.monitor.delete('c2');
    assert.deepEqual(m.ran, ['/post', '/stop']);
    assert.deepEqual(m.calls, ['create c1', 'start c1', 'delete c1', 'start c2', 'delete c2']);
  } finally {
    await m.done();
  }
});
