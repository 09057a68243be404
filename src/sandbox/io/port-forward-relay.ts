// Port-forward through a process inside the sandbox. Where runsc runs its own netstack
// (network mode `sandbox`), the pod's TCP/IP stack lives inside the sandbox and a dial
// from the host side of the pod netns does not reach it (gvisor#3811, containerd#11338);
// the installed runsc has no `port-forward` subcommand. So the connection is relayed:
// the host's static busybox, bind-mounted read-only into the infra container
// (RELAY_BINARY), runs `nc 127.0.0.1 <port>` through the runtime's exec, its stdio
// carrying the connection. busybox nc half-closes the socket when its stdin ends (the
// client's half-close reaches the pod as FIN) and exits when the pod side closes.
// Selected by the handler's `port_forward_relay: true` or runsc network mode `sandbox`;
// it works under hostinet and runc too, which is how it is tested here.
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { UnavailableError } from '../../errors.js';
import { resolveBinary } from '../../oci/command.js';
import type { RuntimeDriver } from '../../oci/runtime.js';
import { RELAY_BINARY } from '../../oci/spec-sandbox.js';

/** The host binary bound into the infra container (Debian busybox-static). */
export const RELAY_HOST_BINARY = 'busybox';
/** How much of the relay's stderr a failure message quotes. */
const STDERR_LIMIT_BYTES = 4096;

/** Does this handler's pods port-forward through the relay? (the runtime says: RuntimeDriver.portForward) */
export function usesPortForwardRelay(driver: Pick<RuntimeDriver, 'portForward'>): boolean {
  return driver.portForward === 'relay';
}

/** The host path to bind into a relaying handler's infra containers; undefined when not relaying or not installed. */
export function relayBinaryFor(driver: Pick<RuntimeDriver, 'portForward'>): string | undefined {
  return usesPortForwardRelay(driver) ? resolveBinary(RELAY_HOST_BINARY) : undefined;
}

export interface RelayOptions {
  driver: RuntimeDriver;
  podSandboxId: string;
  /** The infra container's bundle (its config.json gives the process the relay runs as). */
  infraBundle: string;
  scratchDir: string;
  log: Logger;
}

export async function relayPortForward(o: RelayOptions, port: number, conn: Duplex, signal: AbortSignal): Promise<void> {
  const ctx = `dialling port ${port} in pod "${o.podSandboxId}" through the relay`;
  o.log.debug({ podSandboxId: o.podSandboxId, port }, 'port-forward through the relay');
  const launch = await o.driver.exec({
    containerId: o.podSandboxId,
    specPath: path.join(o.infraBundle, 'config.json'),
    scratchDir: o.scratchDir,
    cmd: [RELAY_BINARY, 'nc', '127.0.0.1', String(port)],
    tty: false,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const { stdin, stdout, stderr: errPipe } = launch;
  const kill = (): void => {
    void launch.kill();
  };
  if (signal.aborted) kill();
  else signal.addEventListener('abort', kill, { once: true });
  let stderr = '';
  try {
    stdin!.on('error', () => undefined);
    conn.on('error', () => undefined);
    // The client's half-close ends nc's stdin; nc then shuts down its sending side.
    conn.pipe(stdin!);
    stdout!.pipe(conn, { end: false });
    errPipe!.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < STDERR_LIMIT_BYTES) stderr += d;
    });
    const [code] = await Promise.all([launch.exited, launch.outputClosed]);
    if (code !== 0 && !signal.aborted) {
      throw new UnavailableError(`${ctx}: ${stderr.trim() || `the relay exited with ${code}`}`);
    }
    conn.end();
  } finally {
    signal.removeEventListener('abort', kill);
    conn.unpipe(stdin);
    stdin!.destroy();
    await launch.kill().catch(() => undefined);
    await launch.cleanup().catch(() => undefined);
  }
}
