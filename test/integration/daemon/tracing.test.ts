// Traces through the real daemon and CLI into a real OTLP/gRPC receiver on 127.0.0.1
// (test/helpers/otlp-receiver.ts): each CRI call is a server span whose children show
// where its time went (CNI ADD/DEL per plugin, every runtime and conmon process, each
// layer's fetch and unpack) with pod, container, image and handler attributes; span
// status follows OpenTelemetry's gRPC server conventions; `sandlot run` is one trace;
// log lines carry the trace; an endpoint that refuses is logged, not fatal.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { status as Status } from '@grpc/grpc-js';
import { failure, makeContainerEnv, type ContainerEnv } from '../container/container-env.js';
import { cliRun, until } from '../cli/cli-harness.js';
import { startDaemon } from '../../helpers/daemon.js';
import { buildImage, busyboxLayer } from '../../helpers/image-build.js';
import { OtlpReceiver, SPAN_KIND, STATUS_CODE, type ReceivedSpan } from '../../helpers/otlp-receiver.js';
import { freePort, pushImage, startRegistry, type TestRegistry } from '../../helpers/registry.js';

// The daemon and CLI children inherit this: batches go out every 200 ms instead of 5 s.
process.env.OTEL_BSP_SCHEDULE_DELAY = '200';

let receiver: OtlpReceiver;
let reg: TestRegistry;
let env: ContainerEnv;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-tracing-'));
const afters: Array<() => Promise<void> | void> = [];

before(async () => {
  receiver = await OtlpReceiver.start();
  reg = await startRegistry();
  env = await makeContainerEnv({ after: (fn) => afters.push(fn) }, { config: { otlp_endpoint: receiver.endpoint } });
});
after(async () => {
  for (const fn of afters.reverse()) await fn();
  await reg?.stop();
  await receiver?.stop();
  fs.rmSync(work, { recursive: true, force: true });
});

/** The server span of the one call of `method` the predicate picks. */
function serverSpan(spans: ReceivedSpan[], method: string, pick: (s: ReceivedSpan) => boolean = () => true): ReceivedSpan | undefined {
  return spans.find((s) => s.kind === SPAN_KIND.SERVER && s.name.endsWith(`/${method}`) && pick(s));
}

/** Waits for the server span of a call and for its children named `names` (all of them exported). */
async function callTree(method: string, pick: (s: ReceivedSpan) => boolean, names: string[]): Promise<{ call: ReceivedSpan; below: ReceivedSpan[] }> {
  const call = await receiver.waitFor(`the ${method} server span`, (spans) => serverSpan(spans, method, pick));
  const below = await receiver.waitFor(`${names.join(', ')} below ${method}`, () => {
    const d = receiver.descendants(call);
    return names.every((n) => d.some((s) => s.name === n)) ? d : undefined;
  });
  return { call, below };
}

function named(spans: ReceivedSpan[], name: string, pick: (s: ReceivedSpan) => boolean = () => true): ReceivedSpan {
  const s = spans.find((x) => x.name === name && pick(x));
  assert.ok(s, `a span "${name}" among ${spans.map((x) => x.name).join(', ')}`);
  return s;
}

/** The daemon's JSON log lines. */
function logLines(): Array<Record<string, unknown>> {
  return env.d.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('tracing on is logged with its endpoint and service name', () => {
  const on = logLines().find((l) => l.msg === 'tracing on');
  assert.ok(on, 'a "tracing on" line');
  assert.equal(on.endpoint, receiver.endpoint);
  assert.equal(on.serviceName, 'sandlot');
});

test('PullImage has a fetch and an unpack span per layer, naming the image and the layer', { timeout: 180_000 }, async () => {
  const img = buildImage([await busyboxLayer()], { config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin'] } });
  await pushImage(reg, 'traces/pull', 'v1', img);
  const ref = `${reg.host}/traces/pull:v1`;
  await env.d.image('PullImage', { image: { image: ref } }, 120_000);
  const { call, below } = await callTree('PullImage', (s) => s.attributes['container.image.name'] === ref, [
    'image fetch manifest',
    'image fetch layer',
    'image unpack layer',
  ]);
  assert.equal(call.attributes['rpc.grpc.status_code'], Status.OK);
  const layer = img.layers[0].digest;
  for (const name of ['image fetch layer', 'image unpack layer']) {
    const s = named(below, name);
    assert.equal(s.attributes['container.image.name'], ref, `${name} names the image`);
    assert.equal(s.attributes['sandlot.layer.digest'], layer, `${name} names the layer`);
  }
});

for (const handler of ['runc', 'runsc']) {
  test(
    `${handler}: RunPodSandbox, CreateContainer and StartContainer show their CNI, conmon and runtime spans with attributes`,
    { timeout: 300_000 },
    async () => {
      const podName = `traced-${handler}`;
      const podId = await env.runPod(podName, {}, handler);
      const ctrId = await env.createContainer(podId, 'app', { command: ['/bin/sh', '-c', 'sleep 300'] });
      await env.d.runtime('StartContainer', { container_id: ctrId }, 120_000);

      // RunPodSandbox: the network list's ADD and each plugin's, then the infra's create (no conmon: issue 13).
      const run = await callTree('RunPodSandbox', (s) => s.attributes['k8s.pod.name'] === podName, ['CNI ADD', 'CNI ADD bridge', `${handler} create`]);
      assert.equal(run.call.attributes['sandlot.runtime_handler'], handler);
      assert.equal(run.call.attributes['sandlot.pod_sandbox.id'], podId, 'the span names the pod the call made');
      assert.equal(run.call.status.code, STATUS_CODE.UNSET);
      // The bridge plugin's span sits under its network list's ADD, which names the pod.
      const bridge = named(run.below, 'CNI ADD bridge');
      const add = named(run.below, 'CNI ADD', (x) => x.spanId === bridge.parentSpanId);
      assert.equal(add.attributes['sandlot.pod_sandbox.id'], podId);
      assert.equal(add.attributes['k8s.pod.name'], podName);
      assert.equal(bridge.attributes['sandlot.pod_sandbox.id'], podId);
      const infra = named(run.below, `${handler} create`);
      assert.equal(infra.attributes['container.id'], podId, 'the infra container is the pod');
      assert.equal(infra.attributes['sandlot.runtime_handler'], handler);
      assert.equal(infra.attributes['k8s.pod.name'], podName, 'the call attributes reach the process spans');

      // CreateContainer: the container under conmon, naming container, pod and image.
      const create = await callTree('CreateContainer', (s) => s.attributes['sandlot.pod_sandbox.id'] === podId, ['conmon create']);
      assert.equal(create.call.attributes['k8s.container.name'], 'app');
      assert.equal(create.call.attributes['container.id'], ctrId, 'the span names the container the call made');
      const ctr = named(create.below, 'conmon create');
      assert.equal(ctr.attributes['container.id'], ctrId);
      assert.equal(ctr.attributes['sandlot.runtime_handler'], handler);
      assert.equal(ctr.attributes['container.image.name'], 'docker.io/library/busybox:latest');
      assert.equal(ctr.attributes['process.exit.code'], 0);

      // StartContainer: runc's exec-fifo handshake in the daemon (its own span, no process);
      // a runsc subcontainer is started by its proxy (`runsc start`).
      const startSpan = handler === 'runc' ? 'runc start (exec fifo)' : 'runsc start';
      const start = await callTree('StartContainer', (s) => s.attributes['container.id'] === ctrId, [startSpan]);
      const st = named(start.below, startSpan);
      assert.equal(st.attributes['container.id'], ctrId);
      assert.equal(st.attributes['sandlot.runtime_handler'], handler);

      // Every line the daemon logged inside the call carries its trace.
      const line = await until('the RunPodSandbox "call done" line', () =>
        logLines().find((l) => l.rpc === 'RunPodSandbox' && l.msg === 'call done' && l.trace_id === run.call.traceId),
      );
      assert.equal(line.span_id, run.call.spanId);

      await env.d.runtime('StopPodSandbox', { pod_sandbox_id: podId }, 120_000);
      await env.d.runtime('RemovePodSandbox', { pod_sandbox_id: podId }, 120_000);
      const del = await callTree('StopPodSandbox', (s) => s.attributes['sandlot.pod_sandbox.id'] === podId, ['CNI DEL', 'CNI DEL bridge']);
      assert.equal(named(del.below, 'CNI DEL').attributes['sandlot.pod_sandbox.id'], podId);
    },
  );
}

test('a NOT_FOUND call is no server error (status unset); an INTERNAL one is', { timeout: 180_000 }, async () => {
  const missing = 'f'.repeat(64);
  const nf = await failure(env.d.runtime('ContainerStatus', { container_id: missing }));
  assert.equal(nf.code, Status.NOT_FOUND, nf.details);
  const notFound = await receiver.waitFor('the NOT_FOUND ContainerStatus span', (spans) =>
    serverSpan(spans, 'ContainerStatus', (s) => s.attributes['container.id'] === missing),
  );
  assert.equal(notFound.attributes['rpc.grpc.status_code'], Status.NOT_FOUND);
  assert.equal(notFound.status.code, STATUS_CODE.UNSET);

  // The runtime's create fails (no such executable in the image): the server failed.
  const podId = await env.runPod('traced-internal', {}, 'runc');
  const bad = await failure(env.createContainer(podId, 'bad', { command: ['/no/such/program'] }));
  assert.equal(bad.code, Status.INTERNAL, bad.details);
  const internal = await receiver.waitFor('the INTERNAL CreateContainer span', (spans) =>
    serverSpan(spans, 'CreateContainer', (s) => s.attributes['sandlot.pod_sandbox.id'] === podId && s.attributes['rpc.grpc.status_code'] === Status.INTERNAL),
  );
  assert.equal(internal.status.code, STATUS_CODE.ERROR);
  assert.match(internal.status.message, /no\/such\/program|no such file/);
  await env.d.runtime('RemovePodSandbox', { pod_sandbox_id: podId }, 120_000);
});

for (const handler of ['runc', 'runsc']) {
  test(`${handler}: sandlot run from the real CLI is one trace: its calls are client spans the daemon continues`, { timeout: 300_000 }, async () => {
    const logRoot = path.join(work, 'logs');
    const name = `traced-cli-${handler}`;
    const res = await cliRun(
      ['run', '--socket', env.d.socket, '--runtime', handler, '--rm', '--name', name, '--log-root', logRoot, 'busybox', 'echo', 'traced'],
      undefined,
      { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' },
    );
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, 'traced\n');

    // The daemon's RunPodSandbox of this run, and the CLI's root span of its trace.
    const rps = await receiver.waitFor(`the RunPodSandbox of pod ${name}`, (spans) =>
      serverSpan(spans, 'RunPodSandbox', (s) => s.attributes['k8s.pod.name'] === name),
    );
    const root = await receiver.waitFor('the CLI root span', (spans) => spans.find((s) => s.traceId === rps.traceId && s.name === 'sandlot run'));
    assert.equal(root.parentSpanId, '', 'the run is the root of its trace');
    assert.equal(root.service, 'sandlot-cli');
    const methods = ['RunPodSandbox', 'CreateContainer', 'StartContainer', 'StopPodSandbox', 'RemovePodSandbox'];
    const inTrace = await receiver.waitFor(`daemon spans of ${methods.join(', ')} in the CLI's trace`, (spans) => {
      const server = spans.filter((s) => s.traceId === root.traceId && s.kind === SPAN_KIND.SERVER && s.service === 'sandlot');
      return methods.every((m) => server.some((s) => s.name === `runtime.v1.RuntimeService/${m}`)) ? server : undefined;
    });
    for (const m of methods) {
      const server = inTrace.find((s) => s.name === `runtime.v1.RuntimeService/${m}`)!;
      const client = receiver.spans.find((s) => s.spanId === server.parentSpanId);
      assert.ok(client, `${m}: the daemon's span has the CLI's client span as parent`);
      assert.equal(client.kind, SPAN_KIND.CLIENT);
      assert.equal(client.service, 'sandlot-cli');
    }
    // The daemon's work is in the same trace too, on the handler asked for.
    const below = receiver.descendants(root);
    assert.ok(
      below.some((s) => s.name === 'conmon create' && s.attributes['sandlot.runtime_handler'] === handler),
      `conmon create (${handler}) lies in the CLI trace`,
    );
    assert.ok(
      below.some((s) => s.name === 'CNI ADD'),
      'CNI ADD lies in the CLI trace',
    );
  });
}

test('an OTLP endpoint that refuses is logged as an export failure; the daemon keeps serving', { timeout: 180_000 }, async () => {
  const port = await freePort(); // nothing listens on it
  const d = await startDaemon({ config: { otlp_endpoint: `http://127.0.0.1:${port}` } });
  afters.push(() => d.cleanup());
  const failed = await until(
    'an export failure line',
    async () => {
      await d.runtime('Version', {});
      return d.stderr
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.msg === 'exporting spans failed: they are dropped');
    },
    90_000,
  );
  assert.equal(failed.level, 'warn');
  assert.equal(failed.endpoint, `http://127.0.0.1:${port}`);
  assert.equal((await d.runtime('Version', {})).runtime_name, 'sandlot');
});
