// The runtime side of exec, attach and port-forward (S18): the streaming server owns
// the wire protocols, this owns processes and sockets. Port-forward reaches a port
// inside the pod's network namespace; exec and attach belong to the container layer,
// which plugs in through `containers`.
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { UnimplementedError } from '../../errors.js';
import { dialPodPort } from '../../network/netns-dial.js';
import type { ExecResult, ExecStreams, StreamingBackend } from '../../streaming/backend.js';
import type { PodManager } from '../pod/pod-manager.js';
import { relayPortForward, usesPortForwardRelay } from './port-forward-relay.js';

export type ContainerStreaming = Pick<StreamingBackend, 'exec' | 'attach'>;

export interface SandlotStreamingBackendOptions {
  pods: Pick<PodManager, 'requireRunning' | 'driver'>;
  /** For the port-forward relay (scratch files in <state_dir>/exec) and its logs. */
  stateDir: string;
  log: Logger;
}

export class SandlotStreamingBackend implements StreamingBackend {
  /** Set by the container layer once it exists. */
  containers: ContainerStreaming | undefined;
  private readonly pods: Pick<PodManager, 'requireRunning' | 'driver'>;
  private readonly stateDir: string;
  private readonly log: Logger;

  constructor(opts: SandlotStreamingBackendOptions) {
    this.pods = opts.pods;
    this.stateDir = opts.stateDir;
    this.log = opts.log;
  }

  exec(containerId: string, cmd: string[], io: ExecStreams, signal: AbortSignal): Promise<ExecResult> {
    if (!this.containers) throw new UnimplementedError(`exec in container "${containerId}": containers are not served yet`);
    return this.containers.exec(containerId, cmd, io, signal);
  }

  attach(containerId: string, io: ExecStreams, signal: AbortSignal): Promise<void> {
    if (!this.containers) throw new UnimplementedError(`attach to container "${containerId}": containers are not served yet`);
    return this.containers.attach(containerId, io, signal);
  }

  async portForward(podSandboxId: string, port: number, conn: Duplex, signal: AbortSignal): Promise<void> {
    // S4: port-forward needs a running sandbox.
    const pod = this.pods.requireRunning(podSandboxId, 'port-forward');
    const driver = this.pods.driver(pod.runtimeHandler);
    if (usesPortForwardRelay(driver)) {
      const relay = { driver, podSandboxId: pod.id, infraBundle: pod.paths.bundle, scratchDir: path.join(this.stateDir, 'exec'), log: this.log };
      await relayPortForward(relay, port, conn, signal);
      return;
    }
    const upstream = await dialPodPort(pod.netnsPath, port, signal);
    // Each direction ends on its own: a client half-close reaches the pod as FIN and
    // the pod closing ends the client's stream.
    const done = Promise.allSettled([pipeline(conn, upstream, { signal, end: true }), pipeline(upstream, conn, { signal, end: true })]);
    signal.addEventListener('abort', () => upstream.destroy(), { once: true });
    await done;
    upstream.destroy();
  }
}
