// Every CRI call is one server span with the rpc.* attributes and its status code, and
// continues a trace context the client sent in its metadata.
import { Metadata } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { propagation, SpanStatusCode } from '@opentelemetry/api';
import { core, tracing } from '@opentelemetry/sdk-node';
import { pino } from 'pino';
import { CriClient } from '../../../src/cli/client.js';
import { CriServer } from '../../../src/cri/server.js';
import { runtimeInfoHandlers } from '../../../src/cri/runtime-info.js';
import { defaultConfig } from '../../../src/config/defaults.js';
import { Metrics } from '../../../src/observe/metrics.js';

test('each CRI call becomes a server span named after the method, carrying the parent from traceparent', async (t) => {
  const exporter = new tracing.InMemorySpanExporter();
  const provider = new tracing.BasicTracerProvider({ spanProcessors: [new tracing.SimpleSpanProcessor(exporter)] });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-trace-'));
  const socketPath = path.join(dir, 's.sock');
  const config = defaultConfig();
  const server = await CriServer.listen({
    socketPath,
    runtimeHandlers: runtimeInfoHandlers({
      version: 'test',
      config,
      configFile: undefined,
      networkStatus: () => Promise.resolve({ ready: true, reason: '', message: '' }),
      runtimeHandlers: () => [],
      setPodCidr: () => undefined,
    }),
    imageHandlers: {},
    log: pino({ level: 'silent' }),
    metrics: new Metrics({ version: 'test' }),
    tracer: provider.getTracer('test'),
  });
  const client = new CriClient(socketPath);
  t.after(async () => {
    client.close();
    await server.shutdown(1000);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  await client.runtimeCall('Version', {});
  await client.imageCall('PullImage', {}).catch(() => undefined);
  // A call carrying W3C trace context joins that trace. The daemon's NodeSDK registers
  // this propagator globally; here the test does.
  propagation.setGlobalPropagator(new core.W3CTraceContextPropagator());
  t.after(() => propagation.disable());
  const md = new Metadata();
  md.set('traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  await new Promise<void>((resolve, reject) => client.runtime.Status({}, md, (e) => (e ? reject(e) : resolve())));

  const spans = exporter.getFinishedSpans();
  const version = spans.find((s) => s.name === 'runtime.v1.RuntimeService/Version');
  assert.ok(version, 'a span for Version');
  assert.equal(version.attributes['rpc.system'], 'grpc');
  assert.equal(version.attributes['rpc.method'], 'Version');
  assert.equal(version.attributes['rpc.grpc.status_code'], 0);
  const pull = spans.find((s) => s.name === 'runtime.v1.ImageService/PullImage');
  assert.ok(pull, 'a span for PullImage');
  assert.equal(pull.attributes['rpc.grpc.status_code'], 12, 'UNIMPLEMENTED recorded');
  // OpenTelemetry's gRPC server conventions: UNIMPLEMENTED is a server error; OK leaves the status unset.
  assert.equal(pull.status.code, SpanStatusCode.ERROR);
  assert.equal(version.status.code, SpanStatusCode.UNSET);
  const st = spans.find((s) => s.name === 'runtime.v1.RuntimeService/Status');
  assert.ok(st, 'a span for Status');
  assert.equal(st.spanContext().traceId, '0af7651916cd43dd8448eb211c80319c');
  assert.equal(st.parentSpanContext?.spanId ?? (st as unknown as { parentSpanId?: string }).parentSpanId, 'b7ad6b7169203331');
});
