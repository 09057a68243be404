// Issue 10 item 2: "all capabilities" (privileged, add ALL) is what the daemon's bounding
// set holds, less what the handler's runtime refuses; a named one outside it fails early.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FailedPreconditionError } from '../../../src/errors.js';
import {
  ALL_CAPABILITIES,
  boundingSetOfStatus,
  capabilitiesOfMask,
  computeCapabilities,
  DEFAULT_CAPABILITIES,
  unknownCapabilityIn,
} from '../../../src/oci/capabilities.js';

// CapBnd of this machine's root (measured): every capability 0..40 but CAP_SYS_RESOURCE (24).
const HERE = '000001fffeffffff';
const RUNSC_UNKNOWN = ['CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE'];

test('a CapBnd mask names its bits in number order', () => {
  const caps = capabilitiesOfMask(HERE);
  assert.equal(caps.length, 40);
  assert.ok(!caps.includes('CAP_SYS_RESOURCE'));
  assert.deepEqual(
    caps,
    ALL_CAPABILITIES.filter((c) => c !== 'CAP_SYS_RESOURCE'),
  );
  assert.deepEqual(capabilitiesOfMask('0'), []);
  assert.deepEqual(capabilitiesOfMask('3'), ['CAP_CHOWN', 'CAP_DAC_OVERRIDE']);
  // bits the table does not know (a newer kernel) are ignored
  assert.deepEqual(capabilitiesOfMask('8000000000000001'), ['CAP_CHOWN']);
});

test('the bounding set is read from a /proc/<pid>/status text', () => {
  const status = 'Name:\tnode\nCapInh:\t0000000000000000\nCapBnd:\t000001fffeffffff\nCapAmb:\t0000000000000000\n';
  assert.deepEqual(boundingSetOfStatus(status), capabilitiesOfMask(HERE));
  assert.equal(boundingSetOfStatus('Name:\tx\n'), undefined);
});

test('the capability runsc refuses is found in its error or debug log', () => {
  assert.equal(unknownCapabilityIn('applyCaps() failed: invalid capability "CAP_BPF"'), 'CAP_BPF');
  assert.equal(unknownCapabilityIn('creating container: unknown capability "CAP_PERFMON"'), 'CAP_PERFMON');
  assert.equal(unknownCapabilityIn('cannot read client sync file: EOF'), undefined);
});

test("privileged and add ALL are the available set: the daemon's bounding set less what runsc refuses", () => {
  const daemon = capabilitiesOfMask(HERE);
  const runsc = daemon.filter((c) => !RUNSC_UNKNOWN.includes(c));
  for (const available of [daemon, runsc]) {
    const priv = computeCapabilities({ drop_capabilities: ['ALL'] }, { privileged: true, available });
    assert.deepEqual(priv.bounding, available);
    assert.deepEqual(priv.effective, available);
    const all = computeCapabilities({ add_capabilities: ['ALL'] }, { available });
    assert.deepEqual(all.bounding, available);
    const allButChown = computeCapabilities({ add_capabilities: ['ALL'], drop_capabilities: ['CHOWN'] }, { available });
    assert.deepEqual(
      allButChown.bounding,
      available.filter((c) => c !== 'CAP_CHOWN'),
    );
  }
  // the default set is untouched when the daemon holds it all
  assert.deepEqual([...computeCapabilities(undefined, { available: daemon }).bounding].sort(), [...DEFAULT_CAPABILITIES].sort());
});

test('a named capability outside the available set is FAILED_PRECONDITION naming the field, the capability and the handler', () => {
  const available = capabilitiesOfMask(HERE);
  assert.throws(
    () => computeCapabilities({ add_capabilities: ['SYS_RESOURCE'] }, { available, handler: 'runc' }),
    (e: Error) =>
      e instanceof FailedPreconditionError &&
      e.message.startsWith('linux.security_context.capabilities.add_capabilities: capability "SYS_RESOURCE" is not available on runtime handler "runc"') &&
      e.message.includes('CAP_SYS_RESOURCE'),
  );
  assert.throws(
    () => computeCapabilities({ add_ambient_capabilities: ['BPF'] }, { available: available.filter((c) => !RUNSC_UNKNOWN.includes(c)), handler: 'runsc' }),
    (e: Error) =>
      e instanceof FailedPreconditionError && /add_ambient_capabilities: capability "BPF" is not available on runtime handler "runsc"/.test(e.message),
  );
  // dropping one the set lacks is fine
  assert.ok(!computeCapabilities({ drop_capabilities: ['SYS_RESOURCE'] }, { available }).bounding.includes('CAP_SYS_RESOURCE'));
});
