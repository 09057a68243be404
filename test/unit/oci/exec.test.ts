// launchExec (S18) with a fake runtime: /bin/sh stands in for `<runtime> exec`, so the
// scratch files, the pid file the runtime is told, the kill and the exit code are
// exercised on real processes without root.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { EXEC_HOST_PID_FILE, EXEC_SANDBOX_PID_FILE, killHostTree, launchExec, type ExecFiles, type ExecRuntime } from '../../../src/oci/exec.js';

function fakeRuntime(execPidOnHost: boolean, script: (files: ExecFiles) => string): ExecRuntime & { killed: number[] } {
  const killed: number[] = [];
  return {
    killed,
    execPidOnHost,
    binaryPath: () => '/bin/sh',
    globalArgs: () => [],
    execArgs: (_id, files) => ['-c', script(files)],
    killExecTree: (_id, pid) => {
      killed.push(pid);
      return killHostTree(pid);
    },
  };
}

function scratch(t: { after(fn: () => void): void }): { dir: string; spec: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-exec-unit-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const spec = path.join(dir, 'config.json');
  fs.writeFileSync(spec, JSON.stringify({ process: { args: ['/bin/true'], cwd: '/', env: ['PATH=/bin'] } }));
  return { dir, spec };
}

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('the exec gets its process file and a pid file named for the PID kind; output and exit code come back', async (t) => {
  const { dir, spec } = scratch(t);
  for (const onHost of [true, false]) {
    let seen: ExecFiles | undefined;
    const rt = fakeRuntime(onHost, (files) => {
      seen = files;
      return `cat ${files.process}; exit 3`;
    });
    const launch = await launchExec({
      runtime: rt,
      containerId: 'c1',
      specPath: spec,
      scratchDir: path.join(dir, 'exec'),
      cmd: ['ls', '-l'],
      tty: false,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    launch.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const [code] = await Promise.all([launch.exited, launch.outputClosed]);
    assert.equal(code, 3);
    assert.deepEqual((JSON.parse(out) as { args: string[] }).args, ['ls', '-l'], 'the process file holds the command');
    assert.equal(path.basename(seen!.pid), onHost ? EXEC_HOST_PID_FILE : EXEC_SANDBOX_PID_FILE);
    await launch.cleanup();
    assert.equal(fs.existsSync(path.dirname(seen!.pid)), false, 'cleanup removes the scratch dir');
  }
});

test("kill hands the PID the runtime wrote to the runtime's tree kill; the exec then ends", async (t) => {
  const { dir, spec } = scratch(t);
  // The "runtime" writes its own PID as the process's, then runs the process in place.
  const rt = fakeRuntime(true, (files) => `echo $$ > ${files.pid}; exec sleep 60`);
  const launch = await launchExec({
    runtime: rt,
    containerId: 'c1',
    specPath: spec,
    scratchDir: path.join(dir, 'exec'),
    cmd: ['sleep'],
    tty: false,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => launch.child.kill('SIGKILL'));
  const pidFile = path.join(dir, 'exec', fs.readdirSync(path.join(dir, 'exec'))[0], EXEC_HOST_PID_FILE);
  await until('the pid file', () => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim() !== '');
  await launch.kill();
  assert.deepEqual(rt.killed, [launch.child.pid]);
  assert.equal(await launch.exited, 137, 'SIGKILL: 128 + 9');
  await launch.cleanup();
});

test('a spec without a process is an internal error naming the container; nothing is spawned', async (t) => {
  const { dir } = scratch(t);
  const spec = path.join(dir, 'empty.json');
  fs.writeFileSync(spec, '{}');
  const rt = fakeRuntime(true, () => 'exit 0');
  await assert.rejects(
    launchExec({
      runtime: rt,
      containerId: 'c9',
      specPath: spec,
      scratchDir: path.join(dir, 'exec'),
      cmd: ['true'],
      tty: false,
      stdio: ['ignore', 'ignore', 'ignore'],
    }),
    { name: 'InternalError', message: /the spec of container "c9" has no process/ },
  );
  assert.equal(fs.existsSync(path.join(dir, 'exec')), false);
});
