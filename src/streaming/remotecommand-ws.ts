// remotecommand over WebSocket (kubelet remotecommand/websocket.go): channels 0 stdin,
// 1 stdout, 2 stderr, 3 error, 4 resize, all on one connection. The status goes out on
// channel 3, then the server closes with 1000.
import { PassThrough } from 'node:stream';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { ExecStreams, StreamingBackend } from './backend.js';
import { JsonObjectSplitter, parseTerminalSize, ResizeQueue } from './resize-queue.js';
import { runRemoteCommand, type RemoteCommand } from './run-command.js';
import { encodeStatus } from './status.js';
import { channelWriter, CLOSE_SIGNAL_CHANNEL, decodeChannelMessage, sendChannel, type ChannelProtocol } from './ws-channels.js';

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const RESIZE = 4;

export interface ServeWsRemoteCommandOptions {
  ws: WebSocket;
  protocol: ChannelProtocol;
  command: RemoteCommand;
  backend: StreamingBackend;
  log: Logger;
}

export async function serveWsRemoteCommand(opts: ServeWsRemoteCommandOptions): Promise<void> {
  const { ws, protocol, command, log } = opts;
  const req = command.request;
  const controller = new AbortController();
  let done = false;
  const stdin = req.stdin ? new PassThrough() : undefined;
  const resize = req.tty ? new ResizeQueue() : undefined;
  const splitter = new JsonObjectSplitter();

  ws.on('message', (raw: Buffer | ArrayBuffer | Buffer[]) => {
    const msg = decodeChannelMessage(protocol, toBuffer(raw));
    if (!msg) return;
    switch (msg.channel) {
      case STDIN:
        if (stdin && !stdin.writableEnded && !stdin.write(msg.data)) {
          ws.pause();
          stdin.once('drain', () => ws.resume());
        }
        return;
      case RESIZE:
        for (const obj of splitter.push(msg.data.toString('utf8'))) {
          const size = parseTerminalSize(obj);
          if (size) resize?.push(size);
        }
        return;
      case CLOSE_SIGNAL_CHANNEL:
        if (protocol.closeSignal && msg.data[0] === STDIN) stdin?.end();
        return;
      default:
        log.debug({ channel: msg.channel }, 'remotecommand: message on an unknown websocket channel');
    }
  });
  ws.on('error', (err) => log.debug({ err }, 'remotecommand websocket error'));
  ws.on('close', () => {
    if (!done) controller.abort();
    resize?.close();
    stdin?.destroy();
  });

  const io: ExecStreams = { tty: req.tty };
  if (stdin) io.stdin = stdin;
  if (req.stdout) io.stdout = channelWriter(ws, protocol, STDOUT);
  if (req.stderr && !req.tty) io.stderr = channelWriter(ws, protocol, STDERR);
  if (resize) io.resize = resize;
  for (const w of [io.stdout, io.stderr]) w?.on('error', (err) => log.debug({ err }, 'remotecommand websocket channel error'));

  const status = await runRemoteCommand({ command, backend: opts.backend, io, signal: controller.signal, log });
  done = true;
  resize?.close();
  if (status === undefined) {
    ws.terminate();
    return;
  }
  const bytes = encodeStatus(status, protocol.jsonStatus);
  try {
    if (bytes) await sendChannel(ws, protocol, ERROR, bytes);
    ws.close(1000);
  } catch (err: unknown) {
    log.debug({ err }, 'remotecommand: reporting status failed');
    ws.terminate();
  }
}

export function toBuffer(raw: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(raw)) return raw;
  if (Array.isArray(raw)) return Buffer.concat(raw);
  return Buffer.from(raw);
}
