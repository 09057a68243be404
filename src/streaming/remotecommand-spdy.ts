// remotecommand over SPDY (kubelet's pkg/kubelet/cri/streaming/remotecommand/httpstream.go):
// after the upgrade the client opens one stream per stdio pipe, named by the
// `streamType` header — error, stdin, stdout, stderr and (v3+, with a tty) resize. We
// wait for exactly the streams the request asked for, run the command, end the output
// streams, report the status on the error stream and close the session.
import type { Logger } from 'pino';
import type { ExecStreams, StreamingBackend } from './backend.js';
import { JsonObjectSplitter, parseTerminalSize, ResizeQueue } from './resize-queue.js';
import { endOutput, runRemoteCommand, type RemoteCommand } from './run-command.js';
import type { SpdySession } from './spdy/session.js';
import type { SpdyStream } from './spdy/stream.js';
import { encodeStatus } from './status.js';

export const REMOTECOMMAND_V1 = 'channel.k8s.io';
export const REMOTECOMMAND_V2 = 'v2.channel.k8s.io';
export const REMOTECOMMAND_V3 = 'v3.channel.k8s.io';
export const REMOTECOMMAND_V4 = 'v4.channel.k8s.io';
/** Server preference is irrelevant: the client's order wins (httpstream.Handshake). */
export const REMOTECOMMAND_SPDY_PROTOCOLS = [REMOTECOMMAND_V4, REMOTECOMMAND_V3, REMOTECOMMAND_V2, REMOTECOMMAND_V1];
/** kubelet's default streamCreationTimeout. */
export const STREAM_CREATION_TIMEOUT_MS = 30_000;

type StreamType = 'error' | 'stdin' | 'stdout' | 'stderr' | 'resize';

export interface ServeSpdyRemoteCommandOptions {
  session: SpdySession;
  /** The negotiated X-Stream-Protocol-Version ('' for a pre-1.0 client: v1). */
  protocol: string;
  command: RemoteCommand;
  backend: StreamingBackend;
  log: Logger;
  streamCreationTimeoutMs?: number;
}

export async function serveSpdyRemoteCommand(opts: ServeSpdyRemoteCommandOptions): Promise<void> {
  const { session, protocol, command, log } = opts;
  const req = command.request;
  const withResize = protocol === REMOTECOMMAND_V3 || protocol === REMOTECOMMAND_V4;
  const want: Record<StreamType, boolean> = {
    error: true,
    stdin: req.stdin,
    stdout: req.stdout,
    // A terminal has one output: kubelet drops stderr with a tty.
    stderr: req.stderr && !req.tty,
    resize: req.tty && withResize,
  };
  const got: Partial<Record<StreamType, SpdyStream>> = {};
  const controller = new AbortController();
  let done = false;
  const clientGone = (): void => {
    if (!done) controller.abort();
  };
  session.on('close', clientGone);
  session.on('goaway', clientGone);

  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('timed out waiting for client to create streams')),
        opts.streamCreationTimeoutMs ?? STREAM_CREATION_TIMEOUT_MS,
      );
      const complete = (): boolean => (Object.keys(want) as StreamType[]).every((t) => !want[t] || got[t]);
      session.on('stream', (stream) => {
        stream.on('error', (err) => log.debug({ err, streamId: stream.id }, 'spdy stream error'));
        stream.reply();
        const type = stream.headers['streamtype'] as StreamType | undefined;
        if (!type || !(type in want) || !want[type] || got[type]) {
          log.debug({ streamType: type }, 'remotecommand: unexpected spdy stream, resetting it');
          stream.resetStream();
          return;
        }
        got[type] = stream;
        if (complete()) {
          clearTimeout(timer);
          resolve();
        }
      });
      session.once('close', () => {
        clearTimeout(timer);
        reject(new Error('client went away before creating its streams'));
      });
    });
  } catch (e: unknown) {
    log.info({ err: e }, `${command.kind}: not started`);
    session.destroy();
    return;
  }

  const resize = got.resize ? feedResize(got.resize) : undefined;
  const io: ExecStreams = { tty: req.tty };
  if (got.stdin) io.stdin = got.stdin;
  if (got.stdout) io.stdout = got.stdout;
  if (got.stderr) io.stderr = got.stderr;
  if (resize) io.resize = resize;

  const status = await runRemoteCommand({ command, backend: opts.backend, io, signal: controller.signal, log });
  done = true;
  resize?.close();
  if (status === undefined || session.closed) {
    session.destroy();
    return;
  }
  const bytes = encodeStatus(status, protocol === REMOTECOMMAND_V4);
  if (bytes) got.error!.write(bytes);
  await endOutput(got.error);
  session.close();
}

function feedResize(stream: SpdyStream): ResizeQueue {
  const queue = new ResizeQueue();
  const splitter = new JsonObjectSplitter();
  stream.setEncoding('utf8');
  stream.on('data', (text: string) => {
    for (const obj of splitter.push(text)) {
      const size = parseTerminalSize(obj);
      if (size) queue.push(size);
    }
  });
  stream.on('end', () => queue.close());
  stream.on('close', () => queue.close());
  return queue;
}
