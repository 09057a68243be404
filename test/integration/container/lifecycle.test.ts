// The container lifecycle through the daemon's gRPC socket with runc: logs in the CRI
// format and exit codes, stop with the stop signal then SIGKILL, shared network and IPC
// within a pod, a read-only rootfs, update and reopen of the log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { alive, failure, makeContainerEnv, waitFor } from './container-env.js';

const CRI_LOG_LINE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d) (stdout|stderr) (F|P) (.*)$/;

test('a container that prints and exits 3: CRI log lines, exit code 3, reason Error, S4 wording', { timeout: 180_000 }, async (t) => {
  const env = await makeContainerEnv(t);
  const pod = await env.runPod('exit3');
  const id = await env.createContainer(pod, 'printer', { command: ['/bin/sh', '-c', 'echo out-line; echo err-line >&2; exit 3'] });
  const created = await env.status(id);
  assert.equal(created.state, 'CONTAINER_CREATED');
  assert.equal(created.started_at, '0');
  assert.equal(created.image.image, 'docker.io/library/busybox:latest');
  assert.match(created.image_ref, /^sha256:[0-9a-f]{64}$/);
  assert.equal(created.labels.container, 'printer');
  assert.equal(created.log_path, path.join(env.logDir, 'exit3', 'printer.log'), JSON.stringify(created));

  await env.d.runtime('StartContainer', { container_id: id });
  const st = await env.waitState(id, 'CONTAINER_EXITED');
  assert.equal(st.exit_code, 3);
  assert.equal(st.reason, 'Error');
  assert.ok(BigInt(st.finished_at) >= BigInt(st.started_at) && BigInt(st.started_at) > 0n);

  const lines = fs.readFileSync(st.log_path, 'utf8').trim().split('\n');
  const parsed = lines.map((l) => CRI_LOG_LINE.exec(l));
  assert.ok(
    parsed.every((m) => m !== null),
    `every line is in the CRI format: ${JSON.stringify(lines)}`,
  );
  assert.deepEqual(parsed.map((m) => `${m[2]} ${m[3]} ${m[4]}`).sort(), ['stderr F err-line', 'stdout F out-line']);

  // S4: starting an exited container names the state.
  const again = await failure(env.d.runtime('StartContainer', { container_id: id }));
  assert.equal(again.code, GrpcStatus.FAILED_PRECONDITION);
  assert.match(again.details, new RegExp(`cannot start container "${id}" in state stopped`));

  // Stop is idempotent on an exited container; ReopenContainerLog refuses it.
  await env.d.runtime('StopContainer', { container_id: id, timeout: 1 });
  const reopen = await failure(env.d.runtime('ReopenContainerLog', { container_id: id }));
  assert.equal(reopen.code, GrpcStatus.FAILED_PRECONDITION);
  const upd = await failure(env.d.runtime('UpdateContainerResources', { container_id: id, linux: { cpu_shares: 512 } }));
  assert.equal(upd.code, GrpcStatus.FAILED_PRECONDITION);

  // A zero exit is Completed.
  const ok = await env.createContainer(pod, 'zero', { command: ['/bin/true'] });
  await env.d.runtime('StartContainer', { container_id: ok });
  const okSt = await env.waitState(ok, 'CONTAINER_EXITED');
  assert.equal(okSt.exit_code, 0);
  assert.equal(okSt.reason, 'Completed');

  const list = (await env.d.runtime('ListContainers', { filter: { pod_sandbox_id: pod } })) as { containers: Array<{ id: string; state: string }> };
  assert.deepEqual(list.containers.map((c) => c.id).sort(), [id, ok].sort());

  await env.d.runtime('RemoveContainer', { container_id: id });
  await env.d.runtime('RemoveContainer', { container_id: id }); // idempotent
  await env.d.runtime('RemoveContainer', { container_id: 'f'.repeat(64) }); // unknown: fine too
  const nf = await failure(env.d.runtime('ContainerStatus', { container_id: id }));
  assert.equal(nf.code, GrpcStatus.NOT_FOUND);
});

test('stop: SIGTERM is honoured; a container that ignores it is SIGKILLed after the timeout', { timeout: 180_000 }, async (t) => {
  const env = await makeContainerEnv(t);
  const pod = await env.runPod('stopper');
  const polite = await env.createContainer(pod, 'polite', {
    command: ['/bin/sh', '-c', 'trap "echo got-term; exit 0" TERM; echo ready; while true; do sleep 0.1; done'],
  });
  const stubborn = await env.createContainer(pod, 'stubborn', {
    command: ['/bin/sh', '-c', 'trap "echo ignoring-term" TERM; echo ready; while true; do sleep 0.1; done'],
  });
  for (const id of [polite, stubborn]) await env.d.runtime('StartContainer', { container_id: id });
  for (const id of [polite, stubborn]) await env.waitState(id, 'CONTAINER_RUNNING');
  const logOf = async (id: string): Promise<string> => fs.readFileSync((await env.status(id)).log_path, 'utf8');
  for (const id of [polite, stubborn]) await waitFor('the trap to be set', async () => (await logOf(id)).includes('ready'));

  const running = await failure(env.d.runtime('StartContainer', { container_id: polite }));
  assert.equal(running.code, GrpcStatus.FAILED_PRECONDITION);
  assert.match(running.details, new RegExp(`cannot start container "${polite}" in state running`));

  await env.d.runtime('StopContainer', { container_id: polite, timeout: 30 }, 60_000);
  const p = await env.status(polite);
  assert.equal(p.state, 'CONTAINER_EXITED');
  assert.equal(p.exit_code, 0, 'the trap ran and exited 0: SIGTERM was delivered and honoured');
  assert.match(await logOf(polite), /got-term/);

  await env.d.runtime('StopContainer', { container_id: stubborn, timeout: 2 }, 60_000);
  const s = await env.status(stubborn);
  assert.equal(s.state, 'CONTAINER_EXITED');
  assert.equal(s.exit_code, 137, 'SIGKILL after the timeout');
  assert.match(await logOf(stubborn), /ignoring-term/);
  await env.d.runtime('StopContainer', { container_id: stubborn, timeout: 2 }); // idempotent
});

test('two containers in one pod share the network and IPC namespaces', { timeout: 180_000 }, async (t) => {
  const env = await makeContainerEnv(t);
  const pod = await env.runPod('shared');
  const server = await env.createContainer(pod, 'server', {
    command: ['/bin/sh', '-c', 'echo pong-from-server | nc -l -p 8080; sleep 3600'],
  });
  await env.d.runtime('StartContainer', { container_id: server });
  await env.waitState(server, 'CONTAINER_RUNNING');
  const client = await env.createContainer(pod, 'client', {
    command: [
      '/bin/sh',
      '-c',
      'for i in $(seq 1 100); do r=$(nc 127.0.0.1 8080 </dev/null) && [ -n "$r" ] && echo "got:$r" && break; sleep 0.2; done; ' +
        'readlink /proc/self/ns/ipc; readlink /proc/self/ns/net',
    ],
  });
  await env.d.runtime('StartContainer', { container_id: client });
  const st = await env.waitState(client, 'CONTAINER_EXITED', 90_000);
  assert.equal(st.exit_code, 0);
  const log = fs.readFileSync(st.log_path, 'utf8');
  assert.match(log, /got:pong-from-server/, 'the client reached the server on localhost');
  const serverPid = Number((await env.info(server)).pid);
  const ipc = fs.readlinkSync(`/proc/${serverPid}/ns/ipc`);
  const net = fs.readlinkSync(`/proc/${serverPid}/ns/net`);
  assert.ok(log.includes(ipc), `the client's IPC namespace is the server's (${ipc})`);
  assert.ok(log.includes(net), `the client's network namespace is the server's (${net})`);
});

test('a write to a read-only rootfs fails; UpdateContainerResources shows in the status; ReopenContainerLog after a move', { timeout: 180_000 }, async (t) => {
  const env = await makeContainerEnv(t);
  const pod = await env.runPod('misc');
  const ro = await env.createContainer(pod, 'ro', {
    command: ['/bin/sh', '-c', 'touch /written && echo wrote || { echo refused; exit 7; }'],
    linux: { security_context: { readonly_rootfs: true } },
  });
  await env.d.runtime('StartContainer', { container_id: ro });
  const roSt = await env.waitState(ro, 'CONTAINER_EXITED');
  assert.equal(roSt.exit_code, 7);
  const roLog = fs.readFileSync(roSt.log_path, 'utf8');
  // stdout and stderr are separate pipes: their order in the log is not fixed.
  assert.match(roLog, /stderr F touch: \/written: Read-only file system/);
  assert.match(roLog, /stdout F refused/);

  const ticker = await env.createContainer(pod, 'ticker', {
    command: ['/bin/sh', '-c', 'i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.1; done'],
  });
  await env.d.runtime('StartContainer', { container_id: ticker });
  await env.waitState(ticker, 'CONTAINER_RUNNING');

  await env.d.runtime('UpdateContainerResources', { container_id: ticker, linux: { cpu_shares: 512, memory_limit_in_bytes: 64 * 1024 * 1024 } });
  const up = await env.status(ticker);
  assert.equal(up.resources.linux.cpu_shares, '512');
  assert.equal(up.resources.linux.memory_limit_in_bytes, String(64 * 1024 * 1024));
  const neg = await failure(env.d.runtime('UpdateContainerResources', { container_id: ticker, linux: { memory_limit_in_bytes: -5 } }));
  assert.equal(neg.code, GrpcStatus.INVALID_ARGUMENT);

  const logPath = up.log_path;
  await waitFor('some ticks', () => fs.existsSync(logPath) && fs.readFileSync(logPath, 'utf8').includes('tick-2'));
  fs.renameSync(logPath, `${logPath}.1`);
  await env.d.runtime('ReopenContainerLog', { container_id: ticker });
  await waitFor('the reopened log to fill', () => fs.existsSync(logPath) && /tick-\d+/.test(fs.readFileSync(logPath, 'utf8')));
  const before = fs.readFileSync(`${logPath}.1`, 'utf8').trim().split('\n').at(-1)!;
  const after = fs.readFileSync(logPath, 'utf8').trim().split('\n')[0];
  assert.ok(Number(/tick-(\d+)/.exec(after)![1]) > Number(/tick-(\d+)/.exec(before)![1]), 'the new file continues where the old one ended');

  const info = await env.info(ticker);
  await env.d.runtime('StopContainer', { container_id: ticker, timeout: 0 });
  await env.d.runtime('RemoveContainer', { container_id: ticker });
  await waitFor('conmon to go', () => !alive(Number(info.conmonPid)));
  assert.ok(!fs.existsSync(String(info.bundle)), 'the bundle is gone');
});

test('the termination message file the kubelet mounts becomes ContainerStatus.message', { timeout: 180_000 }, async (t) => {
  const env = await makeContainerEnv(t);
  const pod = await env.runPod('farewell');
  const hostFile = path.join(env.d.dir, 'termination-log');
  fs.writeFileSync(hostFile, '');
  const id = await env.createContainer(pod, 'leaver', {
    command: ['/bin/sh', '-c', 'echo -n "gone fishing" > /dev/termination-log; exit 1'],
    mounts: [{ container_path: '/dev/termination-log', host_path: hostFile }],
    annotations: { 'io.kubernetes.container.terminationMessagePath': '/dev/termination-log' },
  });
  await env.d.runtime('StartContainer', { container_id: id });
  const st = await env.waitState(id, 'CONTAINER_EXITED');
  assert.equal(st.exit_code, 1);
  assert.equal(st.reason, 'Error');
  assert.equal(st.message, 'gone fishing');
  assert.equal(st.mounts.length, 1);
});
