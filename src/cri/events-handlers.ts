// GetContainerEvents: the server stream of the kubelet's evented PLEG. One subscription
// to the container event bus per call, open until the client cancels (or the daemon
// stops, or the subscriber falls too far behind: see src/sandbox/container/container-events.ts).
// Each event carries its pod's PodSandboxStatus and the ContainerStatus of every
// container of the pod, in the same shapes PodSandboxStatus/ContainerStatus answer.
import type { ContainerEvent, ContainerEventBus } from '../sandbox/container/container-events.js';
import { containerStatusOf } from './container-handlers.js';
import type { ContainerEventResponse } from '../types/cri/runtime/v1/ContainerEventResponse.js';
import type { HandlerSet } from './handler-types.js';
import { podSandboxStatus } from './sandbox-handlers.js';

export function containerEventOf(e: ContainerEvent): ContainerEventResponse {
  return {
    container_id: e.containerId,
    container_event_type: e.type,
    created_at: e.createdAtNs.toString(),
    pod_sandbox_status: e.pod ? podSandboxStatus(e.pod) : null,
    containers_statuses: e.containers.map(containerStatusOf),
  };
}

export function eventsHandlers(bus: ContainerEventBus): HandlerSet {
  return {
    stream: {
      async *GetContainerEvents(_req, ctx) {
        const sub = bus.subscribe();
        ctx.log.debug({ subscriber: sub.id }, 'container events subscriber joined');
        try {
          for (;;) {
            const ev = await sub.next(ctx.signal);
            if (ev === undefined) return;
            yield containerEventOf(ev);
          }
        } finally {
          sub.close();
          ctx.log.debug({ subscriber: sub.id }, 'container events subscriber left');
        }
      },
    },
  };
}
