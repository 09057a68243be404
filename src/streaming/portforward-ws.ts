// portforward over WebSocket (kubelet portforward/websocket.go): the ports come with
// the request; port i gets channel 2i for data and 2i+1 for errors, and the server
// opens each channel by sending the port as 2 bytes little endian. One connection per
// port; the WebSocket closes when all of them are over.
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { errorMessage } from '../errors.js';
import type { StreamingBackend } from './backend.js';
import type { PortForwardRequest } from './requests.js';
import { toBuffer } from './remotecommand-ws.js';
import { endOutput } from './run-command.js';
import { ChannelDuplex, CLOSE_SIGNAL_CHANNEL, decodeChannelMessage, sendChannel, type ChannelProtocol } from './ws-channels.js';

export interface ServeWsPortForwardOptions {
  ws: WebSocket;
  protocol: ChannelProtocol;
  request: PortForwardRequest;
  backend: StreamingBackend;
  log: Logger;
}

export async function serveWsPortForward(opts: ServeWsPortForwardOptions): Promise<void> {
  const { ws, protocol, request, log } = opts;
  const podSandboxId = request.podSandboxId;
  const controller = new AbortController();
  const conns = request.ports.map((_, i) => new ChannelDuplex(ws, protocol, 2 * i));
  let done = false;

  ws.on('message', (raw: Buffer | ArrayBuffer | Buffer[]) => {
    const msg = decodeChannelMessage(protocol, toBuffer(raw));
    if (!msg) return;
    if (msg.channel === CLOSE_SIGNAL_CHANNEL && protocol.closeSignal) {
      const target = msg.data[0];
      if (target !== undefined && target % 2 === 0) conns[target / 2]?.push(null);
      return;
    }
    // Clients write only on data channels; anything on an error channel is ignored.
    if (msg.channel % 2 === 0) conns[msg.channel / 2]?.deliver(msg.data);
  });
  ws.on('error', (err) => log.debug({ err }, 'portforward websocket error'));
  ws.on('close', () => {
    if (!done) controller.abort();
    for (const c of conns) c.destroy();
  });

  await Promise.all(
    request.ports.map(async (port, i) => {
      const conn = conns[i];
      conn.on('error', (err) => log.debug({ err, port }, 'portforward websocket channel error'));
      const portBytes = Buffer.alloc(2);
      portBytes.writeUInt16LE(port, 0);
      try {
        await sendChannel(ws, protocol, 2 * i, portBytes);
        await sendChannel(ws, protocol, 2 * i + 1, portBytes);
        await opts.backend.portForward(podSandboxId, port, conn, controller.signal);
        // Every byte from the pod goes out before the close frame does.
        await endOutput(conn);
      } catch (e: unknown) {
        if (controller.signal.aborted) return;
        log.info({ port, err: e }, 'port forward failed');
        await sendChannel(ws, protocol, 2 * i + 1, Buffer.from(`error forwarding port ${port} to pod ${podSandboxId}: ${errorMessage(e)}`)).catch(
          () => undefined,
        );
      }
    }),
  );
  done = true;
  if (controller.signal.aborted) return;
  ws.close(1000);
}
