// The CLI as a person uses it (issue 15, CLI section), through the real `sandlot` CLI
// against a real daemon, on both handlers: containers and pods named by their names,
// `run -d/-v/-p`, `ps` filters, `-o json|yaml`, `logs --timestamps/--since/-f` (the exit
// from GetContainerEvents, not a ContainerStatus poll), `stats`, `update`, `events`,
// detach keys on attach, global flags on either side of the verb, a clear word when no
// daemon answers, commander's help and typo hints, and no EPIPE trace into a closed pipe.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { CriMessage } from '../../../src/cli/client.js';
import { writeBusyboxLayout } from '../../../src/image/oci-layout-writer.js';
import { startDaemon, type CriAnswer, type TestDaemon } from '../../helpers/daemon.js';
import { BIN, cliLive, cliRun, TSX, until, type CliResult } from './cli-harness.js';

const HANDLERS = ['runc', 'runsc'] as const;

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-names-cli-'));
const logRoot = path.join(work, 'logs');
await writeBusyboxLayout(path.join(work, 'busybox'));
const daemon: TestDaemon = await startDaemon({ config: { preload_images: [path.join(work, 'busybox')] } });
after(async () => {
  await daemon.cleanup();
  fs.rmSync(work, { recursive: true, force: true });
});

/** The CLI on the test daemon's socket, given after the verb. */
function cli(args: string[], input?: string): Promise<CliResult> {
  return cliRun([args[0], '--socket', daemon.socket, ...args.slice(1)], input);
}

async function removePod(id: string): Promise<void> {
  await daemon.runtime('StopPodSandbox', { pod_sandbox_id: id }, 120_000).catch(() => undefined);
  await daemon.runtime('RemovePodSandbox', { pod_sandbox_id: id }, 120_000).catch(() => undefined);
}

async function podsNamed(name: string): Promise<CriAnswer<'ListPodSandbox'>['items']> {
  return (await daemon.runtime('ListPodSandbox')).items.filter((p) => p.metadata.name === name);
}

/** "call done" lines of the daemon's log for `rpc` about container `id`. */
function callsOf(rpc: string, id: string): number {
  return daemon.stderr.split('\n').filter((l) => l.includes(`"rpc":"${rpc}"`) && l.includes(`"containerId":"${id}"`) && l.includes('"msg":"call done"')).length;
}

function subscribersJoined(): number {
  return daemon.stderr.split('\n').filter((l) => l.includes('container events subscriber joined')).length;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function httpGet(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

/** A pod with one busybox container made over CRI (not through `run`). */
async function criContainer(
  t: { after: (fn: () => unknown) => void },
  pod: string,
  name: string,
  cmd: string[],
  handler: string,
  extra: CriMessage = {},
): Promise<{ pod: string; cid: string }> {
  const logDir = path.join(logRoot, pod);
  fs.mkdirSync(logDir, { recursive: true });
  const config = { metadata: { name: pod, uid: `${pod}-uid`, namespace: 'cli-names', attempt: 0 }, log_directory: logDir, linux: {} };
  const podId = String((await daemon.runtime('RunPodSandbox', { config, runtime_handler: handler }, 120_000)).pod_sandbox_id);
  t.after(() => removePod(podId));
  const created = await daemon.runtime(
    'CreateContainer',
    {
      pod_sandbox_id: podId,
      config: { metadata: { name, attempt: 0 }, image: { image: 'busybox' }, args: cmd, log_path: `${name}.log`, linux: {}, ...extra },
      sandbox_config: config,
    },
    120_000,
  );
  const cid = String(created.container_id);
  await daemon.runtime('StartContainer', { container_id: cid }, 120_000);
  return { pod: podId, cid };
}

for (const handler of HANDLERS) {
  test(
    `${handler}: run -d --name web, then logs/exec/ps/inspect/inspectp/stats/update/stop/rm/stopp/rmp by that name (S4)`,
    { timeout: 600_000 },
    async (t) => {
      const name = `web-${handler}`;
      const data = path.join(work, `data-${handler}`);
      fs.mkdirSync(data, { recursive: true });
      fs.writeFileSync(path.join(data, 'f'), 'from host\n');
      t.after(async () => {
        for (const p of await podsNamed(name)) await removePod(String(p.id));
      });
      const script = 'echo hello; cat /data/f; echo err >&2; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo bye';
      const started = await cli([
        'run',
        '-d',
        '--name',
        name,
        '--runtime',
        handler,
        '--log-root',
        logRoot,
        '-v',
        `${data}:/data:ro`,
        'busybox',
        'sh',
        '-c',
        script,
      ]);
      assert.equal(started.code, 0, started.stderr);
      assert.match(started.stdout, /^[0-9a-f]{64}\n$/);
      const cid = started.stdout.trim();
      const [pod] = await podsNamed(name);
      assert.ok(pod, '-d leaves the pod running');
      assert.equal(pod.runtime_handler, handler);

      // The log by name, as the container writes it (the -v mount shows the host file).
      const logs = await until('the log of the detached container', async () => {
        const r = await cli(['logs', name]);
        return r.code === 0 && r.stdout.includes('from host') ? r : undefined;
      });
      assert.equal(logs.stdout, 'hello\nfrom host\n');
      assert.equal(logs.stderr, 'err\n');
      const stamped = await cli(['logs', '--timestamps', name]);
      assert.equal(stamped.code, 0, stamped.stderr);
      const lines = stamped.stdout.trimEnd().split('\n');
      assert.equal(lines.length, 2, stamped.stdout);
      for (const [i, text] of ['hello', 'from host'].entries())
        assert.match(lines[i], new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?(Z|[+-]\\d\\d:\\d\\d) ${text}$`));
      assert.equal((await cli(['logs', '--since', '1h', name])).stdout, 'hello\nfrom host\n');
      assert.equal((await cli(['logs', '--since', '2999-01-01T00:00:00Z', name])).stdout, '');
      const badSince = await cli(['logs', '--since', 'yesterday', name]);
      assert.equal(badSince.code, 2);
      assert.match(badSince.stderr, /--since "yesterday": expected a duration/);

      // logs -f follows from here to the exit; meanwhile the other verbs run.
      const joinedBefore = subscribersJoined();
      const statusBefore = callsOf('ContainerStatus', cid);
      const follow = cliLive(['logs', '--socket', daemon.socket, '-f', name]);
      t.after(() => {
        follow.child.kill('SIGKILL');
      });
      await until('logs -f to print the log so far', () => follow.out().includes('from host') || follow.child.exitCode !== null);
      await until('logs -f to subscribe to GetContainerEvents', () => subscribersJoined() > joinedBefore);

      // The -v mount is read-only inside.
      const ro = await cli(['exec', name, 'sh', '-c', 'cat /data/f; touch /data/x']);
      assert.notEqual(ro.code, 0);
      assert.equal(ro.stdout, 'from host\n');
      assert.match(ro.stderr, /read-only file system/i);

      const ps = await cli(['ps', '-q', '--name', `^${name}$`]);
      assert.equal(ps.stdout, `${cid}\n`, ps.stderr);
      assert.ok((await cli(['ps', '-q', '--state', 'running', '--label', 'sandlot.io/run=true'])).stdout.split('\n').includes(cid));
      assert.ok(!(await cli(['ps', '-q', '--state', 'exited'])).stdout.split('\n').includes(cid));
      const psJson = JSON.parse((await cli(['ps', '-o', 'json', '--pod', name])).stdout) as { containers: CriAnswer<'ListContainers'>['containers'] };
      assert.deepEqual(
        psJson.containers.map((c) => [c.id, c.metadata.name, c.state]),
        [[cid, name, 'CONTAINER_RUNNING']],
      );
      const badState = await cli(['ps', '--state', 'sleepy']);
      assert.equal(badState.code, 2);
      assert.match(badState.stderr, /--state "sleepy": expected created, running, exited or unknown/);

      // inspect NAME is the container (as docker's); inspectp NAME the pod.
      const view = JSON.parse((await cli(['inspect', name])).stdout) as { status: CriAnswer<'ContainerStatus'>['status']; info: unknown };
      assert.equal(view.status.id, cid);
      assert.equal(view.status.metadata.name, name);
      assert.equal(view.status.image.user_specified_image, 'busybox', 'the reference as typed, not the image ID');
      assert.match(String(view.status.image_ref), /^sha256:[0-9a-f]{64}$/);
      assert.equal(typeof view.info, 'object');
      const podView = JSON.parse((await cli(['inspectp', name])).stdout) as { status: CriAnswer<'PodSandboxStatus'>['status']; info: { info: unknown } };
      assert.equal(podView.status.id, pod.id);
      assert.equal(typeof podView.info.info, 'object', 'the verbose info is an object, not a JSON string');
      const podYaml = await cli(['inspectp', '-o', 'yaml', String(pod.id).slice(0, 10)]);
      assert.match(podYaml.stdout, new RegExp(`^status:\\n[\\s\\S]*id: ${String(pod.id)}`));
      const pods = JSON.parse((await cli(['pods', '-o', 'json', '--name', `^${name}$`])).stdout) as { items: CriAnswer<'ListPodSandbox'>['items'] };
      assert.deepEqual(
        pods.items.map((p) => p.id),
        [pod.id],
      );

      const stats = await cli(['stats', name]);
      assert.equal(stats.code, 0, stats.stderr);
      const [header, row, ...rest] = stats.stdout.trimEnd().split('\n');
      assert.match(header, /^CONTAINER\s+NAME\s+CPU %\s+MEM\s+DISK\s+INODES$/);
      assert.match(row, new RegExp(`^${cid.slice(0, 13)}\\s+${name}\\s+(\\d+\\.\\d\\d|-)\\s+\\d+(\\.\\d+)?(B|kB|MB|GB)\\s+`));
      assert.deepEqual(rest, []);
      const podStats = await cli(['statsp', '-o', 'json', name]);
      assert.equal(podStats.code, 0, podStats.stderr);
      assert.deepEqual(
        (JSON.parse(podStats.stdout) as { stats: CriAnswer<'ListPodSandboxStats'>['stats'] }).stats.map((s) => s.attributes.id),
        [pod.id],
      );

      const update = await cli(['update', '--memory', '64m', name]);
      if (handler === 'runsc') {
        // gVisor has no `runsc update`: the daemon says so, and the CLI passes it on naming the container.
        assert.equal(update.code, 1);
        assert.match(update.stderr, new RegExp(`^sandlot update: updating resources of container "${cid}": runsc has no update command`));
      } else {
        assert.equal(update.code, 0, update.stderr);
        assert.equal(update.stdout, `${cid}\n`);
        const limit = await daemon.runtime('ContainerStatus', { container_id: cid });
        assert.equal(Number(limit.status.resources.linux.memory_limit_in_bytes), 64 * 1024 * 1024);
      }
      const noChange = await cli(['update', name]);
      assert.equal(noChange.code, 2);
      assert.match(noChange.stderr, /nothing to update/);

      // The container ends: logs -f prints the last line and exits, told by the event stream.
      const exec = await cli(['exec', name, 'touch', '/tmp/go']);
      assert.equal(exec.code, 0, exec.stderr);
      assert.equal(await follow.closed, 0, follow.err());
      assert.equal(follow.out(), 'hello\nfrom host\nbye\n');
      // logs -f: one ContainerStatus for the log path, one right after subscribing, one
      // CHECK_AGAIN_MS later; besides them `inspect` and the runc memory check above. A
      // 100 ms poll over all the verbs in between would have made hundreds.
      const statusCalls = callsOf('ContainerStatus', cid) - statusBefore;
      assert.ok(statusCalls <= (handler === 'runc' ? 5 : 4), `ContainerStatus was asked ${statusCalls} times while logs -f followed`);

      const stop = await cli(['stop', name]);
      assert.equal(stop.code, 0, stop.stderr);
      assert.equal(stop.stdout, `${cid}\n`);
      const rm = await cli(['rm', name]);
      assert.equal(rm.code, 0, rm.stderr);
      assert.equal(rm.stdout, `${cid}\n`);
      assert.deepEqual((await daemon.runtime('ListContainers', { filter: { id: cid } })).containers, []);
      const stopp = await cli(['stopp', name]);
      assert.equal(stopp.code, 0, stopp.stderr);
      assert.equal(stopp.stdout, `Stopped sandbox ${pod.id}\n`);
      const rmp = await cli(['rmp', name]);
      assert.equal(rmp.code, 0, rmp.stderr);
      assert.equal(rmp.stdout, `Removed sandbox ${pod.id}\n`);
      assert.deepEqual(await podsNamed(name), []);
    },
  );

  test(`${handler}: run -p HOST:CTR publishes a container port on the host (CNI portmap)`, { timeout: 300_000 }, async (t) => {
    const name = `pub-${handler}`;
    t.after(async () => {
      for (const p of await podsNamed(name)) await removePod(String(p.id));
    });
    const www = path.join(work, `www-${handler}`);
    fs.mkdirSync(www, { recursive: true });
    fs.writeFileSync(path.join(www, 'index.html'), `published by ${handler}\n`);
    const port = await freePort();
    const r = await cli([
      'run',
      '-d',
      '--runtime',
      handler,
      '--name',
      name,
      '--log-root',
      logRoot,
      '-p',
      `${port}:8080`,
      '-v',
      `${www}:/www:ro`,
      'busybox',
      'httpd',
      '-f',
      '-p',
      '8080',
      '-h',
      '/www',
    ]);
    assert.equal(r.code, 0, r.stderr);
    // httpd may still be starting: connections are refused until it listens.
    const body = await until('the published port to answer', () => httpGet(port).catch(() => ''));
    assert.equal(body, `published by ${handler}\n`);
    const rmp = await cli(['rmp', '-f', name]);
    assert.equal(rmp.code, 0, rmp.stderr);
  });

  test(`${handler}: attach -i detaches on Ctrl-P Ctrl-Q and leaves the container and its stdin for the next attach`, { timeout: 300_000 }, async (t) => {
    const { cid } = await criContainer(t, `detach-${handler}`, 'reader', ['sh', '-c', 'while read l; do echo got $l; done; echo eof'], handler, {
      stdin: true,
      stdin_once: false,
    });
    /** Attaches, says `word` until the answer shows (the first lines may pass before the output is hooked up), then types Ctrl-P Ctrl-Q. */
    const attachAndDetach = async (ref: string, word: string): Promise<void> => {
      const att = cliLive(['attach', '--socket', daemon.socket, '-i', ref]);
      t.after(() => {
        att.child.kill('SIGKILL');
      });
      await until(`"got ${word}" through attach`, () => {
        if (att.out().includes(`got ${word}`) || att.child.exitCode !== null) return true;
        att.child.stdin!.write(`${word}\n`);
        return false;
      });
      att.child.stdin!.write(Buffer.from([0x10, 0x11]));
      assert.equal(await att.closed, 0, att.err());
      assert.match(att.out(), new RegExp(`^(got ${word}\n)+$`));
      assert.equal(att.err(), 'read escape sequence\n');
      assert.equal((await daemon.runtime('ContainerStatus', { container_id: cid })).status.state, 'CONTAINER_RUNNING');
    };
    await attachAndDetach('reader', 'ping');
    // Detaching did not close its stdin: a second attach reaches the same process.
    await attachAndDetach(cid.slice(0, 12), 'again');
    assert.ok(!fs.readFileSync(path.join(logRoot, `detach-${handler}`, 'reader.log'), 'utf8').includes('eof'), 'the loop never saw EOF');
  });
}

test('an ambiguous name fails listing the candidates; a pod and container named alike resolve by verb', async (t) => {
  const a = await criContainer(t, 'twin-a', 'twin', ['sleep', '1000'], 'runc');
  const b = await criContainer(t, 'twin-b', 'twin', ['sleep', '1000'], 'runc');
  const r = await cli(['logs', 'twin']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /container name "twin" is ambiguous: 2 containers have it/);
  for (const x of [a, b]) assert.ok(r.stderr.includes(x.cid.slice(0, 13)), r.stderr);
  const missing = await cli(['stop', 'no-such-name']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /container "no-such-name" not found/);
  // The pods have names of their own: `stopp twin-a` is that pod.
  const stopp = await cli(['stopp', 'twin-a']);
  assert.equal(stopp.code, 0, stopp.stderr);
  assert.equal(stopp.stdout, `Stopped sandbox ${a.pod}\n`);
});

test('events prints a container start and stop as they happen (-o json: one event per line) and ends at Ctrl-C', { timeout: 300_000 }, async (t) => {
  const joinedBefore = subscribersJoined();
  const ev = cliLive(['events', '--socket', daemon.socket, '-o', 'json']);
  t.after(() => {
    ev.child.kill('SIGKILL');
  });
  await until('events to subscribe', () => subscribersJoined() > joinedBefore || ev.child.exitCode !== null);
  const { cid } = await criContainer(t, 'events-pod', 'blink', ['true'], 'runc');
  const events = (): CriAnswer<'GetContainerEvents'>[] =>
    ev
      .out()
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as CriAnswer<'GetContainerEvents'>)
      .filter((e) => e.container_id === cid);
  await until('the start and stop events', () => events().some((e) => e.container_event_type === 'CONTAINER_STOPPED_EVENT'));
  assert.deepEqual(
    events()
      .map((e) => e.container_event_type)
      .filter((x) => x !== 'CONTAINER_STOPPED_EVENT')
      .slice(0, 2),
    ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT'],
  );
  ev.child.kill('SIGINT');
  assert.equal(await ev.closed, 0, ev.err());
});

test('global flags go before or after the verb; no daemon at the socket is said plainly with how to start one', async () => {
  const before = await cliRun(['--socket', daemon.socket, 'version']);
  assert.equal(before.code, 0, before.stderr);
  assert.match(before.stdout, /^RuntimeName:\s+sandlot$/m);
  const afterVerb = await cliRun(['version', '--socket', daemon.socket]);
  assert.equal(afterVerb.stdout, before.stdout);
  const nowhere = path.join(work, 'nobody-here.sock');
  const gone = await cliRun(['--socket', nowhere, 'ps']);
  assert.equal(gone.code, 1);
  assert.equal(gone.stdout, '');
  assert.match(
    gone.stderr,
    new RegExp(
      `^sandlot ps: no sandlot daemon answers at ${nowhere.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(the socket does not exist\\): start one with .sudo sandlot daemon.`,
    ),
  );
  assert.ok(!/UNAVAILABLE|No connection established/.test(gone.stderr), gone.stderr);
});

test('per-verb --help lists flags with values and meaning; unknown flags and verbs get a typo hint and exit 2', async () => {
  const help = await cliRun(['ps', '--help']);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage: sandlot ps \[flags\]/);
  assert.match(help.stdout, /-s, --state <STATE>\s+only containers in this state/);
  assert.match(help.stdout, /-o, --output <FORMAT>\s+json, yaml or table/);
  const runHelp = await cliRun(['run', '-h']);
  assert.match(runHelp.stdout, /-v, --volume <HOST:CTR\[:ro\]>\s+bind-mount/);
  assert.match(runHelp.stdout, /-d, --detach\s+start the container, print its ID/);
  const top = await cliRun(['--help']);
  assert.equal(top.code, 0);
  for (const verb of ['stats', 'statsp', 'inspecti', 'imagefsinfo', 'events', 'update', 'inspectp']) assert.match(top.stdout, new RegExp(`^  ${verb}\\b`, 'm'));
  const typo = await cliRun(['logs', '--tial', '3', 'web']);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /^sandlot logs: unknown option '--tial'\n\(Did you mean --tail\?\)/);
  const verb = await cliRun(['lgos']);
  assert.equal(verb.code, 2);
  assert.match(verb.stderr, /unknown command 'lgos'\n\(Did you mean logs\?\)/);
});

test('ps into a pipe closed early exits quietly (no EPIPE trace)', async () => {
  // `true` reads nothing and is gone before the CLI has its answer from the daemon.
  const rcFile = path.join(work, 'epipe-rc');
  const errFile = path.join(work, 'epipe-err');
  const cmd = `("${process.execPath}" --import "${TSX}" "${BIN}" ps -a --socket "${daemon.socket}"; echo $? > "${rcFile}") 2> "${errFile}" | true`;
  const code = await new Promise<number | null>((resolve, reject) => {
    const sh = spawn('sh', ['-c', cmd], { stdio: 'ignore' });
    sh.once('error', reject);
    sh.once('close', resolve);
  });
  assert.equal(code, 0);
  await until('the CLI to finish', () => fs.existsSync(rcFile) && fs.readFileSync(rcFile, 'utf8').trim() !== '');
  assert.equal(fs.readFileSync(errFile, 'utf8'), '');
  assert.equal(fs.readFileSync(rcFile, 'utf8').trim(), '0');
});

test('status --verbose prints the info as nested JSON objects, not JSON strings in JSON', async () => {
  const r = await cli(['status', '--verbose']);
  assert.equal(r.code, 0, r.stderr);
  const start = r.stdout.indexOf('{');
  assert.match(r.stdout.slice(0, start), /^RuntimeReady\s+true$/m);
  const info = JSON.parse(r.stdout.slice(start)) as Record<string, unknown>;
  assert.ok(Object.keys(info).length > 0, r.stdout);
  // Plain strings (a file path) stay strings; JSON documents are shown as what they hold.
  for (const [k, v] of Object.entries(info)) assert.ok(typeof v !== 'string' || !/^\s*[[{]/.test(v), `info.${k} is a JSON string: ${String(v)}`);
  assert.ok(
    Object.values(info).some((v) => typeof v === 'object' && v !== null),
    r.stdout,
  );
});
