import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError } from '../../../src/errors.js';
import { DEFAULT_CAPABILITIES } from '../../../src/oci/capabilities.js';
import { CLONE_NAMESPACE_FLAGS, DEFAULT_ALLOWED_SYSCALLS, defaultSeccompProfile, parseSeccompProfile } from '../../../src/oci/seccomp-default.js';
import type { LinuxSeccomp } from '../../../src/oci/spec-common.js';

function allowed(p: LinuxSeccomp): Set<string> {
  const out = new Set<string>();
  for (const s of p.syscalls ?? []) if (s.action === 'SCMP_ACT_ALLOW' && (s.args ?? []).length === 0) for (const n of s.names) out.add(n);
  return out;
}

test('RuntimeDefault denies by default and allows the usual syscalls of a program', () => {
  const p = defaultSeccompProfile(DEFAULT_CAPABILITIES);
  assert.equal(p.defaultAction, 'SCMP_ACT_ERRNO');
  assert.deepEqual(p.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  assert.ok(DEFAULT_ALLOWED_SYSCALLS.length > 300, `a real allow-list, got ${DEFAULT_ALLOWED_SYSCALLS.length}`);
  const a = allowed(p);
  for (const s of [
    'read',
    'write',
    'openat',
    'execve',
    'mmap',
    'futex',
    'epoll_wait',
    'socket',
    'connect',
    'exit_group',
    'rt_sigaction',
    'arch_prctl',
    'chroot',
  ]) {
    assert.ok(a.has(s), s);
  }
  // The dangerous ones stay denied for a default container.
  for (const s of [
    'mount',
    'umount2',
    'unshare',
    'setns',
    'reboot',
    'init_module',
    'kexec_load',
    'bpf',
    'open_by_handle_at',
    'keyctl',
    'add_key',
    'swapon',
    'pivot_root',
    'userfaultfd',
  ]) {
    assert.ok(!a.has(s), s);
  }
  assert.equal(new Set(DEFAULT_ALLOWED_SYSCALLS).size, DEFAULT_ALLOWED_SYSCALLS.length, 'no duplicates');
});

test('RuntimeDefault without CAP_SYS_ADMIN: clone only without namespace flags, clone3 → ENOSYS', () => {
  const p = defaultSeccompProfile(DEFAULT_CAPABILITIES);
  const clone = p.syscalls?.find((s) => s.names.includes('clone'));
  assert.deepEqual(clone?.args, [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }]);
  const clone3 = p.syscalls?.find((s) => s.names.includes('clone3'));
  assert.deepEqual([clone3?.action, clone3?.errnoRet], ['SCMP_ACT_ERRNO', 38]);
  const personality = p.syscalls?.filter((s) => s.names.includes('personality')).map((s) => s.args?.[0]?.value);
  assert.deepEqual(personality, [0, 8, 0x20000, 0x20008, 0xffffffff]);
});

test("RuntimeDefault opens a capability's syscalls only when the bounding set has it", () => {
  const admin = allowed(defaultSeccompProfile([...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN', 'CAP_SYS_PTRACE', 'CAP_SYS_TIME']));
  for (const s of ['mount', 'umount2', 'unshare', 'setns', 'clone', 'clone3', 'pidfd_getfd', 'settimeofday']) assert.ok(admin.has(s), s);
  const noChroot = allowed(defaultSeccompProfile(DEFAULT_CAPABILITIES.filter((c) => c !== 'CAP_SYS_CHROOT')));
  assert.ok(!noChroot.has('chroot'));
  const withAdmin = defaultSeccompProfile(['CAP_SYS_ADMIN']);
  assert.ok(!withAdmin.syscalls?.some((s) => s.names.includes('clone') && s.args !== undefined), 'no clone restriction with CAP_SYS_ADMIN');
});

test('a Localhost profile in OCI form loads as is', () => {
  const text = JSON.stringify({
    defaultAction: 'SCMP_ACT_LOG',
    architectures: ['SCMP_ARCH_X86_64'],
    syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
  });
  assert.deepEqual(parseSeccompProfile(text, DEFAULT_CAPABILITIES, '"/p.json"'), {
    defaultAction: 'SCMP_ACT_LOG',
    architectures: ['SCMP_ARCH_X86_64'],
    syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
  });
});

test('a Localhost profile in Docker form: archMap, name, includes/excludes by capability and arch', () => {
  const text = JSON.stringify({
    defaultAction: 'SCMP_ACT_ERRNO',
    archMap: [
      { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
      { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
    ],
    syscalls: [
      { name: 'read', action: 'SCMP_ACT_ALLOW' },
      { names: ['mount'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
      { names: ['chroot'], action: 'SCMP_ACT_ALLOW', excludes: { caps: ['CAP_SYS_ADMIN'] } },
      { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64'] } },
      { names: ['set_tls'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['arm64'] } },
      { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }] },
    ],
  });
  const p = parseSeccompProfile(text, DEFAULT_CAPABILITIES, 'x');
  assert.deepEqual(p.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  assert.deepEqual(
    p.syscalls?.map((s) => s.names[0]),
    ['read', 'chroot', 'arch_prctl', 'personality'],
  );
  const admin = parseSeccompProfile(text, ['CAP_SYS_ADMIN'], 'x');
  assert.deepEqual(
    admin.syscalls?.map((s) => s.names[0]),
    ['read', 'mount', 'arch_prctl', 'personality'],
  );
});

test('a broken Localhost profile is INVALID_ARGUMENT naming the file', () => {
  const bad = (text: string, re: RegExp): void => {
    assert.throws(
      () => parseSeccompProfile(text, [], '"/p.json"'),
      (e: Error) => e instanceof InvalidArgumentError && e.message.includes('"/p.json"') && re.test(e.message),
    );
  };
  bad('{', /invalid JSON/);
  bad('[]', /not a JSON object/);
  bad('{"defaultAction":"ALLOW"}', /defaultAction "ALLOW"/);
  bad('{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":[],"action":"SCMP_ACT_ALLOW"}]}', /syscalls\[0\] names no syscall/);
  bad('{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"yes"}]}', /syscalls\[0\]\.action "yes"/);
});
