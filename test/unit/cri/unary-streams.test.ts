// The lean path of unary calls (src/cri/unary-streams.ts): the same request gets the
// same bytes back (headers, message, trailers) as from grpc-js's own path, for answers
// and for every refusal of the gRPC protocol; deadlines, cancellation and the drain of a
// shutdown reach the handler as before; grpc-js and grpc-go clients are served by it.
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { trace } from '@opentelemetry/api';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import zlib from 'node:zlib';
import { pino } from 'pino';
import protobuf from 'protobufjs';
import { CriClient } from '../../../src/cli/client.js';
import { answer, type HandlerSet } from '../../../src/cri/handler-types.js';
import { protoPath } from '../../../src/cri/proto.js';
import { CriServer, MAX_MESSAGE_BYTES } from '../../../src/cri/server.js';
import { InvalidArgumentError, NotFoundError } from '../../../src/errors.js';
import { Metrics } from '../../../src/observe/metrics.js';
import { buildGo } from '../../helpers/go-build.js';
import { waitFor } from '../../helpers/wait.js';

const REPO_ROOT = path.resolve(import.meta.dirname, '../../..');
const VERSION = '/runtime.v1.RuntimeService/Version';
const root = protobuf.loadSync(protoPath());
const VersionRequest = root.lookupType('runtime.v1.VersionRequest');

/** What the handlers saw, for the tests that look at the handler's side of a call. */
interface Seen {
  aborted: number;
  /** Resolves the ListContainers call held open (drain test). */
  release?: () => void;
}

function handlers(seen: Seen): HandlerSet {
  return {
    unary: {
      Version: (req) =>
        answer(() => {
          if (req.version === 'bad') throw new InvalidArgumentError(`version "${req.version}" is not one sandlot speaks`);
          if (req.version === 'boom') throw new Error('an unexpected failure');
          if (req.version === 'unicode') throw new NotFoundError('pod "ünïcødé 🚀 %20" not found');
          return { version: '0.1.0', runtime_name: 'sandlot', runtime_version: `echo:${req.version}`, runtime_api_version: 'v1' };
        }),
      PodSandboxStatus: (req) => Promise.reject(new NotFoundError(`pod sandbox "${req.pod_sandbox_id}" not found`)),
      // Answers when its signal aborts (a deadline, a cancel): with the reason it saw.
      Status: (_req, ctx) =>
        new Promise((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () => {
            seen.aborted += 1;
            reject(new InvalidArgumentError('aborted'));
          });
        }),
      ListContainers: () =>
        new Promise((resolve) => {
          seen.release = () => resolve({ containers: [] });
        }),
    },
  };
}

async function startServer(
  t: TestContext,
  unaryPath: 'lean' | 'grpc-js',
  seen: Seen = { aborted: 0 },
): Promise<{ server: CriServer; socketPath: string; seen: Seen }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandlot-unary-'));
  const socketPath = path.join(dir, 's.sock');
  const server = await CriServer.listen({
    socketPath,
    runtimeHandlers: handlers(seen),
    imageHandlers: {},
    log: pino({ level: 'silent' }),
    metrics: new Metrics({ version: 'test' }),
    tracer: trace.getTracer('test'),
    unaryPath,
  });
  t.after(async () => {
    await server.shutdown(1000);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { server, socketPath, seen };
}

/** A gRPC frame: compressed flag, length, message. */
function frame(message: Buffer, compressed = false): Buffer {
  const head = Buffer.alloc(5);
  head[0] = compressed ? 1 : 0;
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

function versionRequest(version: string): Buffer {
  return Buffer.from(VersionRequest.encode(VersionRequest.create({ version })).finish());
}

interface RawRequest {
  path?: string;
  headers?: http2.OutgoingHttpHeaders;
  /** Written in order, then the stream is ended. */
  body: Buffer[];
}

interface RawAnswer {
  headers: Record<string, unknown>;
  data: string;
  trailers: Record<string, unknown>;
  rstCode: number;
}

/** Everything that came back for one request on a fresh HTTP/2 connection, minus the date. */
async function rawCall(socketPath: string, req: RawRequest): Promise<RawAnswer> {
  const session = http2.connect('http://localhost', { createConnection: () => net.connect(socketPath) });
  session.on('error', () => undefined);
  try {
    return await new Promise<RawAnswer>((resolve, reject) => {
      const stream = session.request({
        ':method': 'POST',
        ':path': req.path ?? VERSION,
        'content-type': 'application/grpc',
        te: 'trailers',
        ...req.headers,
      });
      const out: RawAnswer = { headers: {}, data: '', trailers: {}, rstCode: 0 };
      const chunks: Buffer[] = [];
      const clean = (h: http2.IncomingHttpHeaders): Record<string, unknown> => {
        const rest: Record<string, unknown> = { ...h };
        delete rest.date;
        return rest;
      };
      stream.on('response', (h) => (out.headers = clean(h)));
      stream.on('trailers', (h: http2.IncomingHttpHeaders) => (out.trailers = clean(h)));
      stream.on('data', (d: Buffer) => chunks.push(d));
      stream.on('error', () => undefined);
      stream.on('close', () => {
        out.data = Buffer.concat(chunks).toString('hex');
        out.rstCode = stream.rstCode ?? 0;
        resolve(out);
      });
      for (const b of req.body) stream.write(b);
      stream.end();
      stream.setTimeout(10_000, () => reject(new Error('no answer in 10 s')));
    });
  } finally {
    session.close();
  }
}

function grpcStatus(a: RawAnswer): { code: unknown; message: unknown } {
  const h = a.trailers['grpc-status'] !== undefined ? a.trailers : a.headers;
  return { code: Number(h['grpc-status']), message: decodeURIComponent(String(h['grpc-message'])) };
}

const CASES: Array<{ name: string; req: RawRequest; code: number; message?: RegExp }> = [
  { name: 'an answer', req: { body: [frame(versionRequest('v9'))] }, code: status.OK },
  { name: 'a gzip request', req: { headers: { 'grpc-encoding': 'gzip' }, body: [frame(zlib.gzipSync(versionRequest('gz')), true)] }, code: status.OK },
  { name: 'a deflate request', req: { headers: { 'grpc-encoding': 'deflate' }, body: [frame(zlib.deflateSync(versionRequest('df')), true)] }, code: status.OK },
  {
    name: 'a gzip-encoded call whose message is not compressed',
    req: { headers: { 'grpc-encoding': 'gzip' }, body: [frame(versionRequest('plain'))] },
    code: status.OK,
  },
  {
    name: 'a message in an encoding the server lacks',
    req: { headers: { 'grpc-encoding': 'snappy' }, body: [frame(versionRequest('x'), true)] },
    code: status.UNIMPLEMENTED,
    message: /unsupported encoding "snappy"/,
  },
  {
    name: 'a corrupt gzip message',
    req: { headers: { 'grpc-encoding': 'gzip' }, body: [frame(Buffer.from('not gzip at all'), true)] },
    code: status.INTERNAL,
    message: /Failed to decompress/,
  },
  {
    name: 'a gzip message that inflates beyond the limit',
    req: { headers: { 'grpc-encoding': 'gzip' }, body: [frame(zlib.gzipSync(Buffer.alloc(MAX_MESSAGE_BYTES + 1)), true)] },
    code: status.RESOURCE_EXHAUSTED,
    message: /decompresses to a size larger than 16777216/,
  },
  {
    name: 'a message longer than the limit (refused on its length prefix)',
    req: { body: [Buffer.from([0, 0x01, 0x00, 0x00, 0x01])] },
    code: status.RESOURCE_EXHAUSTED,
    message: /larger than max \(16777217 vs 16777216\)/,
  },
  { name: 'no message', req: { body: [] }, code: status.UNIMPLEMENTED, message: /no request message/ },
  {
    name: 'two messages',
    req: { body: [frame(versionRequest('a')), frame(versionRequest('b'))] },
    code: status.UNIMPLEMENTED,
    message: /second request message/,
  },
  {
    name: 'a message split over many writes',
    req: { body: [...frame(versionRequest('split'))].map((b) => Buffer.from([b])) },
    code: status.OK,
  },
  {
    name: 'a malformed grpc-timeout',
    req: { headers: { 'grpc-timeout': 'soon' }, body: [frame(versionRequest('v'))] },
    code: status.INTERNAL,
    message: /Invalid grpc-timeout value "soon"/,
  },
  {
    name: 'a body that is no protobuf',
    req: { body: [frame(Buffer.from([0xff, 0xff, 0xff]))] },
    code: status.INVALID_ARGUMENT,
    message: /not a valid protobuf VersionRequest/,
  },
  { name: 'a refusal naming the value', req: { body: [frame(versionRequest('bad'))] }, code: status.INVALID_ARGUMENT, message: /version "bad"/ },
  { name: 'an unexpected failure', req: { body: [frame(versionRequest('boom'))] }, code: status.INTERNAL, message: /an unexpected failure/ },
  { name: 'a message outside ASCII', req: { body: [frame(versionRequest('unicode'))] }, code: status.NOT_FOUND, message: /ünïcødé 🚀 %20/ },
  {
    name: 'NOT_FOUND of another service method',
    req: { path: '/runtime.v1.RuntimeService/PodSandboxStatus', body: [frame(Buffer.from([0x0a, 0x03, 0x61, 0x62, 0x63]))] },
    code: status.NOT_FOUND,
    message: /pod sandbox "abc" not found/,
  },
  {
    name: 'an unimplemented method',
    req: { path: '/runtime.v1.ImageService/ListImages', body: [frame(Buffer.alloc(0))] },
    code: status.UNIMPLEMENTED,
    message: /ListImages is not implemented/,
  },
  {
    name: 'an unknown method',
    req: { path: '/runtime.v1.RuntimeService/NoSuch', body: [frame(Buffer.alloc(0))] },
    code: status.UNIMPLEMENTED,
    message: /NoSuch/,
  },
];

test('the lean path puts the same bytes on the wire as grpc-js, for answers and for refusals', async (t) => {
  const lean = await startServer(t, 'lean');
  const plain = await startServer(t, 'grpc-js');
  for (const c of CASES) {
    const a = await rawCall(lean.socketPath, c.req);
    const b = await rawCall(plain.socketPath, c.req);
    assert.deepEqual(a, b, c.name);
    const st = grpcStatus(a);
    assert.equal(st.code, c.code, `${c.name}: ${JSON.stringify(a)}`);
    if (c.message) assert.match(String(st.message), c.message, c.name);
  }
  // Not gRPC at all: grpc-js's answer (415) on both.
  const notGrpc: RawRequest = { headers: { 'content-type': 'text/plain' }, body: [Buffer.from('hello')] };
  const a = await rawCall(lean.socketPath, notGrpc);
  assert.deepEqual(a, await rawCall(plain.socketPath, notGrpc));
  assert.equal(a.headers[':status'], 415);
  // The unary calls above went the lean way; the unknown method and the 415 did not.
  assert.equal(lean.server.unaryStreamsTaken, CASES.length - 1);
  assert.equal(plain.server.unaryStreamsTaken, 0);
});

test('a deadline that passes answers DEADLINE_EXCEEDED and aborts the handler; the call ends in the books', async (t) => {
  const { server, socketPath, seen } = await startServer(t, 'lean');
  const a = await rawCall(socketPath, { path: '/runtime.v1.RuntimeService/Status', headers: { 'grpc-timeout': '100m' }, body: [frame(Buffer.alloc(0))] });
  assert.deepEqual(grpcStatus(a), { code: status.DEADLINE_EXCEEDED, message: 'Deadline exceeded' });
  await waitFor('the handler saw its signal abort', () => seen.aborted === 1);
  await waitFor('no call left in flight', () => server.callsInFlight === 0);
});

test('deadlines of calls in flight each pass at their own time, the later one set first; an answered call has none left', async (t) => {
  const { server, socketPath, seen } = await startServer(t, 'lean');
  const started = performance.now();
  const ended: Record<string, number> = {};
  const call = (name: string, timeout: string, body: Buffer, path = '/runtime.v1.RuntimeService/Status') =>
    rawCall(socketPath, { path, headers: { 'grpc-timeout': timeout }, body: [frame(body)] }).then((a) => {
      ended[name] = performance.now() - started;
      return grpcStatus(a);
    });
  const late = call('late', '600m', Buffer.alloc(0));
  await waitFor('the late call reached its handler', () => server.callsInFlight === 1);
  const early = call('early', '100m', Buffer.alloc(0));
  // Answered at once, well before its deadline: nothing of it is left to expire.
  const answered = await call('answered', '50m', versionRequest('v'), '/runtime.v1.RuntimeService/Version');
  assert.equal(answered.code, status.OK);
  const expired = { code: status.DEADLINE_EXCEEDED, message: 'Deadline exceeded' };
  assert.deepEqual(await early, expired);
  assert.deepEqual(await late, expired);
  assert.ok(ended.early < ended.late, `the earlier deadline passed first (${ended.early.toFixed(0)} vs ${ended.late.toFixed(0)} ms)`);
  await waitFor('both handlers saw their signal abort', () => seen.aborted === 2);
  await waitFor('no call left in flight', () => server.callsInFlight === 0);
});

test('a client that cancels aborts the handler', async (t) => {
  const { server, socketPath, seen } = await startServer(t, 'lean');
  const session = http2.connect('http://localhost', { createConnection: () => net.connect(socketPath) });
  t.after(() => session.destroy());
  const stream = session.request({ ':method': 'POST', ':path': '/runtime.v1.RuntimeService/Status', 'content-type': 'application/grpc', te: 'trailers' });
  stream.on('error', () => undefined);
  stream.end(frame(Buffer.alloc(0)));
  await waitFor('the call reached its handler', () => server.callsInFlight === 1);
  stream.close(http2.constants.NGHTTP2_CANCEL);
  await waitFor('the handler saw its signal abort', () => seen.aborted === 1);
  await waitFor('no call left in flight', () => server.callsInFlight === 0);
});

test('a shutdown lets a lean call in flight finish and answer before the connection goes', async (t) => {
  // startServer's own shutdown at the end finds this one done, and does nothing more.
  const { server, socketPath, seen } = await startServer(t, 'lean');
  const client = new CriClient(socketPath);
  t.after(() => client.close());
  const call = client.runtimeCall('ListContainers', {});
  await waitFor('the call reached its handler', () => seen.release !== undefined);
  const down = server.shutdown(5000);
  await sleep(100); // the GOAWAY is out; the call is still in flight
  assert.equal(server.callsInFlight, 1);
  seen.release!();
  assert.deepEqual((await call).containers, []);
  await down;
  assert.equal(server.unaryStreamsTaken, 1);
});

test('a grpc-js client: answers, statuses with their details, deadlines', async (t) => {
  const { server, socketPath } = await startServer(t, 'lean');
  const client = new CriClient(socketPath);
  t.after(() => client.close());
  assert.equal((await client.runtimeCall('Version', { version: 'js' })).runtime_version, 'echo:js');
  await assert.rejects(client.runtimeCall('PodSandboxStatus', { pod_sandbox_id: 'nope' }), (e: ServiceError) => {
    assert.equal(e.code, status.NOT_FOUND);
    assert.equal(e.details, 'pod sandbox "nope" not found');
    return true;
  });
  await assert.rejects(client.runtimeCall('Status', {}, { timeoutMs: 200 }), (e: ServiceError) => e.code === status.DEADLINE_EXCEEDED);
  // Metadata goes through too (a client that sends its own keys is served as any other).
  const md = new Metadata();
  md.set('x-custom', 'value');
  const v = await new Promise<string | undefined>((resolve, reject) =>
    client.runtime.Version({ version: 'md' }, md, (e, r) => (e ? reject(e) : resolve(r?.runtime_version))),
  );
  assert.equal(v, 'echo:md');
  assert.equal(server.unaryStreamsTaken, 4);
});

test('a grpc-go client: answers, gzip requests, statuses with their details, deadlines, unknown methods', async (t) => {
  const bin = buildGo(path.join(REPO_ROOT, 'test/helpers/go-cri-unary'), 'go-cri-unary');
  const { server, socketPath } = await startServer(t, 'lean');
  const out = await new Promise<string>((resolve, reject) =>
    execFile(bin, [socketPath], { timeout: 30_000 }, (e, stdout, stderr) => (e ? reject(new Error(`${e.message}\n${stderr}`)) : resolve(stdout))),
  );
  assert.deepEqual(out.trim().split('\n'), [
    'version OK echo:go',
    'version-gzip OK echo:go-gzip',
    'pod-status NotFound pod sandbox "go-pod" not found',
    'status DeadlineExceeded',
    'unknown Unimplemented',
  ]);
  // Version, the gzip Version, PodSandboxStatus and Status; the unknown method is grpc-js's.
  assert.equal(server.unaryStreamsTaken, 4);
});
