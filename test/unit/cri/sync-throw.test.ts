// A handler need not be `async` to have its errors answered as gRPC statuses: the
// instrumentation (src/cri/instrument.ts) calls unary and streaming handlers so that a
// synchronous throw becomes the status of its typed error, like a rejection does. The
// handlers that await nothing (runtime-info, image status, port-forward) answer through
// answer() and so reject rather than throw when called directly.
import { status, type ServiceError } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { trace } from '@opentelemetry/api';
import { CriClient } from '../../../src/cli/client.js';
import type { CallContext, HandlerSet } from '../../../src/cri/handler-types.js';
import { imageHandlers } from '../../../src/cri/image-handlers.js';
import { decodedRequest } from '../../../src/cri/proto.js';
import { runtimeInfoHandlers } from '../../../src/cri/runtime-info.js';
import { CriServer } from '../../../src/cri/server.js';
import { defaultConfig } from '../../../src/config/defaults.js';
import { InvalidArgumentError, NotFoundError } from '../../../src/errors.js';
import type { ImageService } from '../../../src/image/image-service.js';
import { Metrics } from '../../../src/observe/metrics.js';

const log = pino({ level: 'silent' });

function runtimeInfo(cidrs: string[]): HandlerSet {
  return runtimeInfoHandlers({
    version: 'test',
    config: defaultConfig(),
    configFile: undefined,
    networkStatus: () => Promise.resolve({ ready: true, reason: '', message: '' }),
    runtimeHandlers: () => [],
    setPodCidr: (cidr) => void cidrs.push(cidr),
  });
}

/** Image handlers over no image store: the requests here fail validation before any use of it. */
function imagesUnused(): HandlerSet {
  const unused = new Proxy(
    {},
    {
      get: (_t, prop) => () => {
        throw new Error(`the image store was used (${String(prop)}) by a request that should have failed validation`);
      },
    },
  ) as ImageService;
  return imageHandlers(unused);
}

function isStatus(code: status, details: RegExp) {
  return (e: unknown): boolean => {
    const se = e as Partial<ServiceError>;
    assert.equal(se.code, code, `gRPC status of ${String(se.details)}`);
    assert.match(String(se.details), details);
    return true;
  };
}

test("a handler that throws synchronously is answered with its typed error's status, unary and streaming", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-syncthrow-'));
  const socketPath = path.join(dir, 's.sock');
  const cidrs: string[] = [];
  const real = runtimeInfo(cidrs);
  const runtimeHandlers: HandlerSet = {
    unary: {
      ...real.unary,
      // Plain functions that throw before returning anything.
      Version: () => {
        throw new InvalidArgumentError('version: field "version" value "x" is not supported');
      },
      ContainerStatus: (req) => {
        throw new NotFoundError(`container "${req.container_id}" not found`);
      },
    },
    stream: {
      GetContainerEvents: () => {
        throw new InvalidArgumentError('events: no filter allowed');
      },
    },
  };
  const server = await CriServer.listen({
    socketPath,
    runtimeHandlers,
    imageHandlers: imagesUnused(),
    log,
    metrics: new Metrics({ version: 'test' }),
    tracer: trace.getTracer('test'),
  });
  const client = new CriClient(socketPath);
  t.after(async () => {
    client.close();
    await server.shutdown(1000);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  await assert.rejects(client.runtimeCall('Version', {}), isStatus(status.INVALID_ARGUMENT, /field "version" value "x"/));
  await assert.rejects(client.runtimeCall('ContainerStatus', { container_id: 'abc' }), isStatus(status.NOT_FOUND, /container "abc" not found/));

  const streamErr = await new Promise<unknown>((resolve) => {
    const call = client.runtimeStream('GetContainerEvents', {});
    call.on('data', () => resolve(new Error('the stream sent data')));
    call.on('error', resolve);
    call.on('end', () => resolve(new Error('the stream ended without an error')));
  });
  isStatus(status.INVALID_ARGUMENT, /no filter allowed/)(streamErr);

  // The real handlers that await nothing (they are no longer `async`).
  await assert.rejects(
    client.runtimeCall('UpdateRuntimeConfig', { runtime_config: { network_config: { pod_cidr: 'not-a-cidr' } } }),
    isStatus(status.INVALID_ARGUMENT, /runtime_config\.network_config\.pod_cidr "not-a-cidr"/),
  );
  assert.deepEqual(cidrs, [], 'an invalid pod CIDR is not applied');
  await assert.rejects(client.imageCall('ImageStatus', {}), isStatus(status.INVALID_ARGUMENT, /image\.image/));
  await assert.rejects(
    client.imageCall('ListImages', { filter: { image: { image: 'UPPER CASE!' } } }),
    isStatus(status.INVALID_ARGUMENT, /filter\.image\.image/),
  );

  // The server still answers after those: a valid call goes through.
  await client.runtimeCall('UpdateRuntimeConfig', { runtime_config: { network_config: { pod_cidr: '10.88.0.0/16' } } });
  assert.deepEqual(cidrs, ['10.88.0.0/16']);
});

test('handlers that await nothing reject rather than throw when called directly', async () => {
  const ctx: CallContext = { log, signal: new AbortController().signal };
  const info = runtimeInfo([]);
  const update = info.unary?.UpdateRuntimeConfig;
  assert.ok(update);
  // assert.rejects on the returned promise: a synchronous throw would fail this test instead.
  await assert.rejects(
    update(decodedRequest('UpdateRuntimeConfig', { runtime_config: { network_config: { pod_cidr: '10.0.0.0/8,bad' } } }), ctx),
    InvalidArgumentError,
  );
  const imageStatus = imagesUnused().unary?.ImageStatus;
  assert.ok(imageStatus);
  await assert.rejects(imageStatus(decodedRequest('ImageStatus', {}), ctx), InvalidArgumentError);
  const version = info.unary?.Version;
  assert.ok(version);
  assert.equal((await version(decodedRequest('Version', {}), ctx)).runtime_name, 'sandlot');
});
