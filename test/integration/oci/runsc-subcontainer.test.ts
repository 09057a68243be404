// runsc subcontainers (S1) under conmon through the runsc shim, with the real runsc,
// conmon and busybox of this machine: a catatonit sandbox (the pod's root container),
// then busybox subcontainers whose output must land in the CRI log and whose exit
// status must land in conmon's exit file, exactly as for runc containers.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { defaultConfig } from '../../../src/config/defaults.js';
import { Conmon, readExitFile } from '../../../src/oci/conmon.js';
import { RunscShim } from '../../../src/oci/runsc-subcontainer.js';
import { createRuntime } from '../../../src/oci/runtimes.js';
import { ANNOTATION_CGROUP_PARENT, ANNOTATION_CONTAINER_TYPE, ANNOTATION_SANDBOX_ID } from '../../../src/oci/spec-common.js';
import { makeBusyboxRootfs } from '../../../src/image/oci-layout-writer.js';
import { CgroupManager, removeCgroupTree } from '../../../src/sandbox/resources/cgroups.js';
import { writeCatatonitBundle } from '../../helpers/catatonit-bundle.js';
import { testCgroupRoot } from '../../helpers/cgroup.js';

const log = pino({ level: 'silent' });
const TEST_TIMEOUT_MS = 120_000;
const SRC_OCI = fileURLToPath(new URL('../../../src/oci/', import.meta.url));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-runsc-sub-'));
const runtime = createRuntime({ name: 'runsc', config: defaultConfig().runtimes.runsc, stateDir: dir, log });
const conmon = new Conmon({ path: 'conmon' });
const shim = new RunscShim({ runtime });
const cgroups = new CgroupManager();
const podCgroupBase = path.join(testCgroupRoot(), `sandlot-runsc-sub-${process.pid}`);
const rootfs = path.join(dir, 'busybox');
/** Undo steps for everything made here, run in reverse even when a test failed. */
const undo: Array<() => Promise<unknown>> = [];
let seq = 0;

function alive(pid: number): boolean {
  if (pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return !/^\d+ \(.*\) [ZX]/s.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function killPid(pid: number): void {
  try {
    if (pid > 0) process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

interface Pod {
  id: string;
  cgroup: string;
}

/** A runsc sandbox: catatonit as the root container in its own pod cgroup. */
async function makePod(memoryLimitBytes?: number): Promise<Pod> {
  seq += 1;
  const id = `rsub-pod-${process.pid}-${seq}`;
  const cgroup = `${podCgroupBase}-${seq}`;
  undo.push(() => removeCgroupTree(cgroup));
  await cgroups.create(cgroup, memoryLimitBytes === undefined ? {} : { memoryLimitBytes });
  const bundle = path.join(dir, id);
  writeCatatonitBundle(bundle, {
    cgroupsPath: path.join(cgroup, 'infra'),
    annotations: { [ANNOTATION_CONTAINER_TYPE]: 'sandbox', [ANNOTATION_SANDBOX_ID]: id, [ANNOTATION_CGROUP_PARENT]: cgroup },
  });
  undo.push(() => runtime.delete(id, { force: true }));
  await runtime.create(id, bundle, path.join(bundle, 'pid'));
  await runtime.start(id);
  return { id, cgroup };
}

function writeJson(file: string, value: unknown): void {
  fs.writeFileSync(file, JSON.stringify(value));
}

interface Sub {
  id: string;
  bundle: string;
  stateDir: string;
  exitDir: string;
  logPath: string;
  pid: number;
  conmonPid: number;
}

interface SubOptions {
  terminal?: boolean;
  /** Only create the bundle and the conmon options (for a child "daemon"). */
  prepareOnly?: boolean;
}

function subPaths(pod: Pod, args: string[], options: SubOptions = {}) {
  seq += 1;
  const id = `rsub-${process.pid}-${seq}`;
  const base = path.join(dir, id);
  const bundle = path.join(base, 'bundle');
  fs.mkdirSync(bundle, { recursive: true });
  writeJson(path.join(bundle, 'config.json'), {
    ociVersion: '1.0.2',
    process: { terminal: options.terminal ?? false, user: { uid: 0, gid: 0 }, args, cwd: '/', env: ['PATH=/bin'] },
    root: { path: rootfs, readonly: true },
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'mode=755'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'nodev', 'size=1g'] },
    ],
    annotations: { [ANNOTATION_CONTAINER_TYPE]: 'container', [ANNOTATION_SANDBOX_ID]: pod.id },
    linux: { cgroupsPath: path.join(pod.cgroup, id), namespaces: ['pid', 'ipc', 'uts', 'mount'].map((type) => ({ type })) },
  });
  const stateDir = path.join(base, 'shim');
  const conmonOptions = {
    id,
    name: id,
    runtime,
    bundle,
    containerPidFile: path.join(base, 'pid'),
    conmonPidFile: path.join(base, 'conmon.pid'),
    exitDir: path.join(base, 'exits'),
    logPath: path.join(base, 'ctr.log'),
    socketDir: path.join(base, 'sock'),
    persistDir: path.join(base, 'persist'),
    conmonLogFile: path.join(base, 'conmon.log'),
    terminal: options.terminal ?? false,
    ...shim.conmonRuntime(stateDir),
  };
  // Whatever happens: the proxy released, the container deleted, conmon gone.
  undo.push(async () => {
    await shim.cancelStart({ id, stateDir, timeoutMs: 1_000 }).catch(() => undefined);
    // After the sandbox died, delete fails once ("connection refused") yet drops the state.
    await runtime.delete(id, { force: true }).catch(() => runtime.delete(id, { force: true }));
    for (const f of [conmonOptions.conmonPidFile, conmonOptions.containerPidFile]) {
      const pid = Number(fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim() : 0);
      if (pid > 0) killPid(pid);
    }
  });
  return { id, base, bundle, stateDir, conmonOptions };
}

async function createSub(pod: Pod, args: string[], options: SubOptions = {}): Promise<Sub> {
  const p = subPaths(pod, args, options);
  const created = await conmon.create(p.conmonOptions);
  return {
    id: p.id,
    bundle: p.bundle,
    stateDir: p.stateDir,
    exitDir: p.conmonOptions.exitDir,
    logPath: p.conmonOptions.logPath,
    pid: created.pid,
    conmonPid: created.conmonPid,
  };
}

async function exitCode(sub: Pick<Sub, 'id' | 'exitDir'>): Promise<number> {
  return waitFor(`the exit file of "${sub.id}"`, () => readExitFile(sub.exitDir, sub.id));
}

/** The CRI log's lines as [stream, tag, text]. */
function criLog(file: string): Array<[string, string, string]> {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const m = /^\S+ (stdout|stderr) ([PF]) (.*)$/s.exec(l);
      assert.ok(m, `CRI log line ${JSON.stringify(l)}`);
      return [m[1], m[2], m[3]];
    });
}

let pod: Pod;

before(async () => {
  await runtime.ensureRoot();
  await makeBusyboxRootfs(rootfs);
  // The OOM test needs dd; the built-in rootfs links every applet busybox lists (it may already).
  if (!fs.existsSync(path.join(rootfs, 'bin', 'dd'))) fs.symlinkSync('busybox', path.join(rootfs, 'bin', 'dd'));
  pod = await makePod();
});

after(async () => {
  for (const fn of undo.reverse()) {
    await fn().catch((e: unknown) => console.error(`cleanup: ${e instanceof Error ? e.message : String(e)}`));
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('runsc: a subcontainer under conmon writes its output to the CRI log and its exit code 3 to the exit file', { timeout: TEST_TIMEOUT_MS }, async () => {
  const sub = await createSub(pod, ['sh', '-c', 'echo to-stdout; echo to-stderr >&2; exit 3']);
  // conmon watches the proxy, a host process, not the sandbox runsc create would name.
  assert.ok(alive(sub.pid), 'the proxy runs');
  assert.notEqual(sub.pid, (await runtime.state(pod.id))?.pid);
  assert.equal((await runtime.state(sub.id))?.status, 'created');
  assert.equal(await readExitFile(sub.exitDir, sub.id), undefined);
  await shim.triggerStart({ id: sub.id, stateDir: sub.stateDir, proxyPid: sub.pid });
  assert.equal(await exitCode(sub), 3);
  assert.deepEqual((await shim.startStatus(sub.stateDir))?.kind, 'started');
  assert.equal(await shim.exitReason(sub.stateDir), undefined);
  await waitFor('conmon to exit', () => !alive(sub.conmonPid) || undefined);
  const lines = criLog(sub.logPath);
  assert.deepEqual(
    lines.find((l) => l[2] === 'to-stdout'),
    ['stdout', 'F', 'to-stdout'],
  );
  assert.deepEqual(
    lines.find((l) => l[2] === 'to-stderr'),
    ['stderr', 'F', 'to-stderr'],
  );
  assert.equal(await shim.exitStatusOf(sub.id), 3, 'runsc wait agrees');
  // A second start is refused: the proxy said it started already.
  await assert.rejects(shim.triggerStart({ id: sub.id, stateDir: sub.stateDir, proxyPid: sub.pid }), /already reported "started"/);
});

test(
  "runsc: a sleeping subcontainer stopped with SIGTERM through runsc kill ends with its trap's code; an untrapped one with 143",
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const trapped = await createSub(pod, ['sh', '-c', 'trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 1; done']);
    const plain = await createSub(pod, ['sleep', '1000']);
    for (const s of [trapped, plain]) await shim.triggerStart({ id: s.id, stateDir: s.stateDir, proxyPid: s.pid });
    await waitFor('the trap to be set', () => criLog(trapped.logPath).some((l) => l[2] === 'ready') || undefined);
    assert.equal((await runtime.state(plain.id))?.status, 'running');
    assert.ok(alive(plain.pid) && alive(plain.conmonPid), 'proxy and conmon run while the container runs');
    await runtime.kill(trapped.id, 'SIGTERM');
    await runtime.kill(plain.id, 'SIGTERM');
    assert.equal(await exitCode(trapped), 7);
    assert.equal(await exitCode(plain), 143);
    assert.ok(criLog(trapped.logPath).some((l) => l[2] === 'got-term'));
    await waitFor('the proxies to exit', () => (!alive(trapped.pid) && !alive(plain.pid)) || undefined);
  },
);

test(
  'runsc: conmon and the proxy outlive the daemon that created and started the subcontainer; the exit file appears later',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const p = subPaths(pod, ['sh', '-c', 'trap "echo leaving; exit 5" USR1; echo waiting; while :; do sleep 1; done']);
    // The "daemon": a separate Node process doing create + start, then SIGKILLed.
    const script = `
    import { pino } from 'pino';
    import { Conmon } from ${JSON.stringify(path.join(SRC_OCI, 'conmon.ts'))};
    import { createRuntime } from ${JSON.stringify(path.join(SRC_OCI, 'runtimes.ts'))};
    import { RunscShim } from ${JSON.stringify(path.join(SRC_OCI, 'runsc-subcontainer.ts'))};
    const a = JSON.parse(process.argv[1]);
    const runtime = createRuntime({ name: 'runsc', config: a.config, stateDir: a.dir, log: pino({ level: 'silent' }) });
    const shim = new RunscShim({ runtime });
    const created = await new Conmon({ path: 'conmon' }).create({ ...a.options, runtime, ...shim.conmonRuntime(a.stateDir) });
    await shim.triggerStart({ id: a.options.id, stateDir: a.stateDir, proxyPid: created.pid });
    process.stdout.write(JSON.stringify(created) + '\\n');
    setInterval(() => undefined, 60_000);
  `;
    // The runtime object does not cross to the child (it is rebuilt there from the config).
    const options: Partial<typeof p.conmonOptions> = { ...p.conmonOptions };
    delete options.runtime;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script, JSON.stringify({ config: runtime.config, dir, stateDir: p.stateDir, options })],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        // `pino` and tsx resolve from the package root.
        cwd: path.join(SRC_OCI, '..', '..'),
      },
    );
    undo.push(() => Promise.resolve(killPid(child.pid ?? 0)));
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const line = await waitFor('the daemon to report the started container', () => {
      if (child.exitCode !== null) throw new Error(`the daemon exited ${child.exitCode}: ${err}`);
      return out.includes('\n') ? out.split('\n')[0] : undefined;
    });
    const created = JSON.parse(line) as { pid: number; conmonPid: number };
    child.kill('SIGKILL');
    await exited;
    // The daemon is gone; what is left is on disk: pid files and the shim's state.
    assert.ok(alive(created.conmonPid), 'conmon survives the daemon');
    assert.ok(alive(created.pid), 'the proxy survives the daemon');
    assert.equal((await runtime.state(p.id))?.status, 'running');
    await waitFor(
      'the container to be ready',
      () => (fs.existsSync(p.conmonOptions.logPath) && criLog(p.conmonOptions.logPath).some((l) => l[2] === 'waiting')) || undefined,
    );
    // A new "daemon" knows only the ID and the files.
    assert.equal(await readExitFile(p.conmonOptions.exitDir, p.id), undefined);
    await runtime.kill(p.id, 'SIGUSR1');
    assert.equal(await exitCode({ id: p.id, exitDir: p.conmonOptions.exitDir }), 5);
    assert.ok(criLog(p.conmonOptions.logPath).some((l) => l[2] === 'leaving'));
  },
);

test(
  'runsc: a created subcontainer that is never started is released by cancelStart; a second cancel finds nothing',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const sub = await createSub(pod, ['sh', '-c', 'echo never']);
    // runsc itself cannot signal it (measured: "cannot signal container … in state created").
    await assert.rejects(runtime.kill(sub.id, 'SIGKILL'), /state created/);
    assert.equal(await shim.cancelStart({ id: sub.id, stateDir: sub.stateDir, proxyPid: sub.pid }), true);
    assert.equal(await exitCode(sub), 137);
    assert.deepEqual(await shim.startStatus(sub.stateDir), { kind: 'killed', signal: 9 });
    await waitFor('conmon to exit', () => !alive(sub.conmonPid) || undefined);
    assert.equal(await shim.cancelStart({ id: sub.id, stateDir: sub.stateDir, proxyPid: sub.pid }), false);
    await assert.rejects(shim.triggerStart({ id: sub.id, stateDir: sub.stateDir, proxyPid: sub.pid }), /already reported "killed 9"/);
    await runtime.delete(sub.id, { force: true });
    assert.equal(await runtime.state(sub.id), undefined);
    assert.equal(fs.readFileSync(sub.logPath, 'utf8'), '', 'nothing ran');
  },
);

test("runsc: a start that fails comes back as an error with runsc's message and exit code 128", { timeout: TEST_TIMEOUT_MS }, async () => {
  const sub = await createSub(pod, ['sh', '-c', 'echo never']);
  // The container vanishes between create and start.
  await runtime.delete(sub.id, { force: true });
  await assert.rejects(shim.triggerStart({ id: sub.id, stateDir: sub.stateDir, proxyPid: sub.pid }), (e: Error) =>
    /starting runsc subcontainer "rsub-\d+-\d+": runsc start exited with 128: .*does not exist/.test(e.message),
  );
  assert.equal(await exitCode(sub), 128);
});

test("runsc: a tty subcontainer gets its pty through conmon's console socket at create", { timeout: TEST_TIMEOUT_MS }, async () => {
  const sub = await createSub(pod, ['sh', '-c', 'test -t 0 && test -t 1 && echo is-a-tty; exit 4'], { terminal: true });
  await shim.triggerStart({ id: sub.id, stateDir: sub.stateDir, proxyPid: sub.pid });
  assert.equal(await exitCode(sub), 4);
  await waitFor('conmon to exit', () => !alive(sub.conmonPid) || undefined);
  assert.ok(
    criLog(sub.logPath).some((l) => l[0] === 'stdout' && l[2].replace(/\r$/, '') === 'is-a-tty'),
    fs.readFileSync(sub.logPath, 'utf8'),
  );
});

test(
  'runsc: a subcontainer exceeding the pod cgroup memory limit ends with 137, the sandbox gone and the pod cgroup counting an OOM kill',
  { timeout: TEST_TIMEOUT_MS },
  async () => {
    const limit = 96 * 1024 * 1024;
    const small = await makePod(limit);
    const sub = await createSub(small, ['sh', '-c', 'echo filling; dd if=/dev/zero of=/dev/shm/fill bs=1M count=400; echo survived']);
    await shim.triggerStart({ id: sub.id, stateDir: sub.stateDir, proxyPid: sub.pid });
    assert.equal(await exitCode(sub), 137);
    // The host OOM killer takes the whole sandbox (the sentry holds every container's
    // memory); runsc wait then fails, and the shim says why it chose 137. How the wait's
    // urpc connection ends depends on when the sentry died: EOF, reset, or refused.
    assert.match(
      (await shim.exitReason(sub.stateDir)) ?? '',
      /^sandbox-gone: runsc wait exited 128: .*(containerManager\.Wait.*(EOF|connection reset by peer)|connection refused)/,
    );
    assert.equal((await runtime.state(small.id))?.status, 'stopped');
    assert.ok(!criLog(sub.logPath).some((l) => l[2] === 'survived'));
    assert.ok(podOomKills(small.cgroup) >= 1, 'the pod cgroup counted the OOM kill');
    // Measured: with the sandbox gone, `runsc delete --force` of the subcontainer fails
    // ("connecting to control server … connection refused") but removes its state.
    await assert.rejects(runtime.delete(sub.id, { force: true }), /connection refused/);
    assert.equal(await runtime.state(sub.id), undefined);
  },
);

/** oom_kill from the pod cgroup: memory.oom_control (v1) or memory.events (v2). */
function podOomKills(cgroup: string): number {
  const d = cgroups.primaryDir(cgroup);
  const file = fs.existsSync(path.join(d, 'memory.oom_control')) ? path.join(d, 'memory.oom_control') : path.join(d, 'memory.events');
  const m = /^oom_kill (\d+)$/m.exec(fs.readFileSync(file, 'utf8'));
  return m ? Number(m[1]) : 0;
}
