// exec, attach, port-forward: the streaming verbs. Each asks the daemon for a URL on its
// streaming server (Exec/Attach/PortForward RPC) and speaks the k8s channel protocol over
// WebSocket (v5.channel.k8s.io, falling back to v4) with the `ws` package.
import net from 'node:net';
import { errorText, resolveContainer, resolvePod } from '../lookup.js';
import { DEFAULT_DETACH_KEYS, parseDetachKeys } from '../detach-keys.js';
import { rawStdin, terminalIo } from '../terminal.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, SOCKET_OPTION, withClient, type Verb, type VerbOptions, type VerbValues } from '../verb.js';
import { forwardConnection, runRemoteCommand, type RemoteExit } from '../ws-channel-client.js';

const URL_TIMEOUT_MS = 30_000;

async function session(values: VerbValues, url: string, detachKeys?: Buffer): Promise<number> {
  const tty = Boolean(values.tty);
  const stdin = Boolean(values.interactive);
  const restore = stdin && tty ? rawStdin() : () => undefined;
  let exit: RemoteExit;
  try {
    exit = await runRemoteCommand(url, { ...terminalIo({ stdin, tty }), ...(stdin && detachKeys ? { detachKeys } : {}) });
  } finally {
    restore();
    if (stdin) process.stdin.pause();
  }
  // As docker says it; the container goes on running.
  if (exit.detached) process.stderr.write('read escape sequence\n');
  if (exit.message) process.stderr.write(`sandlot: ${exit.message}\n`);
  return exit.exitCode;
}

const IO_OPTIONS: VerbOptions = {
  ...SOCKET_OPTION,
  interactive: { type: 'boolean', short: 'i', description: 'pass stdin to the process' },
  tty: { type: 'boolean', short: 't', description: 'give the process a terminal (with -i: raw mode, resizes follow)' },
};

export const execVerb: Verb = {
  name: 'exec',
  summary: 'run CMD... in a running container (-i: stdin, -t: terminal); exits with its exit code',
  usage: 'CONTAINER CMD...',
  endsInCommand: true,
  options: IO_OPTIONS,
  async run(values, positionals) {
    const [prefix, ...cmd] = positionals;
    if (prefix === undefined || cmd.length === 0) {
      process.stderr.write('usage: sandlot exec [--socket PATH] [-i] [-t] CONTAINER CMD...\n');
      return EXIT_USAGE;
    }
    const tty = Boolean(values.tty);
    const url = await withClient(values, async (c) => {
      const id = await resolveContainer(c, prefix);
      const req = { container_id: id, cmd, tty, stdin: Boolean(values.interactive), stdout: true, stderr: !tty };
      return String((await c.runtimeCall('Exec', req, { timeoutMs: URL_TIMEOUT_MS })).url);
    });
    return session(values, url);
  },
};

export const attachVerb: Verb = {
  name: 'attach',
  summary: "attach to a running container's stdio (-i: stdin, -t: its terminal); Ctrl-P Ctrl-Q detaches",
  usage: 'CONTAINER',
  options: {
    ...IO_OPTIONS,
    'detach-keys': {
      type: 'string',
      value: 'KEYS',
      description: `keys that detach and leave the container running (default ${DEFAULT_DETACH_KEYS}; "" for none)`,
    },
  },
  async run(values, positionals) {
    if (positionals.length !== 1) {
      process.stderr.write('usage: sandlot attach [--socket PATH] [-i] [-t] [--detach-keys KEYS] CONTAINER\n');
      return EXIT_USAGE;
    }
    const detachKeys = parseDetachKeys(String(values['detach-keys'] ?? DEFAULT_DETACH_KEYS));
    const tty = Boolean(values.tty);
    const url = await withClient(values, async (c) => {
      const id = await resolveContainer(c, positionals[0]);
      const req = { container_id: id, stdin: Boolean(values.interactive), tty, stdout: true, stderr: !tty };
      return String((await c.runtimeCall('Attach', req, { timeoutMs: URL_TIMEOUT_MS })).url);
    });
    return session(values, url, detachKeys);
  },
};

export interface PortPair {
  local: number;
  remote: number;
}

/** `8080:80` or `80` (the same port on both sides); LOCAL 0 picks a free port. */
export function parsePortPair(s: string): PortPair {
  const m = /^(\d{1,5})(?::(\d{1,5}))?$/.exec(s);
  const local = m ? Number(m[1]) : NaN;
  const remote = m ? Number(m[2] ?? m[1]) : NaN;
  if (!m || local > 65535 || remote < 1 || remote > 65535) {
    throw new Error(`port mapping ${JSON.stringify(s)}: expected LOCAL:REMOTE or PORT with ports in 1..65535 (LOCAL may be 0)`);
  }
  return { local, remote };
}

export const portForwardVerb: Verb = {
  name: 'port-forward',
  summary: "forward 127.0.0.1:LOCAL to REMOTE in a pod's network, until Ctrl-C",
  usage: 'POD LOCAL:REMOTE...',
  options: SOCKET_OPTION,
  async run(values, positionals) {
    const [prefix, ...specs] = positionals;
    if (prefix === undefined || specs.length === 0) {
      process.stderr.write('usage: sandlot port-forward [--socket PATH] POD LOCAL:REMOTE...\n');
      return EXIT_USAGE;
    }
    let pairs: PortPair[];
    try {
      pairs = specs.map(parsePortPair);
    } catch (e) {
      process.stderr.write(`sandlot port-forward: ${errorText(e)}\n`);
      return EXIT_USAGE;
    }
    return withClient(values, async (c) => {
      const podId = await resolvePod(c, prefix);
      const servers: net.Server[] = [];
      let failed = false;
      const done = new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      try {
        for (const pair of pairs) {
          // One PortForward URL (single-use token) and one WebSocket per connection.
          // Half-open: a client's EOF goes to the pod (v5 close signal) while replies still flow back.
          const server = net.createServer({ allowHalfOpen: true }, (conn) => {
            conn.on('error', () => undefined);
            c.runtimeCall('PortForward', { pod_sandbox_id: podId, port: [pair.remote] }, { timeoutMs: URL_TIMEOUT_MS })
              .then((res) => forwardConnection(String(res.url), conn, (m) => process.stderr.write(`sandlot port-forward: ${m}\n`)))
              .catch((e: unknown) => {
                process.stderr.write(`sandlot port-forward: ${errorText(e)}\n`);
                conn.destroy();
              });
          });
          await new Promise<void>((resolve, reject) => {
            server.once('error', reject);
            server.listen(pair.local, '127.0.0.1', () => resolve());
          });
          servers.push(server);
          const addr = server.address() as net.AddressInfo;
          process.stdout.write(`Forwarding from 127.0.0.1:${addr.port} -> ${pair.remote}\n`);
        }
      } catch (e) {
        process.stderr.write(`sandlot port-forward: listening: ${errorText(e)}\n`);
        failed = true;
      }
      if (!failed) await done;
      for (const s of servers) s.close();
      return failed ? EXIT_FAILURE : EXIT_OK;
    });
  },
};
