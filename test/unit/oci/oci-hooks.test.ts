// The oci-hooks 1.0.0 schema (S6): parsing, the pure `when` matcher, and the split of
// stages between the runtime and sandlot (hook-stages.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HookFileError, matchingHooks, mergeHooks, parseHookFile, whenMatches, type HookMatchFacts } from '../../../src/oci/oci-hooks.js';
import { splitHookStages } from '../../../src/oci/hook-stages.js';
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
