// remotecommand and portforward over WebSocket, with the `ws` package as the client.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { processGone, startEchoServer, startServer, waitFor } from './harness.js';
import { streamStatus } from './go-client.js';

interface Session {
  ws: WebSocket;
  /** Bytes per channel (base64 decoded for base64 protocols). */
  channels: Map<number, Buffer[]>;
  closed: Promise<number>;
  protocol: string;
}

function text(s: Session, channel: number): string {
  return Buffer.concat(s.channels.get(channel) ?? []).toString();
}

async function connect(url: string, protocols: string[]): Promise<Session> {
  const ws = new WebSocket(url.replace(/^http/, 'ws'), protocols);
  const channels = new Map<number, Buffer[]>();
  const base64 = () => ws.protocol.includes('base64');
  ws.on('message', (raw: Buffer, isBinary: boolean) => {
    let channel: number;
    let data: Buffer;
    if (base64()) {
      assert.equal(isBinary, false, 'base64 protocols send text frames');
      channel = raw[0] - 48;
      data = Buffer.from(raw.subarray(1).toString(), 'base64');
    } else {
      channel = raw[0]!;
      data = raw.subarray(1);
    }
    if (!channels.has(channel)) channels.set(channel, []);
    channels.get(channel)!.push(data);
  });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, channels, closed, protocol: ws.protocol };
}

function send(s: Session, channel: number, data: string | Buffer): void {
  const buf = Buffer.from(data);
  if (s.protocol.includes('base64')) s.ws.send(String.fromCharCode(48 + channel) + buf.toString('base64'));
  else s.ws.send(Buffer.concat([Buffer.from([channel]), buf]));
}

const exec = (cmd: string[], extra: Partial<{ tty: boolean; stdin: boolean; stderr: boolean }> = {}) => ({
  containerId: 'host',
  cmd,
  tty: false,
  stdin: false,
  stdout: true,
  stderr: true,
  ...extra,
});

test('exec over v4.channel.k8s.io: stdout, stderr and a Status with the exit code', async (t) => {
  const { server } = await startServer(t);
  const s = await connect(server.getExecUrl(exec(['sh', '-c', 'echo out; echo err >&2; exit 4'])), ['v4.channel.k8s.io']);
  assert.equal(s.protocol, 'v4.channel.k8s.io');
  assert.equal(await s.closed, 1000);
  assert.equal(text(s, 1), 'out\n');
  assert.equal(text(s, 2), 'err\n');
  const status = streamStatus(text(s, 3));
  assert.equal(status.reason, 'NonZeroExitCode');
  assert.deepEqual(status.details?.causes, [{ reason: 'ExitCode', message: '4' }]);
});

test('exec over v4.base64.channel.k8s.io and base64.channel.k8s.io uses base64 text frames', async (t) => {
  const { server } = await startServer(t);
  const v4 = await connect(server.getExecUrl(exec(['echo', 'b64'])), ['v4.base64.channel.k8s.io']);
  await v4.closed;
  assert.equal(text(v4, 1), 'b64\n');
  assert.equal(streamStatus(text(v4, 3)).status, 'Success');
  const v1 = await connect(server.getExecUrl(exec(['sh', '-c', 'exit 2'])), ['base64.channel.k8s.io']);
  await v1.closed;
  assert.match(text(v1, 3), /non-zero exit code.*2/);
});

test('v5.channel.k8s.io: the close signal on stdin is EOF for cat', async (t) => {
  const { server } = await startServer(t);
  const s = await connect(server.getExecUrl(exec(['cat'], { stdin: true })), ['v5.channel.k8s.io', 'v4.channel.k8s.io']);
  assert.equal(s.protocol, 'v5.channel.k8s.io');
  send(s, 0, 'through cat\n');
  s.ws.send(Buffer.from([255, 0]));
  assert.equal(await s.closed, 1000);
  assert.equal(text(s, 1), 'through cat\n');
  assert.equal(streamStatus(text(s, 3)).status, 'Success');
});

test('a tty exec follows each resize on channel 4', async (t) => {
  const { server } = await startServer(t);
  // Prints the first size, then waits for it to change and prints the new one.
  const script = 'while [ "$(stty size)" = "0 0" ]; do sleep 0.05; done; stty size; ' + 'while [ "$(stty size)" = "24 80" ]; do sleep 0.05; done; stty size';
  const s = await connect(server.getExecUrl(exec(['sh', '-c', script], { tty: true, stderr: false })), ['v4.channel.k8s.io']);
  send(s, 4, JSON.stringify({ Width: 80, Height: 24 }));
  await waitFor('the first size', () => text(s, 1).includes('24 80'));
  send(s, 4, JSON.stringify({ Width: 132, Height: 50 }));
  await s.closed;
  assert.match(text(s, 1), /24 80[\s\S]*50 132/);
});

test('a WebSocket client that disconnects mid-stream gets its process killed', async (t) => {
  const { server, backend } = await startServer(t);
  const s = await connect(server.getExecUrl(exec(['yes'])), ['v4.channel.k8s.io']);
  await waitFor('some output', () => (s.channels.get(1)?.length ?? 0) > 0);
  s.ws.terminate();
  const pid = backend.execPids[0];
  await waitFor('the exec process to die', () => processGone(pid));
  await waitFor('the session to end', () => server.activeSessions === 0);
});

test('a WebSocket offering only unknown subprotocols is refused and runs nothing', async (t) => {
  const { server, backend } = await startServer(t);
  await assert.rejects(connect(server.getExecUrl(exec(['true'])), ['v9.channel.k8s.io']), /Unexpected server response: 400/);
  await assert.rejects(connect(`${server.baseUrl}/exec/forged`, ['v4.channel.k8s.io']), /Unexpected server response: 404/);
  assert.equal(backend.execCount, 0);
});

test('port-forward over WebSocket: two ports, each channel opened with its port', async (t) => {
  const { server } = await startServer(t);
  const a = await startEchoServer(t, 'A');
  const b = await startEchoServer(t, 'B');
  const s = await connect(server.getPortForwardUrl({ podSandboxId: 'pod1', ports: [a, b] }), ['v5.channel.k8s.io']);
  const le = (p: number) => {
    const buf = Buffer.alloc(2);
    buf.writeUInt16LE(p, 0);
    return buf;
  };
  await waitFor('the port prefixes', () => [0, 1, 2, 3].every((c) => s.channels.has(c)));
  assert.deepEqual(s.channels.get(0)![0], le(a));
  assert.deepEqual(s.channels.get(1)![0], le(a));
  assert.deepEqual(s.channels.get(2)![0], le(b));
  assert.deepEqual(s.channels.get(3)![0], le(b));
  send(s, 0, 'to a');
  send(s, 2, 'to b');
  // v5 close signal: the client is done writing on each data channel.
  s.ws.send(Buffer.from([255, 0]));
  s.ws.send(Buffer.from([255, 2]));
  assert.equal(await s.closed, 1000);
  assert.equal(Buffer.concat(s.channels.get(0)!.slice(1)).toString(), 'A:to a');
  assert.equal(Buffer.concat(s.channels.get(2)!.slice(1)).toString(), 'B:to b');
  assert.equal(s.channels.get(1)!.length, 1, 'no error for port a');
});
