// The daemon's log lines, as an operator reads them: one line of the effective setup at
// start; after a restart one summary of what was recovered, and the exits that happened
// while the daemon was down (code, reason, OOMKilled); exec and port-forward lines that
// name their container or pod once (no duplicate JSON keys); readable lines on a
// terminal, JSON otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tty from 'node:tty';
import { openPty } from '../../../native/pty.js';
import { makeContainerEnv, waitFor } from '../container/container-env.js';
import { cliLive, cliRun, TSX, BIN } from '../cli/cli-harness.js';
import { REPO_ROOT, startDaemon, type TestDaemon } from '../../helpers/daemon.js';

const CALL_MS = 120_000;

type LogLine = Record<string, unknown>;

function jsonLines(d: TestDaemon): LogLine[] {
  return d.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

const linesWith = (d: TestDaemon, msg: string): LogLine[] => jsonLines(d).filter((l) => l.msg === msg);

/** Raw lines where `key` appears more than once (JSON.parse would keep only the last). */
function duplicated(d: TestDaemon, key: string): string[] {
  return d.stderr.split('\n').filter((l) => l.split(`"${key}":`).length > 2);
}

for (const handler of ['runc', 'runsc'] as const) {
  test(
    `${handler}: one start line of the setup; exec and port-forward lines name their object once; an exit while the daemon was down is logged after the restart, with one recovery summary`,
    { timeout: 600_000 },
    async (t) => {
      const env = await makeContainerEnv(t);
      const { d } = env;

      // The start line: config file, cgroup root, CNI and every handler with its readiness.
      const start = linesWith(d, 'sandlot is serving CRI');
      assert.equal(start.length, 1);
      const s = start[0];
      assert.equal(s.configFile, d.configPath);
      assert.equal(s.cgroupRoot, d.config.cgroup_root);
      const cni = s.cni as { confDir: string; ready: boolean; message: string };
      assert.equal(cni.confDir, d.config.cni_conf_dir);
      assert.equal(cni.ready, true, cni.message);
      const handlers = s.handlers as Array<{ name: string; ready: boolean }>;
      for (const h of ['runc', 'runsc']) assert.equal(handlers.find((x) => x.name === h)?.ready, true, `${h} in ${JSON.stringify(handlers)}`);
      assert.equal(linesWith(d, 'recovered 0 pods and 0 containers').length, 1, 'a fresh start recovers nothing, and says so once');

      // The trigger file ends the waiter once the daemon is down.
      const trigger = path.join(d.dir, `trigger-${handler}`);
      fs.mkdirSync(trigger);
      const pod = await env.runPod(`logs-${handler}`, {}, handler);
      const waiter = await env.createContainer(pod, 'waiter', {
        command: ['/bin/sh', '-c', 'while [ ! -e /trigger/go ]; do sleep 0.2; done; exit 7'],
        mounts: [{ container_path: '/trigger', host_path: trigger }],
      });
      await d.runtime('StartContainer', { container_id: waiter }, CALL_MS);

      // exec and a port-forward that fails (nothing listens on port 9): their lines name the object once.
      const ex = await cliRun(['exec', '--socket', d.socket, waiter, 'echo', 'hi']);
      assert.equal(ex.code, 0, ex.stderr);
      assert.equal(ex.stdout, 'hi\n');
      await waitFor('the exec line', () => linesWith(d, 'exec finished').some((l) => l.containerId === waiter), 60_000);
      const pf = cliLive(['port-forward', '--socket', d.socket, pod, '0:9']);
      t.after(() => {
        pf.child.kill('SIGKILL');
      });
      let port = 0;
      await waitFor('the forward to listen', () => {
        port = Number(/Forwarding from 127\.0\.0\.1:(\d+) -> 9/.exec(pf.out())?.[1] ?? 0);
        return port > 0 || pf.child.exitCode !== null;
      });
      assert.ok(port > 0, pf.err());
      const conn = net.connect(port, '127.0.0.1');
      conn.on('error', () => undefined); // the forward fails: the connection is closed
      await waitFor('the failed forward line', () => linesWith(d, 'port forward failed').some((l) => l.podSandboxId === pod), 60_000);
      conn.destroy();
      pf.child.kill('SIGINT');
      await pf.closed;
      assert.deepEqual(duplicated(d, 'containerId'), []);
      assert.deepEqual(duplicated(d, 'podSandboxId'), []);

      // The daemon goes down; the waiter exits meanwhile (conmon writes its exit file).
      assert.equal(await d.stop(), 0);
      fs.writeFileSync(path.join(trigger, 'go'), '');
      const exitFile = path.join(d.stateDir, 'container-exits', waiter);
      await waitFor('the waiter to exit while the daemon is down', () => fs.existsSync(exitFile), 120_000);
      await d.restart();

      const recovered = linesWith(d, 'recovered 1 pods and 1 containers');
      assert.equal(recovered.length, 1, d.stderr.slice(-4000));
      assert.deepEqual(recovered[0].pods, { SANDBOX_READY: 1 });
      assert.deepEqual(recovered[0].containers, { CONTAINER_EXITED: 1 });
      assert.equal(recovered[0].exitsWhileDown, 1);
      const exits = linesWith(d, 'container exited').map((l) => ({
        id: l.containerId,
        exitCode: l.exitCode,
        reason: l.reason,
        oomKilled: l.oomKilled,
        whileDaemonDown: l.whileDaemonDown,
        handler: l.handler,
      }));
      assert.deepEqual(exits, [{ id: waiter, exitCode: 7, reason: 'Error', oomKilled: false, whileDaemonDown: true, handler }]);
    },
  );
}

test('on a terminal the daemon prints readable lines; into a pipe, JSON', { timeout: 300_000 }, async (t) => {
  // The harness's daemon (stderr is a pipe) gives the config and the JSON case.
  const d = await startDaemon();
  t.after(() => d.cleanup());
  assert.ok(jsonLines(d).some((l) => l.msg === 'sandlot is serving CRI'));
  await d.stop();

  const pty = openPty();
  const child = spawn(process.execPath, ['--import', TSX, BIN, 'daemon', '--config', d.configPath], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', pty.slave] });
  fs.closeSync(pty.slave);
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const master = new tty.ReadStream(pty.master);
  let out = '';
  master.on('data', (b: Buffer) => (out += b.toString()));
  master.on('error', () => undefined); // EIO once the daemon closed its side
  t.after(() => master.destroy());
  await waitFor('the start line on the terminal', () => out.includes('sandlot is serving CRI') || child.exitCode !== null, 120_000);
  child.kill('SIGTERM');
  assert.equal(await exited, 0, out);
  // eslint-disable-next-line no-control-regex
  const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
  const line = plain.split(/\r?\n/).find((l) => l.includes('sandlot is serving CRI'));
  assert.ok(line, plain);
  assert.match(line, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: sandlot is serving CRI \{/);
  assert.ok(!plain.split(/\r?\n/).some((l) => l.startsWith('{"level"')), 'no JSON line on the terminal');
});
