// Knowing when a container has exited without asking ContainerStatus ten times a second:
// one GetContainerEvents stream (the kubelet's evented PLEG) says so. Since the daemon
// does not confirm a subscription, a status check right after opening and one a little
// later close the window in which an exit could fall before the subscription; after that
// only events count. If the stream ends or fails, a slow poll takes over.
//
//   open stream ─► check ─► (CHECK_AGAIN_MS) check ─► events … ─► STOPPED/DELETED of ours ─► exited
//        └─ stream ends/fails ─► poll every FALLBACK_POLL_MS
import type { ClientReadableStream } from '@grpc/grpc-js';
import type { CriClient } from './client.js';
import type { ResponseOutputOf } from '../cri/handler-types.js';

type ContainerEvent = ResponseOutputOf<'GetContainerEvents'>;

export const CHECK_AGAIN_MS = 2_000;
export const FALLBACK_POLL_MS = 2_000;
const STATUS_TIMEOUT_MS = 30_000;

export interface ContainerExit {
  /** Undefined when the container was removed before its exit code could be read. */
  exitCode: number | undefined;
}

export class ContainerExitWatch {
  private exit: ContainerExit | undefined;
  private stream: ClientReadableStream<ContainerEvent> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly waiters: ((e: ContainerExit) => void)[] = [];

  private constructor(
    private readonly c: CriClient,
    readonly containerId: string,
  ) {}

  /** Starts watching `containerId`; close() when done. */
  static start(c: CriClient, containerId: string): ContainerExitWatch {
    const w = new ContainerExitWatch(c, containerId);
    w.open();
    return w;
  }

  get exited(): boolean {
    return this.exit !== undefined;
  }

  /** Resolves once the container has exited (or is gone). */
  wait(): Promise<ContainerExit> {
    if (this.exit) return Promise.resolve(this.exit);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.stream?.cancel();
    this.stream = undefined;
  }

  private settle(e: ContainerExit): void {
    if (this.exit) return;
    this.exit = e;
    this.close();
    for (const w of this.waiters.splice(0)) w(e);
  }

  private open(): void {
    let stream: ClientReadableStream<ContainerEvent>;
    try {
      stream = this.c.runtimeStream('GetContainerEvents', {});
    } catch {
      this.schedule(0, true);
      return;
    }
    this.stream = stream;
    stream.on('data', (ev: ContainerEvent) => this.onEvent(ev));
    // A cancel of our own ends it too; only an unexpected end falls back to polling.
    const fallback = (): void => {
      if (this.stream !== stream || this.closed) return;
      this.stream = undefined;
      this.schedule(0, true);
    };
    stream.on('error', fallback);
    stream.on('end', fallback);
    this.check()
      .then(() => this.schedule(CHECK_AGAIN_MS, false))
      .catch(() => this.schedule(CHECK_AGAIN_MS, false));
  }

  private onEvent(ev: ContainerEvent): void {
    if (ev.container_id !== this.containerId) return;
    const type = ev.container_event_type;
    const mine = ev.containers_statuses.find((s) => s.id === this.containerId);
    if (type === 'CONTAINER_DELETED_EVENT') this.settle({ exitCode: mine ? Number(mine.exit_code ?? 0) : undefined });
    else if (type === 'CONTAINER_STOPPED_EVENT' || mine?.state === 'CONTAINER_EXITED') this.settle({ exitCode: Number(mine?.exit_code ?? 0) });
  }

  /** One ContainerStatus: settles on EXITED, or on NOT_FOUND (removed meanwhile). */
  private async check(): Promise<void> {
    try {
      const res = await this.c.runtimeCall('ContainerStatus', { container_id: this.containerId }, { timeoutMs: STATUS_TIMEOUT_MS });
      if (res.status?.state === 'CONTAINER_EXITED') this.settle({ exitCode: res.status.exit_code });
    } catch (e) {
      if ((e as { code?: unknown }).code === 5 /* NOT_FOUND */) this.settle({ exitCode: undefined });
      else throw e;
    }
  }

  /** The next status check: the second one while the stream lives, or the fallback poll once it is gone. */
  private schedule(ms: number, polling: boolean): void {
    if (this.closed || this.exit) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.check()
        .catch(() => undefined)
        .finally(() => {
          if (polling || this.stream === undefined) this.schedule(FALLBACK_POLL_MS, true);
        });
    }, ms);
  }
}
