// The pod, container and streaming verbs of the real `sandlot` CLI (node --import tsx
// src/cli/bin.ts) against a real daemon with the preloaded busybox image. Every RPC the
// verbs use is served: an UNIMPLEMENTED answer is a wiring regression and fails the test.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CriMessage } from '../../../src/cli/client.js';
import { writeBusyboxLayout } from '../../../src/image/oci-layout-writer.js';
import { runRemoteCommand } from '../../../src/cli/ws-channel-client.js';
import { startDaemon, type CriAnswer, type TestDaemon } from '../../helpers/daemon.js';
import { startServer } from '../streaming/harness.js';
import { cliRun, cliSpawn, type CliResult } from './cli-harness.js';

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-pod-cli-'));
const logRoot = path.join(work, 'logs');
await writeBusyboxLayout(path.join(work, 'busybox'));
const daemon: TestDaemon = await startDaemon({ config: { preload_images: [path.join(work, 'busybox')] } });
after(async () => {
  await daemon.cleanup();
  fs.rmSync(work, { recursive: true, force: true });
});

/** The CLI on the test daemon's socket; `--socket` goes after the verb (the other tests put it first). */
function withSocket(args: string[]): string[] {
  return [args[0], '--socket', daemon.socket, ...args.slice(1)];
}

function cliProcess(args: string[]): ChildProcess {
  return cliSpawn(withSocket(args));
}

function cli(args: string[], input?: string): Promise<CliResult> {
  return cliRun(withSocket(args), input);
}

async function runPod(name: string, labels: Record<string, string> = {}, logDirectory = ''): Promise<string> {
  const uid = `${name}-uid`;
  const config = { metadata: { name, uid, namespace: 'cli-test', attempt: 0 }, labels, log_directory: logDirectory, linux: {} };
  const res = await daemon.runtime('RunPodSandbox', { config }, 120_000);
  return String(res.pod_sandbox_id);
}

async function removePod(id: string): Promise<void> {
  await daemon.runtime('StopPodSandbox', { pod_sandbox_id: id }, 120_000).catch(() => undefined);
  await daemon.runtime('RemovePodSandbox', { pod_sandbox_id: id }, 120_000).catch(() => undefined);
}

async function podState(id: string): Promise<string | undefined> {
  const res = await daemon.runtime('ListPodSandbox', { filter: { id } });
  return res.items.at(0)?.state;
}

test('pods lists pods as a table with short IDs and relative times; -q, --state and --label filter', async (t) => {
  const a = await runPod('cli-pods-a', { tier: 'web' });
  t.after(() => removePod(a));
  const b = await runPod('cli-pods-b', { tier: 'db' });
  t.after(() => removePod(b));
  await daemon.runtime('StopPodSandbox', { pod_sandbox_id: b }, 120_000);

  const all = await cli(['pods']);
  assert.equal(all.code, 0, all.stderr);
  const lines = all.stdout.trimEnd().split('\n');
  assert.match(lines[0], /^POD ID\s+CREATED\s+STATE\s+NAME\s+NAMESPACE\s+ATTEMPT\s+RUNTIME$/);
  const rowA = lines.find((l) => l.startsWith(a.slice(0, 13)));
  assert.ok(rowA, all.stdout);
  assert.match(rowA, /ago\s+Ready\s+cli-pods-a\s+cli-test\s+0\s+(runc|\(default\))$/);
  assert.ok(!rowA.includes(a.slice(0, 14)), 'IDs are cut to 13 characters');
  assert.match(
    lines.find((l) => l.startsWith(b.slice(0, 13)))!,
    /NotReady\s+cli-pods-b/,
  );

  const quiet = await cli(['pods', '-q', '--state', 'ready', '--label', 'tier=web']);
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.deepEqual(quiet.stdout.trim().split('\n'), [a]);
  const notReady = await cli(['pods', '-q', '--state', 'notready']);
  assert.ok(notReady.stdout.split('\n').includes(b));
  assert.ok(!notReady.stdout.split('\n').includes(a));

  const bad = await cli(['pods', '--state', 'sleepy']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--state "sleepy": expected ready or notready/);
});

test('stopp and rmp take ID prefixes; rmp refuses a ready pod without -f', async (t) => {
  const id = await runPod('cli-stopp');
  t.after(() => removePod(id));
  const refused = await cli(['rmp', id.slice(0, 10)]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, new RegExp(`pod "${id}" is ready: stop it first`));
  assert.equal(await podState(id), 'SANDBOX_READY');

  const stopped = await cli(['stopp', id.slice(0, 10)]);
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.equal(stopped.stdout, `Stopped sandbox ${id}\n`);
  assert.equal(await podState(id), 'SANDBOX_NOTREADY');

  const removed = await cli(['rmp', id.slice(0, 10)]);
  assert.equal(removed.code, 0, removed.stderr);
  assert.equal(removed.stdout, `Removed sandbox ${id}\n`);
  assert.equal(await podState(id), undefined);
});

test('rmp -f stops and removes a ready pod; an unknown ID fails naming it while the others go on', async (t) => {
  const id = await runPod('cli-rmp-force');
  t.after(() => removePod(id));
  const res = await cli(['rmp', '-f', 'zzzz-no-such', id]);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /pod "zzzz-no-such" not found/);
  assert.equal(res.stdout, `Removed sandbox ${id}\n`);
  assert.equal(await podState(id), undefined);
});

test('rmp -f of several pods shows progress per pod on stderr (issue 15); stdout keeps one line per removed pod', async (t) => {
  const a = await runPod('cli-rmp-progress-a');
  const b = await runPod('cli-rmp-progress-b');
  t.after(() => removePod(a));
  t.after(() => removePod(b));
  const res = await cli(['rmp', '-f', a, b]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout, `Removed sandbox ${a}\nRemoved sandbox ${b}\n`);
  assert.match(res.stderr, new RegExp(`Stopping sandbox ${a} \\(1/2\\) cli-rmp-progress-a`));
  assert.match(res.stderr, new RegExp(`Stopping sandbox ${b} \\(2/2\\) cli-rmp-progress-b`));
  assert.equal(await podState(a), undefined);
  assert.equal(await podState(b), undefined);
});

test('inspect shows a pod by prefix as JSON, with the verbose info parsed', async (t) => {
  const id = await runPod('cli-inspect');
  t.after(() => removePod(id));
  const res = await cli(['inspect', id.slice(0, 8)]);
  assert.equal(res.code, 0, res.stderr);
  const view = JSON.parse(res.stdout) as { status: CriAnswer<'PodSandboxStatus'>['status']; info: { info: { pid: unknown } } };
  assert.equal(view.status.id, id);
  assert.equal(view.status.metadata.name, 'cli-inspect');
  assert.equal(typeof view.info.info.pid, 'number');
  const missing = await cli(['inspect', 'zzzz']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no pod or container "zzzz" found/);
});

test('port-forward carries HTTP to a server inside the pod network namespace', async (t) => {
  const id = await runPod('cli-port-forward');
  t.after(() => removePod(id));
  const st = await daemon.runtime('PodSandboxStatus', { pod_sandbox_id: id, verbose: true });
  const netns = String((JSON.parse(st.info.info) as { netnsPath?: unknown }).netnsPath);
  assert.ok(netns, 'the pod has a pinned netns');
  const www = path.join(work, 'www');
  fs.mkdirSync(www, { recursive: true });
  fs.writeFileSync(path.join(www, 'index.html'), 'hello from the pod\n');
  // busybox httpd in the pod's netns only: the host cannot reach it but through the forward.
  const httpd = spawn('nsenter', [`--net=${netns}`, 'busybox', 'httpd', '-f', '-p', '127.0.0.1:8080', '-h', www], { stdio: 'ignore' });
  t.after(() => {
    httpd.kill('SIGKILL');
  });
  const pf = cliProcess(['port-forward', id.slice(0, 12), '0:8080']);
  t.after(() => {
    pf.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  pf.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  pf.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  let port = 0;
  for (let i = 0; i < 600 && port === 0; i++) {
    const m = /Forwarding from 127\.0\.0\.1:(\d+) -> 8080/.exec(out);
    if (m) port = Number(m[1]);
    else await sleep(100);
  }
  assert.ok(port > 0, `port-forward did not start: ${err}`);
  const get = (): Promise<string> =>
    new Promise((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve(body));
        })
        .on('error', reject);
    });
  // httpd may still be starting in its netns: the first connections may be refused there.
  let body = '';
  for (let i = 0; i < 50 && body === ''; i++) {
    body = await get().catch(() => '');
    if (body === '') await sleep(200);
  }
  assert.equal(body, 'hello from the pod\n', err);
  // Two at once, each on its own WebSocket.
  assert.deepEqual(await Promise.all([get(), get()]), ['hello from the pod\n', 'hello from the pod\n']);
  const exited = new Promise<number | null>((r) => pf.once('close', r));
  pf.kill('SIGINT');
  assert.equal(await exited, 0);
});

test('run --rm busybox echo hello prints hello, exits 0 and leaves nothing', async () => {
  const before = (await daemon.runtime('ListPodSandbox')).items.length;
  const res = await cli(['run', '--rm', '--log-root', logRoot, 'busybox', 'echo', 'hello']);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout, 'hello\n');
  assert.equal((await daemon.runtime('ListPodSandbox')).items.length, before);
  assert.deepEqual(fs.existsSync(logRoot) ? fs.readdirSync(logRoot) : [], []);
});

test('run keeps stdout and stderr apart and exits with the container exit code; ps, logs, inspect, rm, rmp', async (t) => {
  const res = await cli([
    'run',
    '--name',
    'cli-exit3',
    '-e',
    'WHO=sandlot',
    '--log-root',
    logRoot,
    'busybox',
    'sh',
    '-c',
    'echo out $WHO; echo err >&2; printf no-newline; exit 3',
  ]);
  const pods = (await daemon.runtime('ListPodSandbox', { filter: { label_selector: { 'sandlot.io/run': 'true' } } })).items;
  const pod = pods.find((p) => p.metadata.name === 'cli-exit3');
  t.after(() => (pod ? removePod(String(pod.id)) : undefined));
  assert.equal(res.code, 3, res.stderr);
  // Exactly what the container wrote: the last line had no newline.
  assert.equal(res.stdout, 'out sandlot\nno-newline');
  assert.equal(res.stderr, 'err\n');
  assert.ok(pod, 'without --rm the pod stays');

  const ps = await cli(['ps', '-a', '--pod', String(pod.id).slice(0, 10)]);
  assert.equal(ps.code, 0, ps.stderr);
  const [header, row] = ps.stdout.trimEnd().split('\n');
  assert.match(header, /^CONTAINER\s+IMAGE\s+CREATED\s+STATE\s+NAME\s+ATTEMPT\s+POD ID$/);
  assert.match(row, new RegExp(`^[0-9a-f]{13}\\s+\\S*busybox\\S*\\s+.*ago\\s+Exited\\s+cli-exit3\\s+0\\s+${String(pod.id).slice(0, 13)}$`));
  const running = await cli(['ps', '-q', '--pod', String(pod.id)]);
  assert.equal(running.stdout, '', 'ps without -a lists running containers only');
  const cid = (await cli(['ps', '-a', '-q', '--pod', String(pod.id)])).stdout.trim();
  assert.match(cid, /^[0-9a-f]{64}$/);

  const logs = await cli(['logs', cid.slice(0, 8)]);
  assert.equal(logs.code, 0, logs.stderr);
  assert.equal(logs.stdout, 'out sandlot\nno-newline');
  assert.equal(logs.stderr, 'err\n');
  const tail = await cli(['logs', '--tail', '1', cid.slice(0, 8)]);
  // The last whole line, then the unfinished one.
  assert.equal(tail.stderr, 'err\n');
  assert.equal(tail.stdout, 'no-newline');
  const followed = await cli(['logs', '-f', cid.slice(0, 8)]);
  assert.equal(followed.code, 0, followed.stderr);
  assert.equal(followed.stdout, 'out sandlot\nno-newline');

  const inspect = await cli(['inspect', cid.slice(0, 8)]);
  assert.equal(inspect.code, 0, inspect.stderr);
  const view = JSON.parse(inspect.stdout) as { status: CriAnswer<'ContainerStatus'>['status'] };
  assert.equal(view.status.id, cid);
  assert.equal(view.status.state, 'CONTAINER_EXITED');
  assert.equal(Number(view.status.exit_code), 3);

  const rm = await cli(['rm', cid.slice(0, 8)]);
  assert.equal(rm.code, 0, rm.stderr);
  assert.equal(rm.stdout, `${cid}\n`);
  const rmp = await cli(['rmp', '-f', String(pod.id)]);
  assert.equal(rmp.code, 0, rmp.stderr);
});

test('Ctrl-C during run --rm stops and removes the pod and exits 130', async () => {
  const listRun = async (): Promise<CriAnswer<'ListPodSandbox'>['items']> =>
    (await daemon.runtime('ListPodSandbox', { filter: { label_selector: { 'sandlot.io/run': 'true' } } })).items.filter(
      (p) => p.metadata.name === 'cli-interrupt',
    );
  const child = cliProcess(['run', '--rm', '--name', 'cli-interrupt', '--log-root', logRoot, 'busybox', 'sh', '-c', 'echo started; sleep 1000']);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const closed = new Promise<number | null>((r) => child.once('close', r));
  try {
    for (let i = 0; i < 1200 && !out.includes('started'); i++) await sleep(100);
    assert.equal(out, 'started\n');
    child.kill('SIGINT');
    assert.equal(await closed, 130);
    assert.deepEqual(await listRun(), []);
  } finally {
    child.kill('SIGKILL');
    for (const p of await listRun()) await removePod(String(p.id));
  }
});

/** A pod with one long-running busybox container, made over CRI directly. */
async function sleeper(t: { after: (fn: () => unknown) => void }, name: string, cmd: string[], extra: CriMessage = {}): Promise<{ pod: string; cid: string }> {
  const logDir = path.join(logRoot, name);
  fs.mkdirSync(logDir, { recursive: true });
  const pod = await runPod(name, {}, logDir);
  t.after(() => removePod(pod));
  const sandboxConfig = { metadata: { name, uid: `${name}-uid`, namespace: 'cli-test', attempt: 0 }, log_directory: logDir, linux: {} };
  const created = await daemon.runtime(
    'CreateContainer',
    {
      pod_sandbox_id: pod,
      config: { metadata: { name, attempt: 0 }, image: { image: 'busybox' }, args: cmd, log_path: `${name}.log`, linux: {}, ...extra },
      sandbox_config: sandboxConfig,
    },
    120_000,
  );
  const cid = String(created.container_id);
  await daemon.runtime('StartContainer', { container_id: cid }, 120_000);
  return { pod, cid };
}

test('stop -t stops a running container; rm refuses a running one without -f', async (t) => {
  const a = await sleeper(t, 'cli-stop', ['sleep', '1000']);
  const b = await sleeper(t, 'cli-rm-force', ['sleep', '1000']);
  const ps = await cli(['ps', '-q']);
  assert.ok(ps.stdout.split('\n').includes(a.cid) && ps.stdout.split('\n').includes(b.cid), ps.stdout);

  const stop = await cli(['stop', '-t', '1', a.cid.slice(0, 10)]);
  assert.equal(stop.code, 0, stop.stderr);
  assert.equal(stop.stdout, `${a.cid}\n`);
  const st = await daemon.runtime('ContainerStatus', { container_id: a.cid });
  assert.equal(st.status.state, 'CONTAINER_EXITED');

  const refused = await cli(['rm', b.cid.slice(0, 10)]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /is running: stop it first/);
  const forced = await cli(['rm', '-f', b.cid.slice(0, 10)]);
  assert.equal(forced.code, 0, forced.stderr);
  const left = (await daemon.runtime('ListContainers', { filter: { id: b.cid } })).containers;
  assert.deepEqual(left, []);
});

test('logs -f follows a running container until it exits', async (t) => {
  // The second line comes only after the CLI has started following (it is waiting for "go").
  const { cid } = await sleeper(t, 'cli-follow', ['sh', '-c', 'echo one; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo two']);
  const child = cliProcess(['logs', '-f', cid.slice(0, 10)]);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const closed = new Promise<number | null>((r) => child.once('close', r));
  t.after(() => {
    child.kill('SIGKILL');
  });
  for (let i = 0; i < 1200 && !out.includes('one') && child.exitCode === null; i++) await sleep(100);
  assert.equal(out, 'one\n', err);
  await daemon.runtime('ExecSync', { container_id: cid, cmd: ['touch', '/tmp/go'], timeout: 30 }, 60_000);
  assert.equal(await closed, 0);
  assert.equal(out, 'one\ntwo\n');
});

test('exec runs a command in a running container: output, stdin, exit code; flags after the container belong to the command', async (t) => {
  const { cid } = await sleeper(t, 'cli-exec', ['sleep', '1000']);
  const res = await cli(['exec', cid.slice(0, 10), 'sh', '-c', 'echo hi; echo oops >&2; exit 4']);
  assert.equal(res.code, 4, res.stderr);
  assert.equal(res.stdout, 'hi\n');
  assert.equal(res.stderr, 'oops\n');
  const cat = await cli(['exec', '-i', cid.slice(0, 10), 'cat'], 'piped in\n');
  assert.equal(cat.code, 0, cat.stderr);
  assert.equal(cat.stdout, 'piped in\n');
});

test('attach -i reaches the stdin of a container created with stdin', async (t) => {
  const { cid } = await sleeper(t, 'cli-attach', ['sh', '-c', 'read line; echo got $line'], { stdin: true, stdin_once: true });
  const res = await cli(['attach', '-i', cid.slice(0, 10)], 'ping\n');
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stdout, 'got ping\n');
});

// The CLI's WebSocket client against the real streaming server with host processes
// (test/integration/streaming's backend): these run whether or not the daemon serves Exec.
test('the CLI WebSocket client against the real streaming server: stdin, stdout/stderr, exit code', async (t) => {
  const { server } = await startServer(t);
  const url = server.getExecUrl({ containerId: 'host', cmd: ['sh', '-c', 'cat; echo err >&2; exit 5'], tty: false, stdin: true, stdout: true, stderr: true });
  const stdin = new PassThrough();
  const out: Buffer[] = [];
  const errs: Buffer[] = [];
  const done = runRemoteCommand(url, {
    stdin,
    stdout: new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }),
    stderr: new Writable({ write: (c: Buffer, _e, cb) => (errs.push(c), cb()) }),
  });
  stdin.end('from stdin\n');
  assert.deepEqual(await done, { exitCode: 5 });
  assert.equal(Buffer.concat(out).toString(), 'from stdin\n');
  assert.equal(Buffer.concat(errs).toString(), 'err\n');
});

test('the CLI WebSocket client with a terminal: the initial size and a resize reach the process', async (t) => {
  const { server } = await startServer(t);
  const url = server.getExecUrl({
    containerId: 'host',
    cmd: ['sh', '-c', 'stty size; while read x; do stty size; done'],
    tty: true,
    stdin: true,
    stdout: true,
    stderr: false,
  });
  const stdin = new PassThrough();
  let text = '';
  let resize: ((s: { width: number; height: number }) => void) | undefined;
  const done = runRemoteCommand(url, {
    stdin,
    stdout: new Writable({ write: (c: Buffer, _e, cb) => ((text += c.toString()), cb()) }),
    size: { width: 100, height: 30 },
    onResize: (send) => {
      resize = send;
      return () => undefined;
    },
  });
  // Sizes travel on their own channel and are applied asynchronously — the initial one too
  // (kubectl sends it the same way), so the first `stty size` may run before it lands: ask
  // again until each size shows.
  const askUntil = async (what: string, seen: () => boolean): Promise<void> => {
    const deadline = Date.now() + 20_000;
    while (!seen()) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; the process printed ${JSON.stringify(text)}`);
      stdin.write('again\n');
      await sleep(100);
    }
  };
  await askUntil('the first stty size', () => text.includes('30 100'));
  resize!({ width: 132, height: 50 });
  await askUntil('the resized stty size', () => /50 132/.test(text));
  stdin.end();
  assert.deepEqual(await done, { exitCode: 0 });
  assert.match(text, /30 100[\s\S]*50 132/);
});
