// The RuntimeDefault seccomp profile for x86_64 (with its 32-bit and x32 ABIs): every
// syscall fails with EPERM except an allow-list, as moby's and containerd's default
// profiles define it; syscalls that need a capability are allowed only when the
// container's bounding set holds it, so dropping a capability also closes its syscalls.
// Names the installed libseccomp does not know are skipped by runc, which is why
// newer and 32-bit-only names can stand in the list.
import { errorMessage, InvalidArgumentError } from '../errors.js';
import type { LinuxSeccomp, LinuxSyscall } from './spec-common.js';

const ERRNO_ENOSYS = 38;

/** Allowed for every container. */
export const DEFAULT_ALLOWED_SYSCALLS: readonly string[] = [
  'accept',
  'accept4',
  'access',
  'adjtimex',
  'alarm',
  'bind',
  'brk',
  'cachestat',
  'capget',
  'capset',
  'chdir',
  'chmod',
  'chown',
  'chown32',
  'clock_adjtime',
  'clock_adjtime64',
  'clock_getres',
  'clock_getres_time64',
  'clock_gettime',
  'clock_gettime64',
  'clock_nanosleep',
  'clock_nanosleep_time64',
  'close',
  'close_range',
  'connect',
  'copy_file_range',
  'creat',
  'dup',
  'dup2',
  'dup3',
  'epoll_create',
  'epoll_create1',
  'epoll_ctl',
  'epoll_ctl_old',
  'epoll_pwait',
  'epoll_pwait2',
  'epoll_wait',
  'epoll_wait_old',
  'eventfd',
  'eventfd2',
  'execve',
  'execveat',
  'exit',
  'exit_group',
  'faccessat',
  'faccessat2',
  'fadvise64',
  'fadvise64_64',
  'fallocate',
  'fanotify_mark',
  'fchdir',
  'fchmod',
  'fchmodat',
  'fchmodat2',
  'fchown',
  'fchown32',
  'fchownat',
  'fcntl',
  'fcntl64',
  'fdatasync',
  'fgetxattr',
  'flistxattr',
  'flock',
  'fork',
  'fremovexattr',
  'fsetxattr',
  'fstat',
  'fstat64',
  'fstatat64',
  'fstatfs',
  'fstatfs64',
  'fsync',
  'ftruncate',
  'ftruncate64',
  'futex',
  'futex_requeue',
  'futex_time64',
  'futex_wait',
  'futex_waitv',
  'futex_wake',
  'futimesat',
  'get_mempolicy',
  'get_robust_list',
  'get_thread_area',
  'getcpu',
  'getcwd',
  'getdents',
  'getdents64',
  'getegid',
  'getegid32',
  'geteuid',
  'geteuid32',
  'getgid',
  'getgid32',
  'getgroups',
  'getgroups32',
  'getitimer',
  'getpeername',
  'getpgid',
  'getpgrp',
  'getpid',
  'getppid',
  'getpriority',
  'getrandom',
  'getresgid',
  'getresgid32',
  'getresuid',
  'getresuid32',
  'getrlimit',
  'getrusage',
  'getsid',
  'getsockname',
  'getsockopt',
  'gettid',
  'gettimeofday',
  'getuid',
  'getuid32',
  'getxattr',
  'inotify_add_watch',
  'inotify_init',
  'inotify_init1',
  'inotify_rm_watch',
  'io_cancel',
  'io_destroy',
  'io_getevents',
  'io_pgetevents',
  'io_pgetevents_time64',
  'io_setup',
  'io_submit',
  'ioctl',
  'ioprio_get',
  'ioprio_set',
  'ipc',
  'kcmp',
  'kill',
  'landlock_add_rule',
  'landlock_create_ruleset',
  'landlock_restrict_self',
  'lchown',
  'lchown32',
  'lgetxattr',
  'link',
  'linkat',
  'listen',
  'listxattr',
  'llistxattr',
  '_llseek',
  'lremovexattr',
  'lseek',
  'lsetxattr',
  'lstat',
  'lstat64',
  'madvise',
  'map_shadow_stack',
  'mbind',
  'membarrier',
  'memfd_create',
  'mincore',
  'mkdir',
  'mkdirat',
  'mknod',
  'mknodat',
  'mlock',
  'mlock2',
  'mlockall',
  'mmap',
  'mmap2',
  'mprotect',
  'mq_getsetattr',
  'mq_notify',
  'mq_open',
  'mq_timedreceive',
  'mq_timedreceive_time64',
  'mq_timedsend',
  'mq_timedsend_time64',
  'mq_unlink',
  'mremap',
  'msgctl',
  'msgget',
  'msgrcv',
  'msgsnd',
  'msync',
  'munlock',
  'munlockall',
  'munmap',
  'nanosleep',
  'newfstatat',
  '_newselect',
  'open',
  'openat',
  'openat2',
  'pause',
  'pidfd_open',
  'pidfd_send_signal',
  'pipe',
  'pipe2',
  'pkey_alloc',
  'pkey_free',
  'pkey_mprotect',
  'poll',
  'ppoll',
  'ppoll_time64',
  'prctl',
  'pread64',
  'preadv',
  'preadv2',
  'prlimit64',
  'process_madvise',
  'process_mrelease',
  'process_vm_readv',
  'process_vm_writev',
  'pselect6',
  'pselect6_time64',
  'ptrace',
  'pwrite64',
  'pwritev',
  'pwritev2',
  'read',
  'readahead',
  'readlink',
  'readlinkat',
  'readv',
  'recv',
  'recvfrom',
  'recvmmsg',
  'recvmmsg_time64',
  'recvmsg',
  'remap_file_pages',
  'removexattr',
  'rename',
  'renameat',
  'renameat2',
  'restart_syscall',
  'rmdir',
  'rseq',
  'rt_sigaction',
  'rt_sigpending',
  'rt_sigprocmask',
  'rt_sigqueueinfo',
  'rt_sigreturn',
  'rt_sigsuspend',
  'rt_sigtimedwait',
  'rt_sigtimedwait_time64',
  'rt_tgsigqueueinfo',
  'sched_get_priority_max',
  'sched_get_priority_min',
  'sched_getaffinity',
  'sched_getattr',
  'sched_getparam',
  'sched_getscheduler',
  'sched_rr_get_interval',
  'sched_rr_get_interval_time64',
  'sched_setaffinity',
  'sched_setattr',
  'sched_setparam',
  'sched_setscheduler',
  'sched_yield',
  'seccomp',
  'select',
  'semctl',
  'semget',
  'semop',
  'semtimedop',
  'semtimedop_time64',
  'send',
  'sendfile',
  'sendfile64',
  'sendmmsg',
  'sendmsg',
  'sendto',
  'set_mempolicy',
  'set_robust_list',
  'set_thread_area',
  'set_tid_address',
  'setfsgid',
  'setfsgid32',
  'setfsuid',
  'setfsuid32',
  'setgid',
  'setgid32',
  'setgroups',
  'setgroups32',
  'setitimer',
  'setpgid',
  'setpriority',
  'setregid',
  'setregid32',
  'setresgid',
  'setresgid32',
  'setresuid',
  'setresuid32',
  'setreuid',
  'setreuid32',
  'setrlimit',
  'setsid',
  'setsockopt',
  'setuid',
  'setuid32',
  'setxattr',
  'shmat',
  'shmctl',
  'shmdt',
  'shmget',
  'shutdown',
  'sigaltstack',
  'signalfd',
  'signalfd4',
  'sigprocmask',
  'sigreturn',
  'socket',
  'socketcall',
  'socketpair',
  'splice',
  'stat',
  'stat64',
  'statfs',
  'statfs64',
  'statx',
  'symlink',
  'symlinkat',
  'sync',
  'sync_file_range',
  'syncfs',
  'sysinfo',
  'tee',
  'tgkill',
  'time',
  'timer_create',
  'timer_delete',
  'timer_getoverrun',
  'timer_gettime',
  'timer_gettime64',
  'timer_settime',
  'timer_settime64',
  'timerfd_create',
  'timerfd_gettime',
  'timerfd_gettime64',
  'timerfd_settime',
  'timerfd_settime64',
  'times',
  'tkill',
  'truncate',
  'truncate64',
  'ugetrlimit',
  'umask',
  'uname',
  'unlink',
  'unlinkat',
  'utime',
  'utimensat',
  'utimensat_time64',
  'utimes',
  'vfork',
  'vmsplice',
  'wait4',
  'waitid',
  'waitpid',
  'write',
  'writev',
];

/** x86-only syscalls allowed for every container. */
const X86_64_ALLOWED: readonly string[] = ['arch_prctl', 'modify_ldt'];

/** Syscalls a capability in the bounding set unlocks. */
export const CAPABILITY_SYSCALLS: Readonly<Record<string, readonly string[]>> = {
  CAP_DAC_READ_SEARCH: ['name_to_handle_at', 'open_by_handle_at'],
  CAP_SYS_ADMIN: [
    'bpf',
    'clone',
    'clone3',
    'fanotify_init',
    'fsconfig',
    'fsmount',
    'fsopen',
    'fspick',
    'lookup_dcookie',
    'mount',
    'name_to_handle_at',
    'mount_setattr',
    'move_mount',
    'open_tree',
    'perf_event_open',
    'quotactl',
    'quotactl_fd',
    'setdomainname',
    'sethostname',
    'setns',
    'syslog',
    'umount',
    'umount2',
    'unshare',
  ],
  CAP_SYS_BOOT: ['reboot'],
  CAP_SYS_CHROOT: ['chroot'],
  CAP_SYS_MODULE: ['delete_module', 'init_module', 'finit_module'],
  CAP_SYS_PACCT: ['acct'],
  CAP_SYS_PTRACE: ['pidfd_getfd', 'userfaultfd'],
  CAP_SYS_RAWIO: ['iopl', 'ioperm'],
  CAP_SYS_TIME: ['settimeofday', 'stime', 'clock_settime', 'clock_settime64'],
  CAP_SYS_TTY_CONFIG: ['vhangup'],
  CAP_SYS_NICE: ['set_mempolicy_home_node'],
  CAP_SYSLOG: ['syslog'],
  CAP_BPF: ['bpf'],
  CAP_PERFMON: ['perf_event_open'],
};

// Namespace flags a container without CAP_SYS_ADMIN may not pass to clone().
const CLONE_NEWNS = 0x00020000;
const CLONE_NEWCGROUP = 0x02000000;
const CLONE_NEWUTS = 0x04000000;
const CLONE_NEWIPC = 0x08000000;
const CLONE_NEWUSER = 0x10000000;
const CLONE_NEWPID = 0x20000000;
const CLONE_NEWNET = 0x40000000;
export const CLONE_NAMESPACE_FLAGS = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;

/** personality(2) values a container may set: PER_LINUX, PER_LINUX32, UNAME26 variants, and the query. */
const PERSONALITIES = [0x0, 0x0008, 0x20000, 0x20008, 0xffffffff];

/**
 * The RuntimeDefault profile for a container whose bounding set is `capabilities`
 * (CAP_-prefixed names).
 */
export function defaultSeccompProfile(capabilities: readonly string[]): LinuxSeccomp {
  const caps = new Set(capabilities);
  const syscalls: LinuxSyscall[] = [
    { names: [...DEFAULT_ALLOWED_SYSCALLS], action: 'SCMP_ACT_ALLOW' },
    { names: [...X86_64_ALLOWED], action: 'SCMP_ACT_ALLOW' },
    ...PERSONALITIES.map((value): LinuxSyscall => ({
      names: ['personality'],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: 0, value, op: 'SCMP_CMP_EQ' }],
    })),
  ];
  const unlocked = new Set<string>();
  for (const [cap, names] of Object.entries(CAPABILITY_SYSCALLS)) {
    if (caps.has(cap)) for (const n of names) unlocked.add(n);
  }
  if (unlocked.size > 0) syscalls.push({ names: [...unlocked].sort(), action: 'SCMP_ACT_ALLOW' });
  if (!caps.has('CAP_SYS_ADMIN')) {
    // clone without namespace flags (threads, fork) stays allowed…
    syscalls.push({
      names: ['clone'],
      action: 'SCMP_ACT_ALLOW',
      args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
    });
    // …and clone3 (whose flags sit in a struct seccomp cannot read) fails with ENOSYS,
    // so that libc falls back to clone instead of failing with EPERM.
    syscalls.push({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ERRNO_ENOSYS });
  }
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls,
  };
}

/** The architectures of x86_64 in a Docker-format profile's archMap. */
const X86_64_ARCHES = new Set(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
/** Go's names (used in Docker profiles' includes/excludes) for this machine. */
const HOST_ARCH_NAMES = new Set(['amd64', 'x86_64', 'SCMP_ARCH_X86_64']);

interface ProfileRule {
  name?: unknown;
  names?: unknown;
  action?: unknown;
  errnoRet?: unknown;
  args?: unknown;
  includes?: { caps?: unknown; arches?: unknown };
  excludes?: { caps?: unknown; arches?: unknown };
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/**
 * A Localhost profile (the kubelet's `localhostProfile` file) → OCI linux.seccomp.
 * Accepts the OCI form and Docker's (archMap, `name`, includes/excludes by capability
 * and architecture, as moby's loader reads it), resolved for this x86_64 host and the
 * container's bounding set. `what` names the file in errors.
 */
export function parseSeccompProfile(text: string, capabilities: readonly string[], what: string): LinuxSeccomp {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e: unknown) {
    throw new InvalidArgumentError(`loading seccomp profile ${what}: invalid JSON: ${errorMessage(e)}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InvalidArgumentError(`loading seccomp profile ${what}: not a JSON object`);
  }
  const p = raw as Record<string, unknown>;
  if (typeof p.defaultAction !== 'string' || !p.defaultAction.startsWith('SCMP_ACT_')) {
    throw new InvalidArgumentError(`loading seccomp profile ${what}: defaultAction ${JSON.stringify(p.defaultAction)} is not an SCMP_ACT_* action`);
  }
  const out: LinuxSeccomp = { defaultAction: p.defaultAction };
  if (typeof p.defaultErrnoRet === 'number') out.defaultErrnoRet = p.defaultErrnoRet;
  let arches = strings(p.architectures);
  if (Array.isArray(p.archMap)) {
    for (const m of p.archMap as Array<{ architecture?: unknown; subArchitectures?: unknown }>) {
      if (typeof m.architecture === 'string' && X86_64_ARCHES.has(m.architecture)) {
        arches.push(m.architecture, ...strings(m.subArchitectures));
      }
    }
  }
  arches = [...new Set(arches)];
  if (arches.length > 0) out.architectures = arches;
  const flags = strings(p.flags);
  if (flags.length > 0) out.flags = flags;
  const caps = new Set(capabilities);
  const syscalls: LinuxSyscall[] = [];
  for (const [i, r] of (Array.isArray(p.syscalls) ? (p.syscalls as ProfileRule[]) : []).entries()) {
    if (typeof r !== 'object' || r === null) throw new InvalidArgumentError(`loading seccomp profile ${what}: syscalls[${i}] is not an object`);
    const names = typeof r.name === 'string' ? [r.name, ...strings(r.names)] : strings(r.names);
    if (names.length === 0) throw new InvalidArgumentError(`loading seccomp profile ${what}: syscalls[${i}] names no syscall`);
    if (typeof r.action !== 'string' || !r.action.startsWith('SCMP_ACT_')) {
      throw new InvalidArgumentError(`loading seccomp profile ${what}: syscalls[${i}].action ${JSON.stringify(r.action)} is not an SCMP_ACT_* action`);
    }
    const incCaps = strings(r.includes?.caps);
    const excCaps = strings(r.excludes?.caps);
    const incArches = strings(r.includes?.arches);
    const excArches = strings(r.excludes?.arches);
    if (incCaps.some((c) => !caps.has(c)) || excCaps.some((c) => caps.has(c))) continue;
    if ((incArches.length > 0 && !incArches.some((a) => HOST_ARCH_NAMES.has(a))) || excArches.some((a) => HOST_ARCH_NAMES.has(a))) continue;
    const rule: LinuxSyscall = { names, action: r.action };
    if (typeof r.errnoRet === 'number') rule.errnoRet = r.errnoRet;
    if (Array.isArray(r.args) && r.args.length > 0) rule.args = r.args as LinuxSyscall['args'];
    syscalls.push(rule);
  }
  if (syscalls.length > 0) out.syscalls = syscalls;
  return out;
}
