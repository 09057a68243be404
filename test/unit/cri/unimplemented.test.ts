import { Metadata, status, type ServiceDefinition, type ServiceError } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import { trace } from '@opentelemetry/api';
import { CriClient } from '../../../src/cli/client.js';
import { loadCriServices } from '../../../src/cri/proto.js';
import { CriServer } from '../../../src/cri/server.js';
import { Metrics } from '../../../src/observe/metrics.js';

interface WireMethod {
  name: string;
  path: string;
  responseStream: boolean;
  serialize: (req: object) => Buffer;
  deserialize: (buf: Buffer) => unknown;
}

/** The methods of a loaded service definition, each with the wire functions a client call needs. */
function methodsOf(def: ServiceDefinition): WireMethod[] {
  return Object.entries(def).map(([name, m]) => ({
    name,
    path: m.path,
    responseStream: m.responseStream,
    serialize: (req: object) => m.requestSerialize(req),
    deserialize: (buf: Buffer): unknown => m.responseDeserialize(buf),
  }));
}

test('every RPC of both services is registered and answers UNIMPLEMENTED when it has no handler', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-unimpl-'));
  const socketPath = path.join(dir, 's.sock');
  const server = await CriServer.listen({
    socketPath,
    runtimeHandlers: {},
    imageHandlers: {},
    log: pino({ level: 'silent' }),
    metrics: new Metrics({ version: 'test' }),
    tracer: trace.getTracer('test'),
  });
  const client = new CriClient(socketPath);
  t.after(async () => {
    client.close();
    await server.shutdown(1000);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const services = loadCriServices();
  let count = 0;
  for (const [serviceName, def] of [
    ['RuntimeService', services.RuntimeService],
    ['ImageService', services.ImageService],
  ] as const) {
    const stub = serviceName === 'RuntimeService' ? client.runtime : client.image;
    for (const m of methodsOf(def)) {
      const method = m.name;
      count += 1;
      const err = await new Promise<{ code: number; details: string }>((resolve) => {
        if (m.responseStream) {
          const call = stub.makeServerStreamRequest(m.path, m.serialize, m.deserialize, {}, new Metadata());
          call.on('data', () => resolve({ code: -1, details: 'got data' }));
          call.on('error', (e: ServiceError) => resolve(e));
          call.on('end', () => resolve({ code: -2, details: 'ended' }));
        } else {
          stub.makeUnaryRequest(m.path, m.serialize, m.deserialize, {}, (e: ServiceError | null) => resolve(e ?? { code: 0, details: 'ok' }));
        }
      });
      assert.equal(err.code, status.UNIMPLEMENTED, `${serviceName}/${method}`);
      assert.equal(err.details, `sandlot: ${serviceName}/${method} is not implemented yet`);
    }
  }
  // The upstream contract has 41 RPCs (35 runtime, 6 image).
  assert.equal(count, 41);
});
